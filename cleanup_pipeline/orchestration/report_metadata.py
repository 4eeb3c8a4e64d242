"""What the report assets show in the UI: numeric counts Dagster plots across runs, the days
inactive histogram, a preview with masked emails, guard status and the files' locations."""

from typing import Any

import dagster as dg

from cleanup_pipeline.aws.reports import browser_link, is_s3
from cleanup_pipeline.core.guards import GuardResult
from cleanup_pipeline.core.inactivity import histogram_keys
from cleanup_pipeline.core.report_counts import outcome_counts, reason_counts
from cleanup_pipeline.core.report_summary import ReportFacts, actions_line, histogram_table
from cleanup_pipeline.orchestration.previews import report_preview


def file_metadata(
    report: str, csv: str, summary: str, s3: Any | None
) -> dict[str, dg.MetadataValue]:
    """Where the run's files are: local paths, or on S3 links a browser opens, with the report's
    `s3://` URI kept as `path` for the command line and scripts."""
    if not is_s3(report):
        return {
            "path": dg.MetadataValue.path(report),
            "csv": dg.MetadataValue.path(csv),
            "summary": dg.MetadataValue.path(summary),
        }
    return {
        "path": dg.MetadataValue.text(report),
        "report_link": dg.MetadataValue.url(browser_link(report, s3)),
        "csv": dg.MetadataValue.url(browser_link(csv, s3)),
        "summary": dg.MetadataValue.url(browser_link(summary, s3)),
    }


def guards_table(guards: list[GuardResult]) -> str:
    rows = "\n".join(
        f"| {g.name} | {'passed' if g.passed else '**FAILED**'} | {g.count:,} | {g.reason} |"
        for g in guards
    )
    return f"| guard | result | count | why |\n|---|---|---:|---|\n{rows}"


def report_metadata(
    facts: ReportFacts, files: dict[str, dg.MetadataValue]
) -> dict[str, dg.MetadataValue]:
    report = facts.report
    numbers = {
        **outcome_counts(report),
        **reason_counts(report),
        **histogram_keys(facts.histogram),
    }
    return {
        **files,
        "stage": dg.MetadataValue.text(facts.stage),
        "rows": dg.MetadataValue.int(len(report)),
        "dry_run": dg.MetadataValue.bool(facts.dry_run),
        "allow_mass_action": dg.MetadataValue.bool(facts.allow_mass_action),
        "approved_run_id": dg.MetadataValue.text(facts.approved_run_id or "(none)"),
        "actions": dg.MetadataValue.md(actions_line(facts)),
        "guards_passed": dg.MetadataValue.bool(not facts.blocked),
        "blocked_by": dg.MetadataValue.text(", ".join(g.name for g in facts.blocked)),
        "guards": dg.MetadataValue.md(guards_table(facts.guards)),
        **{key: dg.MetadataValue.int(n) for key, n in numbers.items()},
        "days_inactive": dg.MetadataValue.md(histogram_table(facts.histogram)),
        "preview": report_preview(report),
    }

"""What the report assets show in the UI: numeric counts Dagster plots across runs, the days
inactive histogram, a preview with masked emails, guard status and the files' locations."""

import dagster as dg

from cleanup_pipeline.aws.report_store import is_s3
from cleanup_pipeline.core.guards import GuardResult
from cleanup_pipeline.core.inactivity import histogram_keys
from cleanup_pipeline.core.report_counts import outcome_counts, reason_counts
from cleanup_pipeline.core.report_summary import ReportFacts, actions_line, histogram_table
from cleanup_pipeline.orchestration.previews import report_preview


def location(value: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(value) if is_s3(value) else dg.MetadataValue.path(value)


def guards_table(guards: list[GuardResult]) -> str:
    rows = "\n".join(
        f"| {g.name} | {'passed' if g.passed else '**FAILED**'} | {g.count:,} | {g.reason} |"
        for g in guards
    )
    return f"| guard | result | count | why |\n|---|---|---:|---|\n{rows}"


def report_metadata(
    facts: ReportFacts, report_at: str, summary_at: str
) -> dict[str, dg.MetadataValue]:
    report = facts.report
    numbers = {
        **outcome_counts(report),
        **reason_counts(report),
        **histogram_keys(facts.histogram),
    }
    return {
        "path": location(report_at),
        "summary": location(summary_at),
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

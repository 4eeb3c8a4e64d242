"""The per-run reports and what the UI shows of them: the candidate report, the cleanup report,
their metadata and previews, and the retention of old reports."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.aws.reports import (
    browser_link,
    csv_location,
    expired_reports,
    is_s3,
    remove_reports,
    report_location,
    report_name,
    stored_reports,
    summary_location,
    write_csv,
    write_report,
    write_summary,
)
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import (
    LAST_VISIT_AT,
    REQUEST,
    days_inactive_histogram,
    histogram_keys,
)
from cleanup_pipeline.core.guards import (
    GuardInputs,
    GuardResult,
    candidate_digests,
    report_candidates,
)
from cleanup_pipeline.core.masking import scrub_emails
from cleanup_pipeline.core.reports import (
    CANDIDATE,
    FINAL,
    REQUEST_STATUS,
    ReportFacts,
    actions_line,
    build_report,
    count_outcomes,
    histogram_table,
    outcome_counts,
    reason_counts,
    render_summary,
    store_totals,
)
from cleanup_pipeline.core.requests import DEADLINE_COUNTS, OpenRequests, RequestStatus
from cleanup_pipeline.core.vocabulary import Decision, Outcome
from cleanup_pipeline.orchestration.guards import run_guards
from cleanup_pipeline.orchestration.jobs import GROUP, IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions

REPORT_PREVIEW_ROWS = 50
REPORT_PREVIEW_COLUMNS = {
    "id": "string",
    "decision": "string",
    "reason": "string",
    "days_inactive": "int",
    "email_masked": "string",
    "outcome": "string",
    "step": "string",
    "error": "string",
}
# Rows an operator must look at first: failures, then what was or would be done.
_OUTCOME_ORDER = [
    Outcome.FAILED,
    Outcome.KEPT_PARTIAL,
    Outcome.DELETED,
    Outcome.DELETED_BY_OTHER_RUN,
    Outcome.WARNED,
    Outcome.KEPT,
    Outcome.SKIPPED,
    Outcome.DRY_RUN,
    Outcome.NOT_ATTEMPTED,
    Outcome.NOT_APPROVED,
]
_DECISION_ORDER = [Decision.DELETE, Decision.NOTIFY, Decision.WAITING, Decision.INVALID]


def _cell(value: object) -> str | int | None:
    if value is None or pd.isna(value):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    # Masked already; scrubbed again so that no address can reach the UI through free text.
    return scrub_emails(str(value))


def report_preview(report: pd.DataFrame) -> dg.MetadataValue:
    """The first rows of the report, failures first, as a table; masked emails only."""
    outcome_rank = pd.Index(_OUTCOME_ORDER).get_indexer(report["outcome"])
    decision_rank = pd.Index(_DECISION_ORDER).get_indexer(report["decision"])
    outcome_rank[outcome_rank < 0] = len(_OUTCOME_ORDER)  # no_action and the unforeseen last
    order = np.lexsort((decision_rank, outcome_rank))
    head = report.iloc[order[:REPORT_PREVIEW_ROWS]][list(REPORT_PREVIEW_COLUMNS)]
    records = [
        dg.TableRecord({column: _cell(value) for column, value in row.items()})
        for row in head.astype(object).to_dict("records")
    ]
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, kind) for name, kind in REPORT_PREVIEW_COLUMNS.items()]
    )
    return dg.MetadataValue.table(records=records, schema=schema)


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
        **store_totals(report),
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
        # Always present, zero without a requests table, so that the UI plots them every run.
        **{key: dg.MetadataValue.int(facts.requests.get(key, 0)) for key in DEADLINE_COUNTS},
        "days_inactive": dg.MetadataValue.md(histogram_table(facts.histogram)),
        "preview": report_preview(report),
    }


def _publish(
    context: dg.AssetExecutionContext,
    stage: str,
    report: pd.DataFrame,
    decisions: pd.DataFrame,
    guard_inputs: GuardInputs,
    requests: dict[str, int],
    resources: tuple[AwsEnvironment, CleanupPolicy, RunOptions, S3Resource],
) -> dict[str, dg.MetadataValue]:
    """Write the report and its summary; return the metadata that shows them in the UI.
    `requests`: the deadline counts the report states (empty: requests are off)."""
    aws, policy, options, reports_s3 = resources
    run_id, as_of_ms = context.run.run_id, options.as_of_ms(context)
    as_of = format_ms(as_of_ms)
    # The guards the run's blocking checks evaluate, on the same inputs: the candidate report
    # is written in parallel with those checks and still says whether actions may follow.
    guards = run_guards(guard_inputs, policy, options.allow_mass_action, options.approved_run_id)
    histogram = days_inactive_histogram(
        decisions[LAST_VISIT_AT], as_of_ms, (decisions["decision"] == Decision.INVALID).to_numpy()
    )
    report_at = report_location(aws.settings().reports_location, as_of, run_id)
    facts = ReportFacts(
        run_id=run_id,
        as_of=as_of,
        dry_run=options.dry_run,
        allow_mass_action=options.allow_mass_action,
        stage=stage,
        file_name=report_at.rsplit("/", 1)[-1],
        report=report,
        histogram=histogram,
        guards=guards,
        approved_run_id=options.approved_run_id or "",
        requests=requests,
    )
    # Stored in the Parquet file's metadata; pandas restores it as `DataFrame.attrs`.
    report.attrs = {
        "run_id": run_id,
        "as_of": as_of,
        "dry_run": options.dry_run,
        "allow_mass_action": options.allow_mass_action,
        "approved_run_id": options.approved_run_id or "",
        "stage": stage,
        "blocked_by": [g.name for g in facts.blocked],
    }
    s3 = reports_s3.get_client() if is_s3(report_at) else None
    written = write_report(report, report_at, s3)
    csv = write_csv(report, csv_location(report_at), s3)
    summary = write_summary(render_summary(facts), summary_location(report_at), s3)
    # Once the file is written: an approval of this run checks the file against these tags,
    # so a report edited after the run is not taken for the one reviewed.
    context.instance.add_run_tags(run_id, candidate_digests(report_candidates(report)))
    context.log.info(f"{stage} report: {written} ({len(report)} rows); summary: {summary}")
    return report_metadata(facts, file_metadata(written, csv, summary, s3))


def _deadline_counts(found: OpenRequests, erased: pd.DataFrame | None = None) -> dict[str, int]:
    """The deadline counts of the requests read at the start of the run; with the erasures'
    outcomes, of those still open once the run has acted (the ones it closed left out). Empty
    without a requests table."""
    if not found.table:
        return {}
    if erased is None or REQUEST not in erased.columns:
        return found.counts()
    done = erased[REQUEST_STATUS].astype("string") == str(RequestStatus.DONE)
    return found.after(set(erased.loc[done.fillna(False), REQUEST].dropna().astype(str))).counts()


def _ledger_counts(
    deleted_accounts: pd.DataFrame, purged: dict[str, int], erased: pd.DataFrame | None = None
) -> dict[str, dg.MetadataValue]:
    """What this run added to the deletion ledger (erasures included), and what its purge did."""
    ledger = dict(deleted_accounts.attrs.get("ledger", {}))
    if erased is not None:
        for name in ("deleted", "verified"):
            ledger[name] = ledger.get(name, 0) + erased.attrs.get("ledger", {}).get(name, 0)
    counts = {
        "ledger_deleted": ledger.get("deleted", 0),
        "ledger_recorded_late": ledger.get("recorded_late", 0),
        "ledger_verified": ledger.get("verified", 0),
        "ledger_verified_late": ledger.get("verified_late", 0),
        "ledger_purged": purged.get("purged_users", 0),
        "purge_versions_removed": purged.get("versions_removed", 0),
        "purge_waiting": purged.get("waiting_users", 0),
        "purge_failed": purged.get("failed_users", 0),
    }
    return {name: dg.MetadataValue.int(int(value)) for name, value in counts.items()}


@dg.asset(group_name=GROUP, kinds={"parquet"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def candidate_report(
    context: dg.AssetExecutionContext,
    user_decisions: pd.DataFrame,
    guard_inputs: GuardInputs,
    erasure_requests: OpenRequests,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    reports_s3: S3Resource,
) -> dg.MaterializeResult:
    """What this run decided, written before any action so that a run stopped by a guard still
    leaves its report (outcomes `not_attempted`) and says which guard stopped it."""
    report = build_report(user_decisions, dry_run=run_options.dry_run, stores=aws.store_names())
    resources = (aws, cleanup_policy, run_options, reports_s3)
    return dg.MaterializeResult(
        metadata=_publish(
            context,
            CANDIDATE,
            report,
            user_decisions,
            guard_inputs,
            _deadline_counts(erasure_requests),
            resources,
        )
    )


@dg.asset(
    group_name=GROUP,
    kinds={"parquet"},
    retry_policy=IDEMPOTENT_STEP_RETRY,
    deps=["candidate_report"],
    check_specs=[
        dg.AssetCheckSpec("every_user_action_succeeded", asset="cleanup_report", blocking=True)
    ],
)
def cleanup_report(
    context: dg.AssetExecutionContext,
    user_decisions: pd.DataFrame,
    guard_inputs: GuardInputs,
    erasure_requests: OpenRequests,
    warning_emails: pd.DataFrame,
    deleted_accounts: pd.DataFrame,
    erased_accounts: pd.DataFrame,
    purged_deletions: dict[str, int],
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    reports_s3: S3Resource,
) -> dg.MaterializeResult:
    """The candidate report completed with each action's outcome and error, and what became of
    each erase request, at the same location (its summary too), with the run's ledger events
    and purge counts."""
    outcomes = pd.concat([warning_emails, deleted_accounts, erased_accounts], ignore_index=True)
    report = build_report(
        user_decisions, outcomes, dry_run=run_options.dry_run, stores=aws.store_names()
    )
    resources = (aws, cleanup_policy, run_options, reports_s3)
    # Read after the report: the requests this run closed are no longer open.
    requests = _deadline_counts(erasure_requests, erased_accounts)
    metadata = _publish(context, FINAL, report, user_decisions, guard_inputs, requests, resources)
    failed = count_outcomes(outcomes, Outcome.FAILED)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "notified": dg.MetadataValue.int(count_outcomes(warning_emails, Outcome.WARNED)),
            str(Outcome.DELETED): dg.MetadataValue.int(
                count_outcomes(deleted_accounts, Outcome.DELETED)
            ),
            # Users this run deleted, inactive or at their request, whom the proof found gone
            # from every store; the erasures among them again in `erased_verified`.
            "verified": dg.MetadataValue.int(
                int(deleted_accounts.attrs.get("verified", 0))
                + int(erased_accounts.attrs.get("verified", 0))
            ),
            "erased": dg.MetadataValue.int(count_outcomes(erased_accounts, Outcome.DELETED)),
            "erased_verified": dg.MetadataValue.int(int(erased_accounts.attrs.get("verified", 0))),
            "requests_done": dg.MetadataValue.int(
                int(erased_accounts.attrs.get("requests_done", 0))
            ),
            str(Outcome.SKIPPED): dg.MetadataValue.int(count_outcomes(outcomes, Outcome.SKIPPED)),
            str(Outcome.FAILED): dg.MetadataValue.int(failed),
            **_ledger_counts(deleted_accounts, purged_deletions, erased_accounts),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="every_user_action_succeeded",
                passed=failed == 0,
                metadata={str(Outcome.FAILED): failed},
                description=f"{failed} users failed; see the report's error column"
                if failed
                else "no user failed",
            )
        ],
    )


_LISTED = 20


@dg.asset(group_name=GROUP, deps=["candidate_report"], retry_policy=IDEMPOTENT_STEP_RETRY)
def removed_reports(
    context: dg.AssetExecutionContext,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    reports_s3: S3Resource,
) -> dg.MaterializeResult:
    """Report files (Parquet and summary) last written more than `report_retention_days` ago,
    removed from the reports folder or S3 prefix; nothing else there is touched, nor this run's
    own report. A dry run only counts them. Runs even when a guard blocks the actions."""
    days = cleanup_policy.report_retention_days  # 0..3,650, enforced by the policy's config
    base = aws.settings().reports_location
    metadata: dict[str, dg.MetadataValue] = {
        "retention_days": dg.MetadataValue.int(days),
        "reports_location": dg.MetadataValue.text(base),
    }
    if days == 0:
        context.log.info("report_retention_days is 0: every report is kept")
        zero = dg.MetadataValue.int(0)
        return dg.MaterializeResult(metadata={**metadata, "expired": zero, "removed": zero})
    s3 = reports_s3.get_client() if is_s3(base) else None
    cutoff = datetime.now(UTC) - timedelta(days=days)
    stored = stored_reports(base, s3)
    expired = expired_reports(stored, cutoff, keep_run_id=context.run.run_id)
    if not run_options.dry_run:
        remove_reports(expired, s3)
    removed = 0 if run_options.dry_run else len(expired)
    context.log.info(
        f"{len(expired)} of {len(stored)} report files older than {days} days; removed {removed}"
    )
    names = [report_name(r) for r in expired[:_LISTED]]
    more = len(expired) - len(names)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "cutoff": dg.MetadataValue.text(cutoff.isoformat(timespec="seconds")),
            "stored": dg.MetadataValue.int(len(stored)),
            "expired": dg.MetadataValue.int(len(expired)),
            "removed": dg.MetadataValue.int(removed),
            "files": dg.MetadataValue.md(
                "\n".join(f"- `{name}`" for name in names)
                + (f"\n- … and {more} more" if more else "")
                if names
                else "(none)"
            ),
        }
    )

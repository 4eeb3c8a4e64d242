"""The per-run candidate report: written before any action, completed with the outcomes after."""

import dagster as dg
import pandas as pd
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.aws.reports import (
    csv_location,
    is_s3,
    report_location,
    summary_location,
    write_csv,
    write_report,
    write_summary,
)
from cleanup_pipeline.core.approval import candidate_digests, report_candidates
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.guard_evaluation import GuardInputs
from cleanup_pipeline.core.inactivity import days_inactive_histogram
from cleanup_pipeline.core.report import build_report, count_outcomes
from cleanup_pipeline.core.report_summary import CANDIDATE, FINAL, ReportFacts, render_summary
from cleanup_pipeline.core.user_attributes import LAST_VISIT_AT
from cleanup_pipeline.core.vocabulary import Decision, Outcome
from cleanup_pipeline.orchestration import guarding
from cleanup_pipeline.orchestration.report_metadata import file_metadata, report_metadata
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.retries import IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.snapshot_assets import GROUP


def _publish(
    context: dg.AssetExecutionContext,
    stage: str,
    report: pd.DataFrame,
    decisions: pd.DataFrame,
    guard_inputs: GuardInputs,
    resources: tuple[AwsEnvironment, CleanupPolicy, RunOptions, S3Resource],
) -> dict[str, dg.MetadataValue]:
    """Write the report and its summary; return the metadata that shows them in the UI."""
    aws, policy, options, reports_s3 = resources
    run_id, as_of_ms = context.run.run_id, options.as_of_ms(context)
    as_of = format_ms(as_of_ms)
    # The guards the run's blocking checks evaluate, on the same inputs: the candidate report
    # is written in parallel with those checks and still says whether actions may follow.
    guards = guarding.run_guards(
        guard_inputs, policy, options.allow_mass_action, options.approved_run_id
    )
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


def _ledger_counts(
    deleted_accounts: pd.DataFrame, purged: dict[str, int]
) -> dict[str, dg.MetadataValue]:
    """What this run added to the deletion ledger, and what its purge did."""
    ledger = deleted_accounts.attrs.get("ledger", {})
    counts = {
        "ledger_deleted": ledger.get("deleted", 0),
        "ledger_recorded_late": ledger.get("recorded_late", 0),
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
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    reports_s3: S3Resource,
) -> dg.MaterializeResult:
    """What this run decided, written before any action so that a run stopped by a guard still
    leaves its report (outcomes `not_attempted`) and says which guard stopped it."""
    report = build_report(user_decisions, dry_run=run_options.dry_run)
    resources = (aws, cleanup_policy, run_options, reports_s3)
    return dg.MaterializeResult(
        metadata=_publish(context, CANDIDATE, report, user_decisions, guard_inputs, resources)
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
    warning_emails: pd.DataFrame,
    deleted_accounts: pd.DataFrame,
    purged_deletions: dict[str, int],
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    reports_s3: S3Resource,
) -> dg.MaterializeResult:
    """The candidate report completed with each action's outcome and error, at the same
    location (its summary too), with the run's ledger events and purge counts."""
    outcomes = pd.concat([warning_emails, deleted_accounts], ignore_index=True)
    report = build_report(user_decisions, outcomes, dry_run=run_options.dry_run)
    resources = (aws, cleanup_policy, run_options, reports_s3)
    metadata = _publish(context, FINAL, report, user_decisions, guard_inputs, resources)
    failed = count_outcomes(outcomes, Outcome.FAILED)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "notified": dg.MetadataValue.int(count_outcomes(warning_emails, Outcome.WARNED)),
            str(Outcome.DELETED): dg.MetadataValue.int(
                count_outcomes(deleted_accounts, Outcome.DELETED)
            ),
            str(Outcome.SKIPPED): dg.MetadataValue.int(count_outcomes(outcomes, Outcome.SKIPPED)),
            str(Outcome.FAILED): dg.MetadataValue.int(failed),
            **_ledger_counts(deleted_accounts, purged_deletions),
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

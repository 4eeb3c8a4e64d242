"""The per-run candidate report: written before any action, completed with the outcomes after."""

import dagster as dg
import pandas as pd

from cleanup_pipeline.actions.outcomes import DELETED, FAILED, SKIPPED, WARNED
from cleanup_pipeline.aws.report_store import report_location, write_report
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.report import build_report, count_outcomes
from cleanup_pipeline.orchestration.resources import AwsEnvironment, RunOptions
from cleanup_pipeline.orchestration.snapshot_assets import GROUP


def _write(
    context: dg.AssetExecutionContext,
    report: pd.DataFrame,
    aws: AwsEnvironment,
    run_options: RunOptions,
) -> str:
    settings = aws.settings()
    as_of = format_ms(run_options.as_of_ms(context))
    # Stored in the Parquet file's metadata; pandas restores it as `DataFrame.attrs`.
    report.attrs = {
        "run_id": context.run.run_id,
        "as_of": as_of,
        "dry_run": run_options.dry_run,
        "allow_mass_action": run_options.allow_mass_action,
    }
    location = report_location(settings.reports_location, as_of, context.run.run_id)
    s3 = aws.clients().s3 if location.startswith("s3://") else None
    return write_report(report, location, s3)


def _metadata(
    path: str, report: pd.DataFrame, run_options: RunOptions
) -> dict[str, dg.MetadataValue]:
    return {
        "path": dg.MetadataValue.path(path),
        "rows": dg.MetadataValue.int(len(report)),
        "dry_run": dg.MetadataValue.bool(run_options.dry_run),
        "allow_mass_action": dg.MetadataValue.bool(run_options.allow_mass_action),
    }


@dg.asset(group_name=GROUP, compute_kind="parquet")
def candidate_report(
    context: dg.AssetExecutionContext,
    user_decisions: pd.DataFrame,
    aws: AwsEnvironment,
    run_options: RunOptions,
) -> dg.MaterializeResult:
    """What this run decided, written before any action so that a run stopped by a guard still
    leaves its report (outcomes `not_attempted`)."""
    report = build_report(user_decisions, dry_run=run_options.dry_run)
    path = _write(context, report, aws, run_options)
    return dg.MaterializeResult(metadata=_metadata(path, report, run_options))


@dg.asset(
    group_name=GROUP,
    compute_kind="parquet",
    deps=["candidate_report"],
    check_specs=[
        dg.AssetCheckSpec("every_user_action_succeeded", asset="cleanup_report", blocking=True)
    ],
)
def cleanup_report(
    context: dg.AssetExecutionContext,
    user_decisions: pd.DataFrame,
    warning_emails: pd.DataFrame,
    deleted_accounts: pd.DataFrame,
    aws: AwsEnvironment,
    run_options: RunOptions,
) -> dg.MaterializeResult:
    """The candidate report completed with each action's outcome and error."""
    outcomes = pd.concat([warning_emails, deleted_accounts], ignore_index=True)
    report = build_report(user_decisions, outcomes, dry_run=run_options.dry_run)
    path = _write(context, report, aws, run_options)
    failed = count_outcomes(outcomes, FAILED)
    return dg.MaterializeResult(
        metadata={
            **_metadata(path, report, run_options),
            "notified": dg.MetadataValue.int(count_outcomes(warning_emails, WARNED)),
            "deleted": dg.MetadataValue.int(count_outcomes(deleted_accounts, DELETED)),
            "skipped": dg.MetadataValue.int(count_outcomes(outcomes, SKIPPED)),
            "failed": dg.MetadataValue.int(failed),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="every_user_action_succeeded",
                passed=failed == 0,
                metadata={"failed": failed},
                description=f"{failed} users failed; see the report's error column"
                if failed
                else "no user failed",
            )
        ],
    )

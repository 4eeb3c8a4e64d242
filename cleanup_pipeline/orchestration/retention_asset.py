"""Report files past their retention, removed by the job itself."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.aws.reports import (
    expired_reports,
    is_s3,
    remove_reports,
    report_name,
    stored_reports,
)
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.retries import IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.snapshot_assets import GROUP

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
    days = cleanup_policy.report_retention_days
    if days < 0:
        raise dg.Failure(
            f"report_retention_days must be 0 (keep all) or more, not {days}", allow_retries=False
        )
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

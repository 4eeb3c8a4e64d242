"""The users snapshot: one parallel, projected scan of the users table per run."""

import dagster as dg
import pandas as pd

from cleanup_pipeline.aws.bucket import VersioningNotEnabledError, require_versioning
from cleanup_pipeline.aws.users_table import scan_snapshot
from cleanup_pipeline.core.progress import ProgressLog
from cleanup_pipeline.core.snapshot_schema import REQUIRED_COLUMNS
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy
from cleanup_pipeline.orchestration.retries import IDEMPOTENT_STEP_RETRY

GROUP = "cleanup"


@dg.asset(group_name=GROUP, kinds={"dynamodb"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def users_snapshot(
    context: dg.AssetExecutionContext, aws: AwsEnvironment, cleanup_policy: CleanupPolicy
) -> dg.Output[pd.DataFrame]:
    """Every user's decision attributes, read by a parallel Scan with a projection. Email
    addresses are not kept: only whether one is present and its masked form. With a restore
    window, the public bucket must keep deleted files as versions: checked here, first."""
    settings = aws.settings()  # fails here, before any AWS call, if configuration is missing
    if settings.restore_window_days > 0:
        try:
            require_versioning(aws.clients().s3, settings.public_bucket_name)
        except VersioningNotEnabledError as error:  # configuration: retrying cannot help
            raise dg.Failure(description=str(error), allow_retries=False) from error
    with ProgressLog(
        context.log.info, "users scanned", interval=cleanup_policy.progress_log_seconds
    ) as progress:
        snapshot = scan_snapshot(
            aws.clients().dynamodb,
            settings.users_table,
            segments=cleanup_policy.scan_segments,
            on_page=progress.advance,
        )
    malformed = int(snapshot["malformed"].notna().sum())
    context.log.info(f"scanned {len(snapshot)} users; {malformed} with malformed values")
    return dg.Output(
        snapshot,
        metadata={
            "users": dg.MetadataValue.int(len(snapshot)),
            "malformed": dg.MetadataValue.int(malformed),
            "scan_segments": dg.MetadataValue.int(cleanup_policy.scan_segments),
            "table": dg.MetadataValue.text(settings.users_table),
        },
    )


@dg.asset_check(asset=users_snapshot, blocking=True)
def users_snapshot_not_empty(users_snapshot: pd.DataFrame) -> dg.AssetCheckResult:
    """An empty users table means a wrong table or region, never "nobody to clean up"."""
    return dg.AssetCheckResult(
        passed=len(users_snapshot) > 0, metadata={"users": len(users_snapshot)}
    )


@dg.asset_check(asset=users_snapshot, blocking=True)
def user_ids_unique(users_snapshot: pd.DataFrame) -> dg.AssetCheckResult:
    """A scan returns each key once; a repeated id means the snapshot cannot be trusted."""
    ids = users_snapshot["id"].dropna()
    duplicated = int(ids.duplicated().sum())
    return dg.AssetCheckResult(
        passed=duplicated == 0,
        metadata={"duplicated_ids": duplicated, "sample": ", ".join(ids[ids.duplicated()][:5])},
    )


@dg.asset_check(asset=users_snapshot, blocking=True)
def required_columns_present(users_snapshot: pd.DataFrame) -> dg.AssetCheckResult:
    """Every column the decision rules read is in the snapshot."""
    missing = [column for column in REQUIRED_COLUMNS if column not in users_snapshot.columns]
    return dg.AssetCheckResult(passed=not missing, metadata={"missing": ", ".join(missing)})

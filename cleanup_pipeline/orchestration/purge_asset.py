"""The purge of deletions whose restore window ended, at the end of every run that acts."""

from collections.abc import Iterator

import dagster as dg

from cleanup_pipeline.actions.purge import PurgeCounts, purge_expired
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.orchestration.resources import AwsEnvironment, RunOptions
from cleanup_pipeline.orchestration.snapshot_assets import GROUP


@dg.asset(
    group_name=GROUP,
    kinds={"s3"},
    deps=["deleted_accounts"],
    check_specs=[dg.AssetCheckSpec("every_expired_deletion_purged", asset="purged_deletions")],
)
def purged_deletions(
    context: dg.AssetExecutionContext, aws: AwsEnvironment, run_options: RunOptions
) -> Iterator[dg.Output[dict[str, int]] | dg.AssetCheckResult]:
    """Deletions whose restore window ended, gone for good: every version and delete marker
    under each user's folder, then their manifests; a `purged` event in the ledger for each.
    A dry run only counts. What fails stays for the next run."""
    settings, clients = aws.settings(), aws.clients()
    archive = open_archive(settings.archive_location, clients.s3)
    try:
        counts = purge_expired(
            archive,
            clients.s3,
            clients.dynamodb,
            settings,
            context.run.run_id,
            dry_run=run_options.dry_run,
        )
        error = None
    except Exception as raised:  # the archive unreadable: nothing purged, the next run retries
        counts, error = PurgeCounts(), f"{type(raised).__name__}: {raised}"
        context.log.error(f"purge not done, left for the next run: {error}")
    summary = counts.as_dict()
    failed = counts.failed_users + (1 if error else 0)
    yield dg.Output(
        summary,
        metadata={
            **{name: dg.MetadataValue.int(value) for name, value in summary.items()},
            "dry_run": dg.MetadataValue.bool(run_options.dry_run),
            "restore_window_days": dg.MetadataValue.float(settings.restore_window_days),
        },
    )
    yield dg.AssetCheckResult(
        check_name="every_expired_deletion_purged",
        passed=failed == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failed_users": counts.failed_users, "waiting_users": counts.waiting_users},
        description=error or f"{failed} purges failed; the next run retries them",
    )

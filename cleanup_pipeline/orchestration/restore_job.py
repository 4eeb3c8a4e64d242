"""`restore_account`: bring a deleted user back from the UI (launchpad config: the user id)."""

import json

import dagster as dg
from pydantic import Field

from cleanup_pipeline.actions.restore import RestoreContext, restore_user
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.core.restore_plan import REFUSED
from cleanup_pipeline.core.user_attributes import check_user_id
from cleanup_pipeline.orchestration.resources import AwsEnvironment

RESTORE_JOB = "restore_account"


class RestoreConfig(dg.Config):
    user_id: str = Field(description="Id of the deleted user to bring back.")
    dry_run: bool = Field(False, description="Only say what would be restored; write nothing.")


@dg.op
def restore_deleted_account(
    context: dg.OpExecutionContext, config: RestoreConfig, aws: AwsEnvironment
) -> dict:
    """What the latest deletion of the user removed, put back from the archive and the bucket's
    versions: files, feature references, scoreboard entries, and last the account itself. A
    refused restore (the account exists, was restored or purged, or never deleted) writes
    nothing and fails the run, saying why."""
    try:
        user_id = check_user_id(config.user_id.strip(), "user_id")
    except ValueError as error:
        raise dg.Failure(description=str(error)) from None
    settings, clients = aws.settings(), aws.clients()
    ctx = RestoreContext(
        clients.dynamodb,
        clients.s3,
        settings,
        open_archive(settings.archive_location, clients.s3, existing=True),
        context.run.run_id,
    )
    summary = restore_user(ctx, user_id, config.dry_run).summary()
    context.log.info(json.dumps(summary))
    counts = {
        f"{group}_{kind}": dg.MetadataValue.int(value)
        for group in ("restored", "skipped")
        for kind, value in summary[group].items()
        if isinstance(value, int)
    }
    metadata = {
        "user_id": dg.MetadataValue.text(summary["user_id"]),
        "status": dg.MetadataValue.text(summary["status"]),
        "reason": dg.MetadataValue.text(summary["reason"]),
        "result": dg.MetadataValue.json(summary),
        **counts,
    }
    if summary["status"] == REFUSED:
        raise dg.Failure(description=summary["reason"], metadata=metadata)
    context.add_output_metadata(metadata)
    return summary


@dg.job(name=RESTORE_JOB, tags={"cleanup_pipeline/job": RESTORE_JOB})
def restore_account() -> None:
    """Restore one deleted user within the restore window (SPEC §9)."""
    restore_deleted_account()

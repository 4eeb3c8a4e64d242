"""`manage_hold`: add or remove a persistent hold from the Dagster UI (SPEC §10)."""

import time
from typing import Literal

import dagster as dg
from pydantic import Field

from cleanup_pipeline.aws.holds_table import delete_hold, put_hold
from cleanup_pipeline.core.holds import HOLDS_OFF, HoldError, new_hold
from cleanup_pipeline.core.user_attributes import check_user_id
from cleanup_pipeline.orchestration.resources import AwsEnvironment


class HoldChange(dg.Config):
    action: Literal["add", "remove"] = Field(description="add (or replace) or remove a hold")
    user_id: str = Field(description="the user's id in the users table")
    reason: str = Field("", description="add: why the user is held; shown in every report")
    until: str = Field("", description="add: ISO 8601 or epoch ms; empty holds until removed")


@dg.op
def change_hold(context: dg.OpExecutionContext, config: HoldChange, aws: AwsEnvironment) -> None:
    """Writes the hold to the holds table; the next run, and every batch of a run underway,
    honours it."""
    now = int(time.time() * 1000)
    table = aws.settings().holds_table
    try:
        if table is None:
            raise HoldError(HOLDS_OFF)
        if config.action == "add":
            hold = new_hold(config.user_id, config.reason, config.until or None, now)
            replaced = put_hold(aws.clients().dynamodb, table, hold)
            context.add_output_metadata(
                {
                    "user_id": hold.user_id,
                    "reason": hold.reason,
                    "until": str(hold.as_json(now)["until"] or "until removed"),
                    "replaced_earlier_hold": replaced is not None,
                }
            )
            return
        check_user_id(config.user_id, "user_id")
        removed = delete_hold(aws.clients().dynamodb, table, config.user_id)
        if removed is None:
            raise HoldError(f"{config.user_id!r} has no hold: nothing removed")
        context.add_output_metadata({"user_id": removed.user_id, "removed_reason": removed.reason})
    except ValueError as error:  # a HoldError, or a user id that cannot be one
        raise dg.Failure(description=str(error)) from error


@dg.job(
    description="Add or remove a persistent hold: a held user is never warned or deleted until "
    "the hold is removed or its `until` passes.",
    tags={"cleanup_pipeline/job": "manage_hold"},
)
def manage_hold() -> None:
    change_hold()

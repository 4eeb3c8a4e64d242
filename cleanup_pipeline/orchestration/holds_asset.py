"""The operator's persistent holds in force at the start of the run (SPEC §10)."""

import time

import dagster as dg
import pandas as pd

from cleanup_pipeline.aws.holds_table import scan_holds
from cleanup_pipeline.core import holds as hold_rules
from cleanup_pipeline.orchestration.resources import AwsEnvironment
from cleanup_pipeline.orchestration.retries import IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.snapshot_assets import GROUP

_PREVIEW_ROWS = 20


def holds_frame(held: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"id": list(held), "reason": list(held.values())}, dtype="string[pyarrow]")


def holds_of(frame: pd.DataFrame) -> dict[str, str]:
    """{user id: reason} back from the asset's frame."""
    return dict(zip(frame["id"].astype(str), frame["reason"].astype(str), strict=True))


@dg.asset(group_name=GROUP, kinds={"dynamodb"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def active_holds(context: dg.AssetExecutionContext, aws: AwsEnvironment) -> dg.Output[pd.DataFrame]:
    """Users an operator put on hold in the holds table (`HOLDS_TABLE_NAME`), whose hold has not
    expired: exempt from every action of this run, with the hold's reason. Each batch re-reads
    its users' holds before acting, so a hold added later in the run still protects them."""
    settings = aws.settings()
    if settings.holds_table is None:
        return dg.Output(
            holds_frame({}),
            metadata={"held": dg.MetadataValue.int(0), "table": dg.MetadataValue.text("(none)")},
        )
    stored = scan_holds(aws.clients().dynamodb, settings.holds_table)
    held = hold_rules.active_holds(stored, int(time.time() * 1000))
    context.log.info(f"{len(held)} active holds ({len(stored) - len(held)} expired)")
    preview = "\n".join(f"| {uid} | {why} |" for uid, why in list(held.items())[:_PREVIEW_ROWS])
    return dg.Output(
        holds_frame(held),
        metadata={
            "held": dg.MetadataValue.int(len(held)),
            "expired": dg.MetadataValue.int(len(stored) - len(held)),
            "table": dg.MetadataValue.text(settings.holds_table),
            "preview": dg.MetadataValue.md(
                f"| user | reason |\n|---|---|\n{preview}" if held else "(none)"
            ),
        },
    )

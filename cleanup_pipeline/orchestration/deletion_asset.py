"""The deletion cascade as a graph-backed asset: each op is one step, visible in the UI."""

from typing import Any

import dagster as dg
import pandas as pd

from cleanup_pipeline.actions import cascade
from cleanup_pipeline.actions.cascade import CascadeBatch, CascadeContext
from cleanup_pipeline.actions.outcomes import DRY_RUN
from cleanup_pipeline.aws import references
from cleanup_pipeline.aws.observability import report_failure
from cleanup_pipeline.orchestration import guarding
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.snapshot_assets import GROUP


def _context(
    context: dg.OpExecutionContext,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeContext:
    clients = aws.clients()
    return CascadeContext(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        settings=aws.settings(),
        as_of=run_options.as_of_ms(context),
        policy=cleanup_policy.policy(),
        on_failure=lambda user_id, step, error: report_failure(
            user_id, step, context.run.run_id, error
        ),
    )


@dg.op(ins={"warnings_gate": dg.In(dg.Nothing)})
def confirm_deletion_candidates(
    context: dg.OpExecutionContext,
    candidates: pd.DataFrame,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Re-read the candidates with a consistent read; anyone who changed leaves the cascade."""
    user_ids = candidates["id"].astype(str).tolist()
    if run_options.dry_run or not user_ids:
        batch = CascadeBatch(items={})
        for user_id in user_ids:
            batch.outcomes.add(user_id, DRY_RUN)
        return batch
    guarding.enforce_before_actions(context, cleanup_policy, run_options.allow_mass_action)
    return cascade.confirm_candidates(_context(context, aws, cleanup_policy, run_options), user_ids)


@dg.op
def read_references(batch: CascadeBatch, aws: AwsEnvironment) -> dict[str, Any]:
    """Features by proposer and every scoreboard, read once for the whole run."""
    if not batch.items:
        return {"features": {}, "scoreboards": {}}
    settings, client = aws.settings(), aws.clients().dynamodb
    return {
        "features": references.features_by_proposer(client, settings.features_table),
        "scoreboards": references.read_scoreboards(
            client, settings.scoreboards_table, settings.scoreboard_periods
        ),
    }


@dg.op
def delete_user_files(
    context: dg.OpExecutionContext,
    batch: CascadeBatch,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Delete every object in each user's folder of the public bucket."""
    return cascade.delete_files(_context(context, aws, cleanup_policy, run_options), batch)


@dg.op
def unlink_proposed_features(
    context: dg.OpExecutionContext,
    batch: CascadeBatch,
    refs: dict[str, Any],
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Remove the users as proposers of features; the features stay."""
    ctx = _context(context, aws, cleanup_policy, run_options)
    return cascade.unlink_features(ctx, batch, refs["features"])


@dg.op
def prune_user_scoreboards(
    context: dg.OpExecutionContext,
    batch: CascadeBatch,
    refs: dict[str, Any],
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Remove the users' entries from every scoreboard."""
    ctx = _context(context, aws, cleanup_policy, run_options)
    return cascade.prune_scoreboards(ctx, batch, refs["scoreboards"])


@dg.op
def archive_user_emails(
    context: dg.OpExecutionContext,
    batch: CascadeBatch,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Keep each address in the emails table."""
    return cascade.archive_emails(_context(context, aws, cleanup_policy, run_options), batch)


@dg.op
def delete_user_records(
    context: dg.OpExecutionContext,
    batch: CascadeBatch,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> pd.DataFrame:
    """Last: delete each user item, only if it is still a delete candidate."""
    ctx = _context(context, aws, cleanup_policy, run_options)
    outcomes = cascade.delete_user_items(ctx, batch)
    frame = outcomes.frame()
    counts = frame["outcome"].value_counts().to_dict()
    context.add_output_metadata(
        {
            "candidates": dg.MetadataValue.int(len(frame)),
            **{f"{k}": dg.MetadataValue.int(int(v)) for k, v in counts.items()},
        }
    )
    return frame


@dg.graph_asset(
    group_name=GROUP,
    ins={
        "deletion_candidates": dg.AssetIn(),
        # Gated by the warning guards too: any failed guard stops every action of the run.
        "notify_candidates": dg.AssetIn(dagster_type=dg.Nothing),
    },
)
def deleted_accounts(deletion_candidates: pd.DataFrame, notify_candidates: None) -> pd.DataFrame:
    """Accounts deleted with everything they left behind: files, feature and scoreboard
    references; their address kept in the emails table; the user item deleted last. Runs
    only when every guard of the run passed."""
    batch = confirm_deletion_candidates(
        candidates=deletion_candidates, warnings_gate=notify_candidates
    )
    refs = read_references(batch)
    batch = delete_user_files(batch)
    batch = unlink_proposed_features(batch, refs)
    batch = prune_user_scoreboards(batch, refs)
    batch = archive_user_emails(batch)
    return delete_user_records(batch)

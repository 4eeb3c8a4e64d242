"""The deletion cascade as a graph-backed asset that fans out in batches.

The candidates are split into batches (`deletion_batch_size`); each batch runs the cascade as
its own chain of ops, one op per step, so a multiprocess, Kubernetes or ECS executor runs
batches side by side on several workers. The references (features by proposer, scoreboards) are
read once per run and shared by every batch. Between steps only ids and the re-read decision
attributes flow, never an email address.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from cleanup_pipeline.actions import cascade
from cleanup_pipeline.actions.cascade import CascadeBatch, CascadeContext, RunReferences
from cleanup_pipeline.actions.outcomes import DRY_RUN, empty_outcomes
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


@dg.op(
    ins={"warnings_gate": dg.In(dg.Nothing)},
    out={"batches": dg.DynamicOut(list[str]), "candidate_ids": dg.Out(list[str])},
)
def split_deletion_candidates(
    context: dg.OpExecutionContext,
    candidates: pd.DataFrame,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> Iterator[dg.Output[list[str]] | dg.DynamicOutput[list[str]]]:
    """The candidates' ids in batches of `deletion_batch_size`, after the run's guards passed
    once more; each batch runs the cascade on its own."""
    user_ids = candidates["id"].astype(str).tolist()
    if user_ids and not run_options.dry_run:
        guarding.enforce_before_actions(context, cleanup_policy, run_options.allow_mass_action)
    batches = cascade.split_into_batches(user_ids, cleanup_policy.deletion_batch_size)
    context.log.info(f"{len(user_ids)} delete candidates in {len(batches)} batches")
    yield dg.Output(sorted(set(user_ids)), output_name="candidate_ids")
    for number, batch in enumerate(batches):
        yield dg.DynamicOutput(batch, mapping_key=f"batch_{number:04d}", output_name="batches")


@dg.op
def read_references(
    candidate_ids: list[str], aws: AwsEnvironment, run_options: RunOptions
) -> RunReferences:
    """The features each candidate proposed and the scoreboards listing them, read once for the
    whole run; only what concerns the candidates is kept."""
    if run_options.dry_run or not candidate_ids:
        return RunReferences()
    settings, client = aws.settings(), aws.clients().dynamodb
    return RunReferences(
        features=references.features_by_proposer(client, settings.features_table, candidate_ids),
        scoreboards=references.listed_on_scoreboards(
            client, settings.scoreboards_table, settings.scoreboard_periods, candidate_ids
        ),
    )


@dg.op
def confirm_deletion_batch(
    context: dg.OpExecutionContext,
    user_ids: list[str],
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Re-read the batch with a consistent read; anyone who changed leaves the cascade."""
    if run_options.dry_run:
        batch = CascadeBatch(items={})
        for user_id in user_ids:
            batch.outcomes.add(user_id, DRY_RUN)
        return batch
    return cascade.confirm_candidates(_context(context, aws, cleanup_policy, run_options), user_ids)


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
    refs: RunReferences,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Remove the users as proposers of features; the features stay."""
    ctx = _context(context, aws, cleanup_policy, run_options)
    return cascade.unlink_features(ctx, batch, refs.features)


@dg.op
def prune_user_scoreboards(
    context: dg.OpExecutionContext,
    batch: CascadeBatch,
    refs: RunReferences,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> CascadeBatch:
    """Remove the users' entries from every scoreboard."""
    ctx = _context(context, aws, cleanup_policy, run_options)
    return cascade.prune_scoreboards(ctx, batch, refs.scoreboards)


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


def _counts(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    counts = frame["outcome"].value_counts().to_dict()
    return {
        "candidates": dg.MetadataValue.int(len(frame)),
        **{f"{k}": dg.MetadataValue.int(int(v)) for k, v in counts.items()},
    }


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
    frame = cascade.delete_user_items(ctx, batch).frame()
    context.add_output_metadata(_counts(frame))
    return frame


@dg.op
def gather_deletion_outcomes(
    context: dg.OpExecutionContext, parts: list[pd.DataFrame]
) -> pd.DataFrame:
    """Every batch's outcomes in one frame, for the report."""
    frame = pd.concat(parts, ignore_index=True) if parts else empty_outcomes("delete")
    context.add_output_metadata(_counts(frame))
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
    references; their address kept in the emails table; the user item deleted last. The
    candidates run in batches, side by side where the executor allows. Runs only when every
    guard of the run passed."""
    batches, candidate_ids = split_deletion_candidates(
        candidates=deletion_candidates, warnings_gate=notify_candidates
    )
    refs = read_references(candidate_ids)

    def cascade_of(user_ids: list[str]) -> pd.DataFrame:
        batch = confirm_deletion_batch(user_ids)
        batch = delete_user_files(batch)
        batch = unlink_proposed_features(batch, refs)
        batch = prune_user_scoreboards(batch, refs)
        batch = archive_user_emails(batch)
        return delete_user_records(batch)

    return gather_deletion_outcomes(batches.map(cascade_of).collect())

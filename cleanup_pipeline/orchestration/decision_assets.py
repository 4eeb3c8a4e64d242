"""Decisions for every user (SPEC §3) and the candidate sets (their guards: guard_checks.py)."""

import time

import dagster as dg
import pandas as pd
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.core.approval import APPROVED_RUN_TAG, NOT_APPROVED, not_approved_counts
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import DELETE, NOTIFY, classify, count_decisions
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.orchestration.approval import approve
from cleanup_pipeline.orchestration.frame_types import (
    DecisionsFrame,
    DeletionCandidates,
    NotifyCandidates,
)
from cleanup_pipeline.orchestration.holds_asset import holds_of
from cleanup_pipeline.orchestration.previews import candidates_preview
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.retries import IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.snapshot_assets import GROUP


@dg.asset(
    group_name=GROUP,
    dagster_type=DecisionsFrame,
    kinds={"pandas"},
    retry_policy=IDEMPOTENT_STEP_RETRY,
)
def user_decisions(
    context: dg.AssetExecutionContext,
    users_snapshot: pd.DataFrame,
    active_holds: pd.DataFrame,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    reports_s3: S3Resource,
) -> dg.Output[pd.DataFrame]:
    """The decision rules applied to every user at the run's `as_of`: invalid, exempt, active,
    waiting, notify or delete, each with its reason; held users (the holds table and
    `exempt_user_ids`) are exempt, with why they are held. With `approved_run_id`, candidates
    who were not the same kind of candidate in that run's report are `not_approved`."""
    as_of = run_options.as_of_ms(context)
    # Recorded on the run whatever launched it (UI, schedule or CLI), so history shows it.
    tags = {
        "as_of": format_ms(as_of),
        "cleanup_pipeline/dry_run": str(run_options.dry_run).lower(),
        "cleanup_pipeline/allow_mass_action": str(run_options.allow_mass_action).lower(),
    }
    if run_options.approved_run_id:
        tags[APPROVED_RUN_TAG] = run_options.approved_run_id
    context.instance.add_run_tags(context.run.run_id, tags)
    now = int(time.time() * 1000)
    policy = cleanup_policy.policy()
    decisions = approve(
        context,
        classify(users_snapshot, as_of, now, policy, holds_of(active_holds)),
        run_options.approved_run_id,
        cleanup_policy.approval_max_age_days,
        reports_s3.get_client,
    )
    counts = {**count_decisions(decisions), **not_approved_counts(decisions)}
    reasons = decisions.groupby(["decision", "reason"], observed=True).size()
    return dg.Output(
        decisions,
        metadata={
            "as_of": dg.MetadataValue.text(format_ms(as_of)),
            "approved_run_id": dg.MetadataValue.text(run_options.approved_run_id or "(none)"),
            **{name: dg.MetadataValue.int(n) for name, n in counts.items()},
            "by_reason": dg.MetadataValue.md(
                "| decision | reason | users |\n|---|---|---|\n"
                + "\n".join(f"| {d} | {r} | {n} |" for (d, r), n in reasons.items())
            ),
        },
    )


# Columns of the decisions frame that say nothing about a candidate (who is held, and why).
_NOT_FOR_CANDIDATES = ["hold_reason", NOT_APPROVED]


def _candidates(decisions: pd.DataFrame, decision: Decision) -> dg.Output[pd.DataFrame]:
    """The users to act on: candidates of `decision`, without those the approval left out."""
    chosen = (decisions["decision"] == decision).to_numpy(dtype=bool)
    if NOT_APPROVED in decisions.columns:
        chosen = chosen & ~decisions[NOT_APPROVED].to_numpy(dtype=bool)
    rows = decisions[chosen].reset_index(drop=True)
    rows = rows.drop(columns=[c for c in _NOT_FOR_CANDIDATES if c in rows.columns])
    rows = rows.astype({"email_masked": "string", "id": "string"})
    return dg.Output(
        rows,
        metadata={"count": dg.MetadataValue.int(len(rows)), "preview": candidates_preview(rows)},
    )


def _candidate_asset(
    name: str, decision: Decision, dagster_type: dg.DagsterType, description: str
) -> dg.AssetsDefinition:
    """The users of one decision, typed, with their count and a masked preview."""

    @dg.asset(
        name=name,
        group_name=GROUP,
        dagster_type=dagster_type,
        kinds={"pandas"},
        retry_policy=IDEMPOTENT_STEP_RETRY,
        description=description,
    )
    def candidates(user_decisions: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        return _candidates(user_decisions, decision)

    return candidates


notify_candidates = _candidate_asset(
    "notify_candidates",
    NOTIFY,
    NotifyCandidates,
    "Users inactive past the warning threshold who have not been warned in this episode.",
)
deletion_candidates = _candidate_asset(
    "deletion_candidates",
    DELETE,
    DeletionCandidates,
    "Users warned more than the grace period ago who never came back.",
)

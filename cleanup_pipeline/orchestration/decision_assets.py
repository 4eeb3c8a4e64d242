"""Decisions for every user (SPEC §3), the candidate sets, and the guards that gate actions."""

import time

import dagster as dg
import pandas as pd

from cleanup_pipeline.core import guards
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import DELETE, NOTIFY, classify, count_decisions
from cleanup_pipeline.orchestration.frame_types import (
    DecisionsFrame,
    DeletionCandidates,
    NotifyCandidates,
)
from cleanup_pipeline.orchestration.previews import candidates_preview
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.snapshot_assets import GROUP


@dg.asset(group_name=GROUP, dagster_type=DecisionsFrame, compute_kind="pandas")
def user_decisions(
    context: dg.AssetExecutionContext,
    users_snapshot: pd.DataFrame,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> dg.Output[pd.DataFrame]:
    """The decision rules applied to every user at the run's `as_of`: invalid, exempt, active,
    waiting, notify or delete, each with its reason."""
    as_of = run_options.as_of_ms(context)
    decisions = classify(users_snapshot, as_of, int(time.time() * 1000), cleanup_policy.policy())
    counts = count_decisions(decisions)
    reasons = decisions.groupby(["decision", "reason"], observed=True).size()
    return dg.Output(
        decisions,
        metadata={
            "as_of": dg.MetadataValue.text(format_ms(as_of)),
            **{name: dg.MetadataValue.int(n) for name, n in counts.items()},
            "by_reason": dg.MetadataValue.md(
                "| decision | reason | users |\n|---|---|---|\n"
                + "\n".join(f"| {d} | {r} | {n} |" for (d, r), n in reasons.items())
            ),
        },
    )


def _candidates(decisions: pd.DataFrame, decision: str) -> pd.DataFrame:
    rows = decisions[decisions["decision"] == decision].reset_index(drop=True)
    return rows.astype({"email_masked": "string", "id": "string"})


@dg.asset(group_name=GROUP, dagster_type=NotifyCandidates, compute_kind="pandas")
def notify_candidates(user_decisions: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Users inactive past the warning threshold who have not been warned in this episode."""
    rows = _candidates(user_decisions, NOTIFY)
    return dg.Output(
        rows,
        metadata={"count": dg.MetadataValue.int(len(rows)), "preview": candidates_preview(rows)},
    )


@dg.asset(group_name=GROUP, dagster_type=DeletionCandidates, compute_kind="pandas")
def deletion_candidates(user_decisions: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Users warned more than the grace period ago who never came back."""
    rows = _candidates(user_decisions, DELETE)
    return dg.Output(
        rows,
        metadata={"count": dg.MetadataValue.int(len(rows)), "preview": candidates_preview(rows)},
    )


def _result(result: guards.GuardResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.reason,
        metadata={
            "rule": dg.MetadataValue.text(result.name),
            "count": dg.MetadataValue.int(result.count),
            "limit": dg.MetadataValue.float(float(result.limit)),
            "why": dg.MetadataValue.text(result.reason),
        },
    )


@dg.asset_check(
    asset=deletion_candidates, blocking=True, additional_ins={"user_decisions": dg.AssetIn()}
)
def invalid_share_within_limit(
    user_decisions: pd.DataFrame, cleanup_policy: CleanupPolicy
) -> dg.AssetCheckResult:
    """Too many malformed users means bad data: nobody is warned or deleted this run."""
    return _result(guards.invalid_share(count_decisions(user_decisions), cleanup_policy.limits()))


@dg.asset_check(
    asset=deletion_candidates, blocking=True, additional_ins={"user_decisions": dg.AssetIn()}
)
def deletions_within_limit(
    user_decisions: pd.DataFrame, cleanup_policy: CleanupPolicy, run_options: RunOptions
) -> dg.AssetCheckResult:
    """A batch of deletions far larger than usual is stopped until an operator allows it."""
    return _result(
        guards.deletions_within_limit(
            count_decisions(user_decisions), cleanup_policy.limits(), run_options.allow_mass_action
        )
    )


@dg.asset_check(
    asset=notify_candidates, blocking=True, additional_ins={"user_decisions": dg.AssetIn()}
)
def warnings_within_limit(
    user_decisions: pd.DataFrame, cleanup_policy: CleanupPolicy, run_options: RunOptions
) -> dg.AssetCheckResult:
    """A batch of warnings far larger than usual is stopped until an operator allows it."""
    return _result(
        guards.warnings_within_limit(
            count_decisions(user_decisions), cleanup_policy.limits(), run_options.allow_mass_action
        )
    )

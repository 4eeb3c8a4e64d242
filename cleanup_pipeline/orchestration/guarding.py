"""The guards of SPEC §5 evaluated against this run's counts and Dagster's own run history.

Used by the blocking checks and, again, by the action assets themselves: blocking checks gate
only downstream assets of the same run, and an operator can materialize an action alone.
"""

import dagster as dg
import pandas as pd

from cleanup_pipeline.core import guards
from cleanup_pipeline.core.approval import (
    REVIEWABLE_GUARDS,
    acted_counts,
    guard_counts,
    how_to_approve,
    lift_for_review,
)
from cleanup_pipeline.core.guards import GuardResult
from cleanup_pipeline.observability.sentry import report_guard_failure
from cleanup_pipeline.orchestration.resources import CleanupPolicy

DECISIONS_KEY = dg.AssetKey("user_decisions")
COUNT_KEYS = ("users", "invalid", "exempt", "active", "waiting", "notify", "delete")
_LOOKBACK = 100


def _counts(metadata: dict[str, dg.MetadataValue]) -> dict[str, int] | None:
    try:
        return {key: int(metadata[key].value) for key in COUNT_KEYS}  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return None


def past_counts(instance: dg.DagsterInstance, current_run_id: str) -> list[dict[str, int]]:
    """Decision counts of earlier successful runs, oldest first (from Dagster's event log)."""
    records = instance.fetch_materializations(DECISIONS_KEY, limit=_LOOKBACK).records
    by_run = {r.run_id: r for r in records if r.run_id != current_run_id}
    if not by_run:
        return []
    succeeded = {
        run.run_id
        for run in instance.get_runs(
            filters=dg.RunsFilter(run_ids=list(by_run), statuses=[dg.DagsterRunStatus.SUCCESS])
        )
    }
    found = []
    for record in sorted(by_run.values(), key=lambda r: r.timestamp):
        materialization = record.asset_materialization
        counts = _counts(materialization.metadata) if materialization else None
        if record.run_id in succeeded and counts is not None:
            found.append(counts)
    return found


def latest_counts(instance: dg.DagsterInstance) -> dict[str, int]:
    """The latest decision counts, notify and delete reduced to the approved candidates."""
    event = instance.get_latest_materialization_event(DECISIONS_KEY)
    materialization = event.asset_materialization if event else None
    counts = _counts(materialization.metadata) if materialization else None
    if materialization is None or counts is None:
        raise dg.Failure("no decision counts found: materialize user_decisions first")
    left_out = {
        key: int(value.value)  # type: ignore[arg-type]
        for key, value in materialization.metadata.items()
        if key.startswith("not_approved_")
    }
    return acted_counts({**counts, **left_out})


def deletion_guards(
    counts: dict[str, int], history: list[dict[str, int]], policy: CleanupPolicy, allow: bool
) -> list[GuardResult]:
    limits = policy.limits()
    return [
        guards.invalid_share(counts, limits),
        guards.deletions_within_limit(counts, limits, allow),
        guards.matches_history(
            "deletions_match_history",
            "delete candidates",
            counts["delete"],
            [past["delete"] for past in history],
            limits,
            policy.history(),
            allow,
        ),
    ]


def warning_guards(
    counts: dict[str, int], history: list[dict[str, int]], policy: CleanupPolicy, allow: bool
) -> list[GuardResult]:
    limits = policy.limits()
    return [
        guards.warnings_within_limit(counts, limits, allow),
        guards.matches_history(
            "warnings_match_history",
            "notify candidates",
            counts["notify"],
            [past["notify"] for past in history],
            limits,
            policy.history(),
            allow,
        ),
    ]


def all_guards(
    counts: dict[str, int], history: list[dict[str, int]], policy: CleanupPolicy, allow: bool
) -> list[GuardResult]:
    """Every guard of both candidate sets, deletions first."""
    return deletion_guards(counts, history, policy, allow) + warning_guards(
        counts, history, policy, allow
    )


def evaluate(
    instance: dg.DagsterInstance,
    run_id: str,
    decisions: pd.DataFrame,
    policy: CleanupPolicy,
    allow: bool,
    approved_run_id: str = "",
) -> list[GuardResult]:
    """Every guard of the candidate sets for this run's decisions, deletions first; the same
    results the blocking checks of the run reach. With an approval, the size and history guards
    count only the approved candidates and do not block them."""
    results = all_guards(guard_counts(decisions), past_counts(instance, run_id), policy, allow)
    return lift_for_review(results, approved_run_id)


def check_result(result: GuardResult, run_id: str) -> dg.AssetCheckResult:
    description = result.reason
    if not result.passed:
        report_guard_failure(result.name, result.count, result.limit, result.reason, run_id)
        if result.name in REVIEWABLE_GUARDS:
            description = f"{result.reason}. {how_to_approve(run_id)}"
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "rule": dg.MetadataValue.text(result.name),
            "count": dg.MetadataValue.int(result.count),
            "limit": dg.MetadataValue.float(float(result.limit)),
            "over_by": dg.MetadataValue.float(max(0.0, result.count - float(result.limit))),
            "why": dg.MetadataValue.text(result.reason),
            **(
                {"approve_with": dg.MetadataValue.text(f"cleanup-pipeline run --approve {run_id}")}
                if not result.passed and result.name in REVIEWABLE_GUARDS
                else {}
            ),
        },
    )


def enforce_before_actions(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    policy: CleanupPolicy,
    allow: bool,
    approved_run_id: str = "",
) -> None:
    """Raise before any side effect if any guard fails, exactly as the blocking checks would."""
    instance, run_id = context.instance, context.run.run_id
    results = lift_for_review(
        all_guards(latest_counts(instance), past_counts(instance, run_id), policy, allow),
        approved_run_id,
    )
    failed = [result for result in results if not result.passed]
    for result in failed:
        report_guard_failure(result.name, result.count, result.limit, result.reason, run_id)
    if failed:
        reviewable = all(r.name in REVIEWABLE_GUARDS for r in failed)
        raise dg.Failure(
            description="guards failed, no action taken: "
            + "; ".join(f"{r.name}: {r.reason}" for r in failed)
            + (f". {how_to_approve(run_id)}" if reviewable else ""),
            metadata={r.name: dg.MetadataValue.text(r.reason) for r in failed},
        )

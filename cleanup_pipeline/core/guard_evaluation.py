"""Every guard of a run, evaluated once on the run's own `GuardInputs`.

The blocking checks, the candidate report and the actions' re-check all read the same inputs,
produced once per run, so they cannot disagree or read another run's counts.
"""

from dataclasses import dataclass

from cleanup_pipeline.core.guards import (
    ACTION_GUARDS,
    INVALID_SHARE,
    GuardLimits,
    GuardResult,
    HistoryLimits,
    invalid_share,
    matches_history,
    within_limit,
)


@dataclass(frozen=True)
class GuardInputs:
    """What every guard of a run reads: the run's decision counts (`count_decisions`) and those
    of earlier successful runs, oldest first."""

    counts: dict[str, int]
    history: list[dict[str, int]]


def evaluate(
    inputs: GuardInputs, limits: GuardLimits, history: HistoryLimits, allow_mass_action: bool
) -> list[GuardResult]:
    """Every guard of the run: the invalid share, then each action's size and history guards,
    deletions first."""
    results = [invalid_share(inputs.counts, limits)]
    for guards in ACTION_GUARDS:
        decision = guards.decision
        results.append(within_limit(decision, inputs.counts, limits, allow_mass_action))
        results.append(
            matches_history(
                guards.history_name,
                guards.label,
                inputs.counts[decision],
                [past[decision] for past in inputs.history],
                limits,
                history,
                allow_mass_action,
            )
        )
    return results


GUARD_NAMES: tuple[str, ...] = (
    INVALID_SHARE,
    *(name for guards in ACTION_GUARDS for name in (guards.size_name, guards.history_name)),
)

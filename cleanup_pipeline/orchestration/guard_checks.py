"""The run's guard inputs, read once, and the blocking checks that evaluate them once."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from cleanup_pipeline.core.guard_evaluation import GuardInputs
from cleanup_pipeline.core.guards import ACTION_GUARDS, INVALID_SHARE
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.orchestration import guarding
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.retries import IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.snapshot_assets import GROUP

# Each action's candidates asset carries the guards of that action.
_CANDIDATES = {Decision.DELETE: "deletion_candidates", Decision.NOTIFY: "notify_candidates"}
INPUTS = "guard_inputs"
_WAIT = (
    "wait for an operator's review: approved_run_id (this run's id) or allow_mass_action; "
    "each result states the configured values."
)


def _spec(name: str, decision: Decision, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name,
        asset=_CANDIDATES[decision],
        blocking=True,
        additional_deps=[INPUTS],
        description=description,
    )


def _specs() -> list[dg.AssetCheckSpec]:
    """One blocking spec per guard, described by the settings behind it (their values are in
    each result, as configured for the run)."""
    specs = [
        _spec(
            INVALID_SHARE,
            Decision.DELETE,
            "Invalid users above max_invalid_fraction of all users mean bad data: nobody is "
            "warned or deleted this run, whatever allow_mass_action says.",
        )
    ]
    for action in ACTION_GUARDS:
        label = action.label.capitalize()
        specs += [
            _spec(
                action.size_name,
                action.decision,
                f"{label} above the larger of min_guarded_count and {action.setting} of valid "
                f"users {_WAIT}",
            ),
            _spec(
                action.history_name,
                action.decision,
                f"{label} above history_factor x the median of the last history_window "
                f"successful runs (once history_min_runs exist) {_WAIT}",
            ),
        ]
    return specs


@dg.asset(group_name=GROUP, kinds={"dagster"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def guard_inputs(
    context: dg.AssetExecutionContext, user_decisions: pd.DataFrame
) -> dg.Output[GuardInputs]:
    """This run's decision counts and those of earlier successful runs (Dagster's run history,
    read once): what every guard of the run is evaluated on."""
    inputs = guarding.read_guard_inputs(context.instance, context.run.run_id, user_decisions)
    return dg.Output(
        inputs, metadata={"earlier_successful_runs": dg.MetadataValue.int(len(inputs.history))}
    )


SPECS = _specs()
_ASSET_OF = {spec.name: spec.asset_key for spec in SPECS}


@dg.multi_asset_check(
    specs=SPECS,
    name="guards",
    ins={INPUTS: dg.AssetIn()},
)
def guards(
    context: dg.AssetCheckExecutionContext,
    guard_inputs: GuardInputs,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> Iterator[dg.AssetCheckResult]:
    """Every guard of the run, evaluated once; a failed one blocks every action of the run."""
    results = guarding.run_guards(
        guard_inputs,
        cleanup_policy,
        run_options.allow_mass_action,
        run_options.approved_run_id,
    )
    for result in results:
        yield guarding.check_result(result, _ASSET_OF[result.name], context.run.run_id)

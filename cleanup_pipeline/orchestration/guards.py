"""The guards: the blocking checks that stop a run's actions, their re-check inside each acting
step; and the coverage of the data map, which stops the deletions alone.

`read_guard_inputs` reads Dagster's run history once per run; the blocking checks, the candidate
report and the action steps (which check again: blocking checks gate only downstream assets of
the same run, and an operator can materialize an action alone) all evaluate those inputs.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from cleanup_pipeline.aws.stores import account_buckets, account_tables
from cleanup_pipeline.core.data_map import Coverage, DataMapError, coverage_of, load_data_map
from cleanup_pipeline.core.decisions import COUNT_KEYS
from cleanup_pipeline.core.guards import (
    ACTION_GUARDS,
    ERASURES_WITHIN_LIMIT,
    INVALID_SHARE,
    REVIEWABLE_GUARDS,
    GuardInputs,
    GuardResult,
    evaluate,
    guard_counts,
    how_to_approve,
    lift_for_review,
)
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.observability.sentry import report_guard_failure
from cleanup_pipeline.orchestration.jobs import GROUP, IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions

DECISIONS_KEY = dg.AssetKey("user_decisions")
_LOOKBACK = 100


def _counts(metadata: dict[str, dg.MetadataValue]) -> dict[str, int] | None:
    # Runs from before erasures were decided have no erase count: none were erased.
    found = {str(Decision.ERASE): dg.MetadataValue.int(0), **metadata}
    try:
        return {key: int(found[key].value) for key in COUNT_KEYS}  # type: ignore[arg-type]
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


def read_guard_inputs(
    instance: dg.DagsterInstance, run_id: str, decisions: pd.DataFrame
) -> GuardInputs:
    """This run's decision counts and the history they are compared with; with an approval,
    notify and delete count only the approved candidates, those the run may act on."""
    return GuardInputs(guard_counts(decisions), past_counts(instance, run_id))


def run_guards(
    inputs: GuardInputs, policy: CleanupPolicy, allow: bool, approved_run_id: str | None = None
) -> list[GuardResult]:
    """Every guard of the run, deletions first, under the configured limits; the size and
    history guards do not block a set approved after review."""
    results = evaluate(inputs, policy.limits(), policy.history(), allow)
    return lift_for_review(results, approved_run_id)


def check_result(result: GuardResult, asset: dg.AssetKey, run_id: str) -> dg.AssetCheckResult:
    description, hint = result.reason, {}
    if not result.passed:
        report_guard_failure(result.name, result.count, result.limit, result.reason, run_id)
        if result.name in REVIEWABLE_GUARDS:
            description = f"{result.reason}. {how_to_approve(run_id)}"
            hint = {
                "approve_with": dg.MetadataValue.text(f"cleanup-pipeline run --approve {run_id}")
            }
    return dg.AssetCheckResult(
        passed=result.passed,
        asset_key=asset,
        check_name=result.name,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "rule": dg.MetadataValue.text(result.name),
            "count": dg.MetadataValue.int(result.count),
            "limit": dg.MetadataValue.float(float(result.limit)),
            "over_by": dg.MetadataValue.float(max(0.0, result.count - float(result.limit))),
            "why": dg.MetadataValue.text(result.reason),
            **hint,
        },
    )


def enforce_before_actions(
    inputs: GuardInputs,
    candidates: pd.DataFrame,
    decision: Decision,
    policy: CleanupPolicy,
    allow: bool,
    run_id: str,
    approved_run_id: str | None = None,
) -> None:
    """Raise before any side effect if any guard fails on this run's inputs, exactly as the
    blocking checks would; or if `candidates` were not decided with those inputs (an action
    materialized alone after only part of another run was stored)."""
    if len(candidates) != inputs.counts[decision]:
        raise dg.Failure(
            description=f"{len(candidates)} {decision} candidates, but the guard inputs count "
            f"{inputs.counts[decision]}: they come from different runs, no action taken. "
            "Materialize user_decisions with everything downstream of it.",
            allow_retries=False,
        )
    results = run_guards(inputs, policy, allow, approved_run_id)
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
            allow_retries=False,
        )


_CANDIDATES = {
    Decision.DELETE: "deletion_candidates",
    Decision.NOTIFY: "notify_candidates",
    Decision.ERASE: "erasure_candidates",
}
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
    specs.append(
        _spec(
            ERASURES_WITHIN_LIMIT,
            Decision.ERASE,
            f"Users erased at their own request above max_erasures_per_run {_WAIT}",
        )
    )
    return specs


@dg.asset(group_name=GROUP, kinds={"dagster"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def guard_inputs(
    context: dg.AssetExecutionContext, user_decisions: pd.DataFrame
) -> dg.Output[GuardInputs]:
    """This run's decision counts and those of earlier successful runs (Dagster's run history,
    read once): what every guard of the run is evaluated on."""
    inputs = read_guard_inputs(context.instance, context.run.run_id, user_decisions)
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
    results = run_guards(
        guard_inputs,
        cleanup_policy,
        run_options.allow_mass_action,
        run_options.approved_run_id,
    )
    for result in results:
        yield check_result(result, _ASSET_OF[result.name], context.run.run_id)


@dg.asset(group_name=GROUP, kinds={"dynamodb", "s3"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def app_stores(aws: AwsEnvironment) -> dg.Output[Coverage]:
    """With `coverage` in the data map, the account's tables and buckets that match one of its
    patterns yet are neither a store, one of the job's own, nor declared `unmapped`: where the
    app may keep user data that no deletion would reach. Without `coverage`, nothing is listed."""
    settings = aws.settings()
    try:
        data_map = load_data_map(settings)
    except DataMapError as error:  # configuration: retrying cannot help
        raise dg.Failure(description=str(error), allow_retries=False) from None
    tables: list[str] = []
    buckets: list[str] = []
    if data_map.coverage is not None:
        clients = aws.clients()
        tables, buckets = account_tables(clients.dynamodb), account_buckets(clients.s3)
    coverage = coverage_of(data_map, settings, tables, buckets)
    return dg.Output(coverage, metadata=_coverage_metadata(coverage))


def _coverage_metadata(coverage: Coverage) -> dict[str, dg.MetadataValue]:
    return {
        "coverage": dg.MetadataValue.text(", ".join(coverage.patterns or ()) or "(off)"),
        "unmapped_tables": dg.MetadataValue.text(", ".join(coverage.tables) or "(none)"),
        "unmapped_buckets": dg.MetadataValue.text(", ".join(coverage.buckets) or "(none)"),
        "tables_listed": dg.MetadataValue.int(coverage.listed_tables),
        "buckets_listed": dg.MetadataValue.int(coverage.listed_buckets),
    }


@dg.asset_check(asset=app_stores, blocking=True)
def every_app_store_is_mapped(app_stores: Coverage) -> dg.AssetCheckResult:
    """Every table and bucket of the app (those matching the data map's `coverage` patterns)
    is a store, one of the job's own, or declared `unmapped`; otherwise deletions stop, since
    they would leave the user's data there behind. Warnings go on."""
    return dg.AssetCheckResult(
        passed=app_stores.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=app_stores.description,
        metadata=_coverage_metadata(app_stores),
    )


def refuse_unless_covered(coverage: Coverage) -> None:
    """Raise before any deletion when the coverage check found unmapped tables or buckets, as
    the blocking check would: an operator can materialize the deletions alone."""
    if not coverage.passed:
        raise dg.Failure(
            description=f"every_app_store_is_mapped: {coverage.description}",
            metadata=_coverage_metadata(coverage),
            allow_retries=False,
        )

"""The failure hook of a run's action steps: each user's failure goes to the log and Sentry,
tagged with the run it happened in."""

import dagster as dg

from cleanup_pipeline.actions.outcomes import FailureHook
from cleanup_pipeline.observability.sentry import report_failure


def report_failures_of(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> FailureHook:
    """The hook the warnings and the cascade call for each user who fails in this run."""
    run_id = context.run.run_id

    def report(user_id: str, step: str, error: BaseException) -> None:
        report_failure(user_id, step, run_id, error)

    return report

"""The job and its daily schedule."""

import os

import dagster as dg

from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.orchestration.executors import selectable_executor

JOB_NAME = "inactive_accounts_cleanup"

inactive_accounts_cleanup = dg.define_asset_job(
    name=JOB_NAME,
    selection=dg.AssetSelection.groups("cleanup"),
    description="Warn users inactive for 60 days, delete those still inactive 30 days after the "
    "warning, and write the per-run candidate report.",
    tags={"cleanup_pipeline/job": "inactive_accounts_cleanup"},
    executor_def=selectable_executor,
)


def run_config_for(
    as_of: str | None = None,
    dry_run: bool = False,
    allow_mass_action: bool = False,
    approved_run_id: str | None = None,
) -> dict:
    """Run config for the per-run options; as used by the schedule and the CLI."""
    options: dict = {"dry_run": dry_run, "allow_mass_action": allow_mass_action}
    if as_of:
        options["as_of"] = as_of
    if approved_run_id:
        options["approved_run_id"] = approved_run_id
    return {"resources": {"run_options": {"config": options}}}


@dg.schedule(
    job=inactive_accounts_cleanup,
    cron_schedule=os.environ.get("CLEANUP_SCHEDULE_CRON", "0 3 * * *"),
    execution_timezone=os.environ.get("CLEANUP_SCHEDULE_TIMEZONE", "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_cleanup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Runs the cleanup every day; the tick's time is the run's `as_of`."""
    tick = context.scheduled_execution_time
    as_of = format_ms(int(tick.timestamp() * 1000))
    return dg.RunRequest(
        run_key=as_of, run_config=run_config_for(as_of=as_of), tags={"as_of": as_of}
    )

"""Sensors that tell the operator about a run without anyone opening the UI: every
failed or blocked run goes to Sentry, and scheduled runs check in to a Sentry cron monitor so
that a day without a run is an alert too."""

from typing import TYPE_CHECKING

import dagster as dg

from cleanup_pipeline.core.settings import sentry_dsn
from cleanup_pipeline.observability.run_alerts import RunFailure, check_in, report_run_failure
from cleanup_pipeline.observability.sentry import init_sentry
from cleanup_pipeline.orchestration.jobs import daily_cleanup_schedule, inactive_accounts_cleanup

if TYPE_CHECKING:  # the type of Dagster's errors is exported only from its shared package
    from dagster_shared.error import SerializableErrorInfo

MONITOR = "inactive-accounts-cleanup"
SCHEDULE_TAG = "dagster/schedule_name"


def _error_text(error: "SerializableErrorInfo | None") -> str:
    """The error and its causes, without stack traces."""
    lines: list[str] = []
    while error is not None:
        lines.append(error.message.strip())
        error = error.cause or error.context
    return " <- ".join(line for line in lines if line)


def _failed_checks(instance: dg.DagsterInstance, run_id: str) -> tuple[str, ...]:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    failed = []
    for record in records:
        evaluation = record.dagster_event.event_specific_data if record.dagster_event else None
        if evaluation is not None and not evaluation.passed:
            failed.append(evaluation.check_name)
    return tuple(sorted(set(failed)))


def run_failure(context: dg.RunFailureSensorContext) -> RunFailure:
    """What stopped the run, read from its own event log."""
    run = context.dagster_run
    step_failures = context.get_step_failure_events()
    errors = [_error_text(e.step_failure_data.error) for e in step_failures]
    run_error = getattr(context.failure_event.event_specific_data, "error", None)
    if run_error is not None or not errors:
        errors.insert(0, _error_text(run_error) or (context.failure_event.message or ""))
    return RunFailure(
        run_id=run.run_id,
        job=run.job_name,
        failed_steps=tuple(sorted({e.step_key for e in step_failures if e.step_key})),
        failed_checks=_failed_checks(context.instance, run.run_id),
        error=" | ".join(dict.fromkeys(e for e in errors if e)),
    )


def _check_in(run: dg.DagsterRun, status: str) -> None:
    if run.tags.get(SCHEDULE_TAG) != daily_cleanup_schedule.name:
        return  # only the daily run counts for the monitor; manual runs do not
    if init_sentry(sentry_dsn()):
        check_in(
            MONITOR,
            run.run_id,
            status,
            daily_cleanup_schedule.cron_schedule,
            daily_cleanup_schedule.execution_timezone or "UTC",
        )


@dg.run_failure_sensor(
    monitored_jobs=[inactive_accounts_cleanup], default_status=dg.DefaultSensorStatus.RUNNING
)
def cleanup_run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    """Sends every failed or blocked cleanup run to Sentry, with the failed steps or checks and
    the error (addresses masked); the daily run's monitor gets an error check-in."""
    init_sentry(sentry_dsn())
    report_run_failure(run_failure(context))
    _check_in(context.dagster_run, "error")


def _check_in_sensor(
    run_status: dg.DagsterRunStatus, check_in_status: str, description: str
) -> dg.SensorDefinition:
    """A sensor telling the Sentry cron monitor that the daily run reached `run_status`."""

    @dg.run_status_sensor(
        name=f"cleanup_run_{run_status.value.lower()}_check_in",
        run_status=run_status,
        monitored_jobs=[inactive_accounts_cleanup],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def check_in_sensor(context: dg.RunStatusSensorContext) -> None:
        _check_in(context.dagster_run, check_in_status)

    return check_in_sensor


cleanup_run_started_check_in = _check_in_sensor(
    dg.DagsterRunStatus.STARTED,
    "in_progress",
    "Tells the Sentry cron monitor the daily run has started.",
)
cleanup_run_success_check_in = _check_in_sensor(
    dg.DagsterRunStatus.SUCCESS,
    "ok",
    "Tells the Sentry cron monitor the daily run has finished well.",
)

sensors = [cleanup_run_failure_alert, cleanup_run_started_check_in, cleanup_run_success_check_in]

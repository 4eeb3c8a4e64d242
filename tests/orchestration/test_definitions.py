"""The Dagster definitions as the UI and the daemon load them."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.jobs import JOB_NAME, daily_cleanup_schedule
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from tests.support.jobs import execute_job
from tests.support.world import seed_world


def test_job_schedule_and_checks_are_defined() -> None:
    job = defs.resolve_job_def(JOB_NAME)
    assert job.name == "inactive_accounts_cleanup"
    assert daily_cleanup_schedule.cron_schedule == "0 3 * * *"
    assert daily_cleanup_schedule.execution_timezone == "UTC"
    assert daily_cleanup_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert checks >= {
        "users_snapshot_not_empty",
        "user_ids_unique",
        "required_columns_present",
        "invalid_share_within_limit",
        "deletions_within_limit",
        "warnings_within_limit",
        "every_user_action_succeeded",
    }


def test_schedule_passes_its_tick_time_as_as_of() -> None:
    tick = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick)
    request = daily_cleanup_schedule(context)
    options = request.run_config["resources"]["run_options"]["config"]
    assert options["as_of"] == "2026-12-01T03:00:00Z"
    assert options["dry_run"] is False and options["allow_mass_action"] is False
    assert request.run_key == "2026-12-01T03:00:00Z"


def test_schedule_ticks_daily_at_three_utc() -> None:
    from dagster._utils.schedules import cron_string_iterator

    ticks = cron_string_iterator(
        datetime(2026, 1, 1, tzinfo=UTC).timestamp(),
        daily_cleanup_schedule.cron_schedule,
        daily_cleanup_schedule.execution_timezone,
    )
    first, second = next(ticks), next(ticks)
    assert (first.hour, first.minute, first.tzinfo.utcoffset(first).total_seconds()) == (3, 0, 0)
    assert second - first == timedelta(days=1)


def test_launch_with_default_config_uses_the_run_creation_time(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    instance = dg.DagsterInstance.ephemeral()
    result = execute_job(
        {},  # no run config: as a launch from the UI with defaults
        policy=CleanupPolicy(send_rate_per_second=500),
        # Relative to today every seeded user is long inactive: lift the size guards.
        run_options=RunOptions(dry_run=True, allow_mass_action=True),
        instance=instance,
        raise_on_error=True,
    )
    assert result.success
    record = instance.get_run_record_by_id(result.run_id)
    decisions = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["user_decisions"]
    ).materialization.metadata
    created = record.create_timestamp.astimezone(UTC).isoformat(timespec="milliseconds")
    assert decisions["as_of"].value.startswith(created[:19])

"""Run-level alerts (SPEC §10): the failure sensor, evaluated against real failed runs on an
instance, sends each failed or blocked run to Sentry; scheduled runs check in to a cron monitor."""

import re
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sentry_sdk

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.jobs import JOB_NAME, run_config_for
from cleanup_pipeline.orchestration.sensors import (
    MONITOR,
    cleanup_run_failure_alert,
    cleanup_run_started_check_in,
    cleanup_run_success_check_in,
)
from tests.support import recording
from tests.support.aws_calls import ses_refuses
from tests.support.sentry_capture import CapturingTransport
from tests.support.world import AS_OF_ISO, seed_world

UNMASKED = re.compile(r"[A-Za-z0-9._%+-]+@example\.com")
SCHEDULED = {"dagster/schedule_name": "daily_cleanup_schedule"}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _run(
    instance: dg.DagsterInstance,
    policy: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    resources: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """A launch as the launchpad or the schedule makes it: the policy as run config."""
    run_config = run_config_for(AS_OF_ISO)
    run_config["resources"]["cleanup_policy"] = {
        "config": {"send_rate_per_second": 500, **(policy or {})}
    }
    return defs.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config,
        resources=resources or {"aws": recording.ServiceRecordingAwsEnvironment()},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )


def _context(
    instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType
) -> dg.RunStatusSensorContext:
    [record] = instance.all_logs(run_id, of_type=event_type)
    assert record.dagster_event is not None
    return dg.build_run_status_sensor_context(
        sensor_name="alert",
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
    )


def _alert(instance: dg.DagsterInstance, run_id: str) -> None:
    context = _context(instance, run_id, dg.DagsterEventType.RUN_FAILURE)
    cleanup_run_failure_alert(context.for_run_failure())


def _run_events(transport: CapturingTransport) -> list[dict[str, Any]]:
    return [e for e in transport.events() if "run" in e.get("contexts", {})]


def _check_ins(transport: CapturingTransport) -> list[dict[str, Any]]:
    return [
        item.payload.json
        for envelope in transport.envelopes
        for item in envelope.items
        if item.type == "check_in" and item.payload.json is not None
    ]


def test_a_run_blocked_by_a_guard_is_one_event_naming_the_check(
    aws, instance: dg.DagsterInstance, sentry_events: CapturingTransport
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    result = _run(instance, {"min_guarded_count": 2, "max_delete_fraction": 0.0})
    assert not result.success
    before = len(sentry_events.events())

    _alert(instance, result.run_id)

    [event] = _run_events(sentry_events)
    assert len(sentry_events.events()) == before + 1
    assert event["level"] == "error"
    assert event["tags"] == {"run_id": result.run_id, "job": JOB_NAME}
    run = event["contexts"]["run"]
    assert run["run_id"] == result.run_id and run["job"] == JOB_NAME
    assert run["failed_checks"] == ["deletions_within_limit"]
    assert run["failed_steps"] == ["guards"]  # the one step evaluating every guard
    assert "failed checks deletions_within_limit; failed steps guards" in event["message"]
    assert result.run_id in event["message"]
    assert UNMASKED.findall(sentry_events.serialized()) == []
    assert _check_ins(sentry_events) == []  # not a scheduled run


def test_a_run_with_out_of_range_policy_fails_before_its_first_step_and_alerts(
    aws, instance: dg.DagsterInstance, sentry_events: CapturingTransport
) -> None:
    result = _run(instance, {"max_delete_fraction": 5})
    assert not result.success
    assert recording.SERVICE_CALLS == []

    _alert(instance, result.run_id)

    [event] = _run_events(sentry_events)
    run = event["contexts"]["run"]
    assert run["failed_checks"] == [] and run["failed_steps"] == []
    assert "failed before its first step" in event["message"]
    assert "max_delete_fraction=5.0 should be less than or equal to 1" in run["error"]


def test_a_run_missing_a_variable_fails_before_its_first_step_and_alerts(
    aws,
    instance: dg.DagsterInstance,
    sentry_events: CapturingTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUBLIC_BUCKET_NAME")
    result = _run(instance)
    assert not result.success and recording.SERVICE_CALLS == []

    _alert(instance, result.run_id)

    [event] = _run_events(sentry_events)
    assert "failed before its first step" in event["message"]
    assert "PUBLIC_BUCKET_NAME" in event["contexts"]["run"]["error"]


def test_a_step_failure_names_the_step_and_masks_the_address(
    aws, instance: dg.DagsterInstance, sentry_events: CapturingTransport
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    refused = "notify-60d-1ms"
    recording.FAULTS.append(ses_refuses(f"{refused}@example.com"))
    result = _run(instance)
    assert not result.success

    _alert(instance, result.run_id)

    [event] = _run_events(sentry_events)
    run = event["contexts"]["run"]
    assert run["failed_checks"] == ["every_user_action_succeeded"]
    assert run["failed_steps"] == ["cleanup_report"]
    assert "every_user_action_succeeded" in run["error"]  # the user's own error is its own event
    assert UNMASKED.findall(sentry_events.serialized()) == []


def test_without_a_dsn_the_sensor_only_logs(
    aws, instance: dg.DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    result = _run(instance, {"max_delete_fraction": 5})
    _alert(instance, result.run_id)
    assert f"run {result.run_id} of {JOB_NAME} failed before its first step" in caplog.text
    assert not sentry_sdk.get_client().is_active()


def test_the_daily_run_checks_in_to_the_cron_monitor(
    aws, instance: dg.DagsterInstance, sentry_events: CapturingTransport
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    blocked = _run(instance, {"min_guarded_count": 0, "max_notify_fraction": 0.0}, SCHEDULED)
    assert not blocked.success
    cleanup_run_started_check_in(_context(instance, blocked.run_id, dg.DagsterEventType.RUN_START))
    _alert(instance, blocked.run_id)
    good = _run(instance, tags=SCHEDULED)
    assert good.success
    cleanup_run_started_check_in(_context(instance, good.run_id, dg.DagsterEventType.RUN_START))
    cleanup_run_success_check_in(_context(instance, good.run_id, dg.DagsterEventType.RUN_SUCCESS))

    check_ins = _check_ins(sentry_events)
    assert [(c["check_in_id"], c["status"]) for c in check_ins] == [
        (blocked.run_id.replace("-", ""), "in_progress"),
        (blocked.run_id.replace("-", ""), "error"),
        (good.run_id.replace("-", ""), "in_progress"),
        (good.run_id.replace("-", ""), "ok"),
    ]
    for check_in in check_ins:
        assert check_in["monitor_slug"] == MONITOR
        config = check_in["monitor_config"]
        assert config["schedule"] == {"type": "crontab", "value": "0 3 * * *"}
        assert config["timezone"] == "UTC" and config["checkin_margin"] == 30


def test_the_sensor_is_evaluated_by_a_tick_against_the_instance(
    aws, instance: dg.DagsterInstance, sentry_events: CapturingTransport
) -> None:
    """As the daemon does it: a tick reads the instance's run failures after its cursor."""
    repository = defs.get_repository_def()
    first = cleanup_run_failure_alert.evaluate_tick(
        dg.build_sensor_context(instance=instance, repository_def=repository)
    )
    result = _run(instance, {"history_factor": 0})
    assert not result.success

    cleanup_run_failure_alert.evaluate_tick(
        dg.build_sensor_context(instance=instance, repository_def=repository, cursor=first.cursor)
    )

    [event] = _run_events(sentry_events)
    assert event["tags"]["run_id"] == result.run_id
    assert "history_factor=0.0 should be greater than or equal to 1" in event["message"]


def test_a_run_without_credentials_alerts_with_the_step_and_the_error(
    instance: dg.DagsterInstance,
    sentry_events: CapturingTransport,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
) -> None:
    """No moto here: boto3 finds no credentials anywhere and refuses the first call."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached
    result = _run(instance)
    assert not result.success

    _alert(instance, result.run_id)

    [event] = _run_events(sentry_events)
    run = event["contexts"]["run"]
    # The first steps reach AWS, side by side: the users scan, the holds and the requests read.
    assert run["failed_steps"] == ["active_holds", "erasure_requests", "users_snapshot"]
    assert run["failed_checks"] == []
    assert "NoCredentialsError: Unable to locate credentials" in run["error"]

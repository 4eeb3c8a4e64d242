"""Sentry: on only with a DSN, once; per-user and guard failures reported with their context
and never with an email address."""

import json
import logging
import re

import dagster as dg
import sentry_sdk
from botocore.exceptions import ClientError

from cleanup_pipeline.observability.sentry import init_sentry, report_failure, report_guard_failure
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy
from tests.support import recording
from tests.support.aws_calls import client_error, ses_refuses
from tests.support.jobs import run_with_service_recording
from tests.support.sentry_capture import DSN, CapturingTransport
from tests.support.world import NOTIFIED, seed_world

UNMASKED = re.compile(r"[A-Za-z0-9._%+-]+@example\.com")


def refusal(address: str) -> ClientError:
    message = f"Email address is not verified: {address}"
    return client_error("MessageRejected", "SendEmail", message)


def test_without_a_dsn_nothing_is_initialised_and_failures_are_only_logged(caplog) -> None:
    assert init_sentry(None) is False
    assert init_sentry("") is False
    AwsEnvironment().setup_for_execution(dg.build_init_resource_context())  # no SENTRY_DSN set
    assert not sentry_sdk.get_client().is_active()

    with caplog.at_level(logging.DEBUG):
        report_failure("u-7", "delete.emails", "run-1", refusal("jane.doe@example.com"))
    assert not sentry_sdk.get_client().is_active()
    [line] = [r.getMessage() for r in caplog.records if "u-7" in r.getMessage()]
    assert "delete.emails" in line and "run-1" in line and "MessageRejected" in line
    assert "j***@example.com" in line
    assert "jane.doe@example.com" not in caplog.text


def test_sentry_is_initialised_once(sentry_events: CapturingTransport) -> None:
    client = sentry_sdk.get_client()
    assert client.is_active()
    assert init_sentry(DSN, transport=CapturingTransport()) is True
    AwsEnvironment().setup_for_execution(dg.build_init_resource_context())  # SENTRY_DSN is set
    assert sentry_sdk.get_client() is client


def test_a_failure_is_one_event_with_its_context_and_no_address(
    sentry_events: CapturingTransport,
) -> None:
    error = refusal("jane.doe@example.com")
    try:
        raise error  # a traceback, with the address in its frames' local variables
    except ClientError as raised:
        report_failure("u-7", "notify.send", "run-1", raised)

    [event] = sentry_events.events()
    assert event["user"] == {"id": "u-7"}
    assert event["tags"] == {"user_id": "u-7", "step": "notify.send", "run_id": "run-1"}
    assert event["contexts"]["cleanup"] == {
        "user_id": "u-7",
        "step": "notify.send",
        "run_id": "run-1",
    }
    [exception] = event["exception"]["values"]
    assert exception["value"].endswith("not verified: j***@example.com")
    assert exception["stacktrace"]["frames"][-1]["vars"]  # local variables are sent, masked
    assert UNMASKED.findall(sentry_events.serialized()) == []


def test_one_error_failing_several_users_gives_each_user_an_event(
    sentry_events: CapturingTransport,
) -> None:
    shared = refusal("jane.doe@example.com")
    for user_id in ("u-1", "u-2", "u-3"):
        report_failure(user_id, "delete.emails", "run-1", shared)
    assert [e["user"]["id"] for e in sentry_events.events()] == ["u-1", "u-2", "u-3"]


def test_a_guard_failure_is_an_event(sentry_events: CapturingTransport) -> None:
    report_guard_failure("deletions_within_limit", 40, 25.0, "40 delete candidates is over", "r-9")
    [event] = sentry_events.events()
    assert event["level"] == "error"
    assert event["tags"] == {"guard": "deletions_within_limit", "run_id": "r-9"}
    assert event["contexts"]["guard"]["count"] == 40
    assert "40 delete candidates is over" in event["message"]


def test_a_users_failure_in_the_job_reaches_sentry_with_user_step_and_run(
    aws, sentry_events: CapturingTransport
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    refused = NOTIFIED[0]
    recording.FAULTS.append(ses_refuses(f"{refused}@example.com"))
    result = run_with_service_recording()
    assert not result.success  # a user failed

    events = [e for e in sentry_events.events() if e.get("user", {}).get("id") == refused]
    assert len(events) == 1
    [event] = events
    assert event["tags"] == {"user_id": refused, "step": "notify.send", "run_id": result.run_id}
    assert event["contexts"]["cleanup"]["run_id"] == result.run_id
    assert "MessageRejected" in json.dumps(event["exception"])
    assert f"{refused[0]}***@example.com" in json.dumps(event["exception"])
    assert UNMASKED.findall(sentry_events.serialized()) == []


def test_a_failing_guard_in_the_job_reaches_sentry(aws, sentry_events: CapturingTransport) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    strict = CleanupPolicy(min_guarded_count=2, max_delete_fraction=0.0)
    result = run_with_service_recording(policy=strict)
    assert not result.success
    assert not [c for c in recording.SERVICE_CALLS if c.operation == "SendEmail"]

    guards = [e["tags"] for e in sentry_events.events() if "guard" in e.get("tags", {})]
    assert {"guard": "deletions_within_limit", "run_id": result.run_id} in guards

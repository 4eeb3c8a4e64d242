"""An overdue request from a person reaches Sentry (SPEC §12, §10): one event per run, naming
the requests by id, never the person's user id or address."""

import re

from cleanup_pipeline.aws.requests_table import new_request_id, open_request
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.requests import Request, new_request
from cleanup_pipeline.orchestration.jobs import JOB_NAME, run_config_for
from tests.support.items import DAY, now_ms
from tests.support.jobs import check_results, execute_job
from tests.support.sentry_capture import CapturingTransport
from tests.support.world import AS_OF_ISO, NOTIFIED, seed_world

CHECK = "erasure_requests_within_deadline"
ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@example\.com")


def _open(clients, settings, user_id: str, days_ago: int, ref: str | None = None) -> Request:
    now = now_ms()
    request = new_request(
        new_request_id(),
        user_id,
        "erase",
        now=now,
        deadline_days=30,
        received=format_ms(now - days_ago * DAY),
        ref=ref,
    )
    return open_request(clients.dynamodb, settings.requests_table, request)[0]


def _deadline_events(transport: CapturingTransport) -> list[dict]:
    return [e for e in transport.events() if e.get("tags", {}).get("check") == CHECK]


def test_overdue_requests_are_one_event_per_run_without_the_person(
    aws, sentry_events: CapturingTransport
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    person = NOTIFIED[0]  # a real user, with an address in the users table
    late = _open(clients, settings, person, 45, ref=f"mail from {person}@example.com")
    later = _open(clients, settings, "asks-2", 31)
    _open(clients, settings, "asks-3", 28)  # due soon, not overdue

    # Dry runs: a real run would erase the requested users and close their requests.
    first = execute_job(run_config_for(AS_OF_ISO, dry_run=True))
    assert first.success and check_results(first)[CHECK] is False
    [event] = _deadline_events(sentry_events)
    assert event["level"] == "error"
    assert event["tags"] == {"run_id": first.run_id, "job": JOB_NAME, "check": CHECK}
    assert event["fingerprint"] == ["cleanup-requests-overdue", CHECK]
    context = event["contexts"]["requests"]
    assert (context["requests_open"], context["requests_due_soon"]) == (3, 1)
    assert context["requests_overdue"] == 2
    assert [(r["id"], r["kind"], r["due"]) for r in context["overdue"]] == [
        (late.id, "erase", format_ms(late.due_at)),
        (later.id, "erase", format_ms(later.due_at)),
    ]
    assert event["message"].startswith(
        f"{JOB_NAME} run {first.run_id} failed check {CHECK}: 2 requests from the people "
        f"themselves are past their due date: {late.id} (due {format_ms(late.due_at)}), "
    )
    sent = sentry_events.serialized()
    assert person not in sent and "asks-2" not in sent
    assert ADDRESS.findall(sent) == [] and "***@example.com" not in sent

    second = execute_job(run_config_for(AS_OF_ISO, dry_run=True))
    events = _deadline_events(sentry_events)
    assert [e["tags"]["run_id"] for e in events] == [first.run_id, second.run_id]


def test_no_event_while_every_request_is_within_its_deadline(
    aws, sentry_events: CapturingTransport
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    _open(clients, settings, "asks-1", 29)
    result = execute_job()
    assert result.success and check_results(result)[CHECK] is True
    assert _deadline_events(sentry_events) == []

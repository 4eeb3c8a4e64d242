"""Warning emails against moto: one per inactivity episode, recorded only when SES accepted."""

import threading
import time

import boto3
from botocore.exceptions import ClientError, ReadTimeoutError

from cleanup_pipeline.actions.notify import warn_users
from cleanup_pipeline.actions.outcomes import FAILED, SKIPPED, WARNED
from cleanup_pipeline.aws.users_table import CLAIMED_AT, CLAIMED_BY, SENT_AT
from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.warning_email import render_warning
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_calls import FailureLog, client_error, fail_when
from tests.support.aws_state import get_item, sent_messages
from tests.support.cascade import outcome_of
from tests.support.items import DAY, active_user, n, notify_candidate, now_ms, s
from tests.support.notify import LEASE, notify_context, recipients


def claim(clients, settings, user_id, run_id, at):
    clients.dynamodb.update_item(
        TableName=settings.users_table,
        Key={"id": s(user_id)},
        UpdateExpression="SET #by = :by, #at = :at",
        ExpressionAttributeNames={"#by": CLAIMED_BY, "#at": CLAIMED_AT},
        ExpressionAttributeValues={":by": s(run_id), ":at": n(at)},
    )


def test_candidate_gets_exactly_one_escaped_email_and_the_send_time(aws):
    clients, settings = aws
    as_of = now_ms()
    item = notify_candidate("n1", as_of, email="jane.doe@example.com", name=s("Jane"))
    batch_write(clients.dynamodb, settings.users_table, [item, active_user("a1", as_of)])
    message = render_warning(
        "Tom & Jerry", 'https://app.example/?a=1&b=<x>"y"', settings.email_domain, Policy()
    )

    before = now_ms()
    outcomes = warn_users(notify_context(clients, settings, as_of, message=message), ["n1"])
    after = now_ms()

    assert [(r["id"], r["outcome"]) for r in outcomes.rows] == [("n1", WARNED)]
    [sent] = sent_messages()
    assert sent.source == "Tom & Jerry <noreply@increaser.local>"
    assert sent.destinations == {"ToAddresses": ["jane.doe@example.com"]}
    assert sent.subject == "Important: Your Tom & Jerry Account is Scheduled for Deletion"
    html = sent.body
    assert "Tom &amp; Jerry" in html
    assert 'href="https://app.example/?a=1&amp;b=&lt;x&gt;&quot;y&quot;"' in html
    assert "<x>" not in html
    assert "Tom & Jerry" not in html
    for phrase in ("60 days", "90 days", "30 days"):
        assert phrase in html

    stored = get_item(clients.dynamodb, settings.users_table, "n1")
    assert before <= int(stored[SENT_AT]["N"]) <= after
    assert CLAIMED_BY not in stored
    assert CLAIMED_AT not in stored
    assert {k: v for k, v in stored.items() if k != SENT_AT} == item


def test_second_run_sends_nothing(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate("n1", as_of)])
    warn_users(notify_context(clients, settings, as_of, run_id="run-1"), ["n1"])
    first = get_item(clients.dynamodb, settings.users_table, "n1")

    outcomes = warn_users(notify_context(clients, settings, as_of, run_id="run-2"), ["n1"])

    row = outcome_of(outcomes, "n1")
    assert (row["outcome"], row["step"]) == (SKIPPED, "recheck")
    assert row["error"].startswith("now waiting")
    assert recipients() == ["n1@example.com"]
    assert get_item(clients.dynamodb, settings.users_table, "n1") == first


def test_overlapping_runs_send_each_warning_once(aws):
    clients, settings = aws
    as_of = now_ms()
    ids = [f"n{i:02d}" for i in range(20)]
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate(u, as_of) for u in ids])
    start = threading.Barrier(2)
    results = {}

    def run(run_id):
        ctx = notify_context(clients, settings, as_of, run_id=run_id)
        start.wait()
        results[run_id] = warn_users(ctx, ids, batch_size=5)

    threads = [threading.Thread(target=run, args=(r,)) for r in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert recipients() == sorted(f"{u}@example.com" for u in ids)
    assert sum(o.count(WARNED) for o in results.values()) == 20
    assert sum(o.count(FAILED) for o in results.values()) == 0
    for uid in ids:
        stored = get_item(clients.dynamodb, settings.users_table, uid)
        assert SENT_AT in stored
        assert CLAIMED_BY not in stored


def test_live_claim_of_another_run_blocks_sending(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate("n1", as_of)])
    claimed_at = now_ms() - 60_000
    claim(clients, settings, "n1", "other-run", claimed_at)

    outcomes = warn_users(notify_context(clients, settings, as_of), ["n1"])

    row = outcome_of(outcomes, "n1")
    assert (row["outcome"], row["step"]) == (SKIPPED, "claim")
    assert sent_messages() == []
    stored = get_item(clients.dynamodb, settings.users_table, "n1")
    assert stored[CLAIMED_BY] == s("other-run")
    assert stored[CLAIMED_AT] == n(claimed_at)
    assert SENT_AT not in stored


def test_stale_claim_is_taken_over_and_sent(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate("n1", as_of)])
    claim(clients, settings, "n1", "dead-run", now_ms() - LEASE - 60_000)

    outcomes = warn_users(notify_context(clients, settings, as_of), ["n1"])

    assert outcome_of(outcomes, "n1")["outcome"] == WARNED
    assert recipients() == ["n1@example.com"]
    stored = get_item(clients.dynamodb, settings.users_table, "n1")
    assert SENT_AT in stored
    assert CLAIMED_BY not in stored
    assert CLAIMED_AT not in stored


def test_ses_refusal_releases_the_claim_for_a_later_run(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate("n1", as_of)])
    unverified = render_warning(
        settings.product_name, settings.app_url, "unverified.example", Policy()
    )
    failures = FailureLog()

    outcomes = warn_users(
        notify_context(clients, settings, as_of, message=unverified, on_failure=failures), ["n1"]
    )

    row = outcome_of(outcomes, "n1")
    assert (row["outcome"], row["step"]) == (FAILED, "send")
    assert "MessageRejected" in row["error"]
    assert [(u, step) for u, step, _ in failures.calls] == [("n1", "notify.send")]
    assert isinstance(failures.calls[0][2], ClientError)
    assert sent_messages() == []
    stored = get_item(clients.dynamodb, settings.users_table, "n1")
    assert SENT_AT not in stored
    assert CLAIMED_BY not in stored
    assert CLAIMED_AT not in stored

    later = warn_users(notify_context(clients, settings, as_of, run_id="run-2"), ["n1"])

    assert outcome_of(later, "n1")["outcome"] == WARNED
    assert recipients() == ["n1@example.com"]


def test_ses_error_for_one_user_does_not_stop_the_others(aws):
    clients, settings = aws
    as_of = now_ms()
    ids = ["n1", "n2", "n3"]
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate(u, as_of) for u in ids])
    fault = fail_when(
        clients.sesv2,
        "SendEmail",
        lambda p: p["Destination"]["ToAddresses"] == ["n2@example.com"],
        lambda: client_error("TooManyRequestsException", "SendEmail"),
    )
    failures = FailureLog()

    outcomes = warn_users(notify_context(clients, settings, as_of, on_failure=failures), ids)
    fault.remove()

    assert [outcome_of(outcomes, u)["outcome"] for u in ids] == [WARNED, FAILED, WARNED]
    assert outcome_of(outcomes, "n2")["step"] == "send"
    assert [(u, step) for u, step, _ in failures.calls] == [("n2", "notify.send")]
    assert recipients() == ["n1@example.com", "n3@example.com"]
    stored = get_item(clients.dynamodb, settings.users_table, "n2")
    assert SENT_AT not in stored
    assert CLAIMED_BY not in stored


def test_unknown_answer_leaves_one_pending_warning_until_the_lease_ends(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate("n1", as_of)])
    fault = fail_when(
        clients.sesv2,
        "SendEmail",
        lambda p: True,
        lambda: ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"),
    )

    outcomes = warn_users(notify_context(clients, settings, as_of, run_id="run-1"), ["n1"])
    fault.remove()

    row = outcome_of(outcomes, "n1")
    assert (row["outcome"], row["step"]) == (FAILED, "send")
    stored = get_item(clients.dynamodb, settings.users_table, "n1")
    assert stored[CLAIMED_BY] == s("run-1")
    assert SENT_AT not in stored

    # Within the lease another run must not send: the first message may have gone out.
    blocked = warn_users(notify_context(clients, settings, as_of, run_id="run-2"), ["n1"])
    assert outcome_of(blocked, "n1")["step"] == "claim"
    assert sent_messages() == []

    time.sleep(0.005)
    finished = warn_users(
        notify_context(clients, settings, as_of, run_id="run-3", claim_lease_ms=1), ["n1"]
    )
    assert outcome_of(finished, "n1")["outcome"] == WARNED
    assert recipients() == ["n1@example.com"]


def test_user_who_came_back_before_the_run_gets_nothing(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate("n1", as_of)])
    clients.dynamodb.update_item(
        TableName=settings.users_table,
        Key={"id": s("n1")},
        UpdateExpression="SET lastVisitAt = :t",
        ExpressionAttributeValues={":t": n(now_ms())},
    )

    outcomes = warn_users(notify_context(clients, settings, as_of), ["n1"])

    row = outcome_of(outcomes, "n1")
    assert (row["outcome"], row["step"]) == (SKIPPED, "recheck")
    assert row["error"].startswith("now active")
    assert sent_messages() == []
    assert SENT_AT not in get_item(clients.dynamodb, settings.users_table, "n1")


def test_user_who_came_back_between_reread_and_claim_gets_nothing(aws):
    clients, settings = aws
    as_of = now_ms()
    batch_write(clients.dynamodb, settings.users_table, [notify_candidate("n1", as_of)])
    app = boto3.client("dynamodb", region_name=settings.aws_region)
    returned = now_ms()

    def app_writes_first(params, **_):
        app.update_item(
            TableName=settings.users_table,
            Key={"id": s("n1")},
            UpdateExpression="SET lastVisitAt = :t",
            ExpressionAttributeValues={":t": n(returned)},
        )

    clients.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", app_writes_first
    )
    outcomes = warn_users(notify_context(clients, settings, as_of), ["n1"])
    clients.dynamodb.meta.events.unregister(
        "before-parameter-build.dynamodb.UpdateItem", app_writes_first
    )

    row = outcome_of(outcomes, "n1")
    assert (row["outcome"], row["step"]) == (SKIPPED, "claim")
    assert sent_messages() == []
    stored = get_item(clients.dynamodb, settings.users_table, "n1")
    assert stored["lastVisitAt"] == n(returned)
    assert SENT_AT not in stored
    assert CLAIMED_BY not in stored


def test_user_who_came_back_after_the_warning_is_warned_again(aws):
    clients, settings = aws
    as_of = now_ms()
    # Warned 100 days ago, came back 70 days ago, away since: a new inactivity episode.
    item = notify_candidate("n1", as_of)
    item["lastVisitAt"] = n(as_of - 70 * DAY)
    item[SENT_AT] = n(as_of - 100 * DAY)
    batch_write(clients.dynamodb, settings.users_table, [item])

    outcomes = warn_users(notify_context(clients, settings, as_of), ["n1"])

    assert outcome_of(outcomes, "n1")["outcome"] == WARNED
    assert recipients() == ["n1@example.com"]
    assert int(get_item(clients.dynamodb, settings.users_table, "n1")[SENT_AT]["N"]) > as_of - DAY

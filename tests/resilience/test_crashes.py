"""The process running the job dies between two steps: right before the n-th call of an AWS
operation, nothing it would still do reaches AWS. Whatever the crash point, the state it leaves
is safe, and later runs finish the work exactly: every deleted user's data gone, every warning
sent once, except a warning SES accepted whose confirmation never got written; that one goes out
again once the claim's lease is over, and nothing else does. A user who comes back after the
crash gets back what the dead run had hidden, even from a run a guard stops."""

from typing import Any

import pytest

from cleanup_pipeline.actions.ledger import read_ledger
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.core.recovery import PENDING
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support.aws_state import keys_under, scan_all
from tests.support.http_faults import CrashPoint, faults
from tests.support.items import now_ms
from tests.support.jobs import check_results
from tests.support.recovery import InFlight, assert_safe, claimed, recover, run_job, sent_counts
from tests.support.world import NOTIFIED, Seeded, seed_world

pytestmark = pytest.mark.usefixtures("fault_harness")


def table(name: str) -> Any:
    return lambda params: params.get("TableName") == name


def transaction_on(name: str) -> Any:
    return lambda params: any(
        action["TableName"] == name
        for entry in params.get("TransactItems", [])
        for action in entry.values()
    )


def users_update(prefix: str) -> Any:
    return lambda params: (
        params.get("TableName") == "users" and params["UpdateExpression"].startswith(prefix)
    )


CASCADE = [
    CrashPoint("DeleteObjects, every folder listed", "DeleteObjects"),
    CrashPoint("the read_references op (features Scan)", "Scan", 1, table("features")),
    CrashPoint("the 2nd feature UpdateItem of u1", "UpdateItem", 2, table("features")),
    CrashPoint("the 2nd scoreboard UpdateItem", "UpdateItem", 2, table("scoreboards")),
    CrashPoint("the 1st emails transaction", "TransactWriteItems", 1, transaction_on("emails")),
    CrashPoint("the 1st user DeleteItem", "DeleteItem", 1),
    CrashPoint("the 3rd user DeleteItem (in the 2nd batch)", "DeleteItem", 3),
]


def crash_at(aws: Any, point: CrashPoint) -> tuple[Seeded, int, InFlight]:
    """Seed the world, run the job until it dies at `point`, and check the state it left is
    safe; returns the seeded world, the time before the run and what was left in flight."""
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=3)
    before = now_ms()
    with faults(crash=point) as plan:
        crashed = run_job()
    assert plan.crashed, f"the run never reached {point.label}"
    assert not crashed.success
    return seeded, before, assert_safe(clients, settings, seeded)


@pytest.mark.parametrize("point", CASCADE, ids=lambda p: p.label)
def test_crash_in_the_cascade_is_finished_by_the_next_run(aws, point) -> None:
    clients, settings = aws
    seeded, before, in_flight = crash_at(aws, point)
    assert not in_flight.sent and not in_flight.unsent
    recover(clients, settings, seeded, before, in_flight)


CLAIM, CONFIRM = users_update("SET #n"), users_update("SET #sent")

# (crash point, whether a warning is left sent but unconfirmed, whether one is left claimed but
# unsent; None where it depends on how the sending threads interleave)
NOTIFY = [
    (CrashPoint("the 1st claim", "UpdateItem", 1, CLAIM), False, False),
    (CrashPoint("the 1st SendEmail, after its claim", "SendEmail"), False, True),
    (CrashPoint("the 1st confirm, after SES accepted", "UpdateItem", 1, CONFIRM), True, None),
]


@pytest.mark.parametrize(
    ("point", "sent_unconfirmed", "claimed_unsent"),
    [pytest.param(*case, id=case[0].label) for case in NOTIFY],
)
def test_crash_in_the_warning_sequence_never_warns_twice_except_an_unconfirmed_send(
    aws, point, sent_unconfirmed, claimed_unsent
) -> None:
    clients, settings = aws
    seeded, before, in_flight = crash_at(aws, point)
    for expected, left in ((sent_unconfirmed, in_flight.sent), (claimed_unsent, in_flight.unsent)):
        if expected is not None:
            assert bool(left) == expected, in_flight
    assert claimed(clients, settings) == in_flight.sent | in_flight.unsent
    assert set(sent_counts()) <= {f"{uid}@example.com" for uid in NOTIFIED}
    recover(clients, settings, seeded, before, in_flight)


def key_of(user_id: str, table_name: str) -> Any:
    return lambda params: (
        params.get("TableName") == table_name and params.get("Key") == {"id": {"S": user_id}}
    )


CAME_BACK = [
    CrashPoint("the UpdateItem of u1's first feature", "UpdateItem", 1, key_of("f-u1", "features")),
    CrashPoint("u1's DeleteItem", "DeleteItem", 1, key_of("u1", "users")),
]
# The world's invalid users over the limit: a blocking guard stops the run before any action.
BLOCKED = CleanupPolicy(send_rate_per_second=200, deletion_batch_size=2, max_invalid_fraction=0)


@pytest.mark.parametrize("window", [30, 0])
@pytest.mark.parametrize("point", CAME_BACK, ids=lambda p: p.label)
def test_user_back_after_a_crash_mid_cascade_gets_everything_back_in_a_blocked_run(
    aws, monkeypatch, point, window
) -> None:
    clients, settings = aws
    monkeypatch.setenv("RESTORE_WINDOW_DAYS", str(window))
    seeded = seed_world(clients, settings, big_folder=3)
    with faults(crash=point) as plan:
        crashed = run_job()
    assert plan.crashed and not crashed.success
    bucket, db = settings.public_bucket_name, clients.dynamodb
    assert keys_under(clients.s3, bucket, "u1/") == []  # hidden by the run that died
    db.update_item(
        TableName=settings.users_table,
        Key={"id": {"S": "u1"}},
        UpdateExpression="SET lastVisitAt = :now",
        ExpressionAttributeValues={":now": {"N": str(now_ms())}},
    )

    blocked = run_job(BLOCKED)

    assert not blocked.success
    assert not check_results(blocked)["invalid_share_within_limit"]
    assert keys_under(clients.s3, bucket, "u1/") == seeded.files["u1"]
    assert check_results(blocked)["every_unfinished_deletion_settled"]
    features = scan_all(db, settings.features_table)
    assert features["f-u1"] == seeded.features["f-u1"]
    assert features["f-u1-2"] == seeded.features["f-u1-2"]
    gone = set(seeded.users) - set(scan_all(db, settings.users_table))
    assert "u1" not in gone
    boards = scan_all(db, settings.scoreboards_table)
    for period, board in seeded.scoreboards.items():
        kept = [e for e in board["users"]["L"] if e["M"]["id"]["S"] not in gone]
        assert boards[period] == {**board, "users": {"L": kept}}, period
    store = open_archive(settings.archive_location, clients.s3)
    assert store.keys(PENDING) == [] and read_ledger(store, "u1") == []

"""A run with faults or a crash, what must hold after it however it ended, and how the next
runs recover."""

from collections import Counter
from dataclasses import dataclass

import dagster as dg

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.aws.users_table import CLAIMED_AT, CLAIMED_BY, SENT_AT
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.orchestration.jobs import run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support.aws_state import keys_under, scan_all, sent_to
from tests.support.http_faults import FaultyAwsEnvironment
from tests.support.items import now_ms
from tests.support.jobs import execute_job, failed_steps
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, Seeded, assert_final_state


def run_job(policy: CleanupPolicy | None = None) -> dg.ExecuteInProcessResult:
    """The real job, in process, at the world's `as_of`, with the faulty AWS environment;
    Dagster's console log shows warnings and errors only."""
    run_config = {
        **run_config_for(AS_OF_ISO),
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    return execute_job(
        run_config,
        aws=FaultyAwsEnvironment(),
        # Small deletion batches, so that crashes and faults land between and within them.
        policy=policy or CleanupPolicy(send_rate_per_second=200, deletion_batch_size=2),
    )


def sent_counts() -> Counter[str]:
    """Messages SES accepted, per recipient."""
    return Counter(sent_to())


def address(user_id: str) -> str:
    return f"{user_id}@example.com"


CLAIM = (CLAIMED_BY, CLAIMED_AT)


def claimed(clients: AwsClients, settings: Settings) -> set[str]:
    users = scan_all(clients.dynamodb, settings.users_table)
    return {uid for uid, item in users.items() if CLAIMED_AT in item}


def age_claims(clients: AwsClients, settings: Settings, minutes: int) -> set[str]:
    """Move every warning claim `minutes` into the past, as if that much time went by."""
    users = scan_all(clients.dynamodb, settings.users_table)
    aged = set()
    for uid, item in users.items():
        if CLAIMED_AT in item:
            old = int(item[CLAIMED_AT]["N"]) - minutes * 60_000
            clients.dynamodb.update_item(
                TableName=settings.users_table,
                Key={"id": {"S": uid}},
                UpdateExpression="SET #at = :old",
                ExpressionAttributeNames={"#at": CLAIMED_AT},
                ExpressionAttributeValues={":old": {"N": str(old)}},
            )
            aged.add(uid)
    return aged


@dataclass(frozen=True)
class InFlight:
    """Warnings a failed or dead run left claimed: sent but not confirmed, or not sent."""

    sent: frozenset[str]
    unsent: frozenset[str]


def assert_safe(clients: AwsClients, settings: Settings, seeded: Seeded) -> InFlight:
    """What must hold after any run, however it ended: nobody deleted who should not be; no
    file, feature reference or scoreboard entry left of a deleted user; nobody else's data
    touched; `accountDeletionEmailSentAt` only on people emailed; no warning sent twice; an
    emailed person without a send time holds a claim (so no run sends again within the lease)."""
    users = scan_all(clients.dynamodb, settings.users_table)
    gone = set(seeded.users) - set(users)
    assert gone <= set(DELETED), sorted(gone - set(DELETED))

    keys = set(keys_under(clients.s3, settings.public_bucket_name))
    for uid, files in seeded.files.items():
        if uid in gone:
            assert not {k for k in keys if k.startswith(f"{uid}/")}, uid
        elif uid not in DELETED:
            assert set(files) <= keys, uid
    assert keys <= {k for files in seeded.files.values() for k in files}

    features = scan_all(clients.dynamodb, settings.features_table)
    assert set(features) == set(seeded.features)
    for fid, original in seeded.features.items():
        proposer = original.get("proposedBy", {}).get("S")
        current = features[fid]
        if proposer in DELETED and "proposedBy" not in current:
            current = {**current, "proposedBy": original["proposedBy"]}
        assert current == original, fid
        if proposer in gone:
            assert "proposedBy" not in features[fid], fid

    boards = scan_all(clients.dynamodb, settings.scoreboards_table)
    for period, original in seeded.scoreboards.items():
        entries = boards[period]["users"]["L"]
        assert not [e for e in entries if e["M"]["id"]["S"] in gone], period
        kept = [e for e in original["users"]["L"] if e["M"]["id"]["S"] not in DELETED]
        assert [e for e in entries if e["M"]["id"]["S"] not in DELETED] == kept, period
        assert {**boards[period], "users": None} == {**original, "users": None}, period

    emails = scan_all(clients.dynamodb, settings.emails_table)
    assert emails[address("u1")] == {"id": {"S": address("u1")}, "source": {"S": "signup"}}
    assert set(emails) <= {address(uid) for uid in DELETED}
    assert {address(uid) for uid in gone} <= set(emails)
    for addr, item in emails.items():
        if addr != address("u1"):
            assert item == {"id": {"S": addr}}, addr

    sent = sent_counts()
    assert set(sent) <= {address(uid) for uid in NOTIFIED}, sorted(sent)
    assert max(sent.values(), default=0) <= 1, sent
    in_flight_sent, in_flight_unsent = set(), set()
    for uid, item in users.items():
        original = seeded.users[uid]
        bookkeeping = (SENT_AT, *CLAIM)
        assert {k: v for k, v in item.items() if k not in bookkeeping} == {
            k: v for k, v in original.items() if k not in bookkeeping
        }, uid
        if uid not in NOTIFIED:
            assert item == original, uid
            continue
        assert (CLAIMED_BY in item) == (CLAIMED_AT in item), uid
        newly_sent = item.get(SENT_AT) != original.get(SENT_AT)
        if newly_sent:
            assert sent[address(uid)] >= 1, f"{uid}: send time written but never emailed"
            assert CLAIMED_AT not in item, uid
        elif sent[address(uid)]:
            assert CLAIMED_AT in item, f"{uid}: emailed, no send time and no claim"
            in_flight_sent.add(uid)
        elif CLAIMED_AT in item:
            in_flight_unsent.add(uid)
    return InFlight(frozenset(in_flight_sent), frozenset(in_flight_unsent))


def recover(
    clients: AwsClients, settings: Settings, seeded: Seeded, before: int, in_flight: InFlight
) -> None:
    """After a failed or dead run: a clean run finishes everything except the warnings still
    claimed (none sent again within the lease); once the lease is over, a clean run finishes
    those too. Only a warning SES accepted but that was never confirmed goes out twice."""
    lease = CleanupPolicy().warning_claim_lease_minutes
    within = run_job()
    assert within.success, failed_steps(within)
    assert claimed(clients, settings) == in_flight.sent | in_flight.unsent
    assert_safe(clients, settings, seeded)
    sent_within = sent_counts()
    for uid in in_flight.unsent:
        assert sent_within[address(uid)] == 0, uid
    if in_flight.sent or in_flight.unsent:
        assert age_claims(clients, settings, lease + 1) == in_flight.sent | in_flight.unsent
        later = run_job()
        assert later.success, failed_steps(later)
    sent = sent_counts()
    assert {uid: sent[address(uid)] for uid in NOTIFIED} == {
        uid: 2 if uid in in_flight.sent else 1 for uid in NOTIFIED
    }
    assert_final_state(clients, settings, seeded, list(set(sent.elements())), before, now_ms())

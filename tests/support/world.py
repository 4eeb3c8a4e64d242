"""A small world of users covering every rule of SPEC §3, with the files, features and
scoreboard entries they left, and the exact final state SPEC §4 expects after one run."""

from dataclasses import dataclass, field
from typing import Any

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.as_of import parse_as_of
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.aws_state import keys_under, put_objects, scan_all
from tests.support.items import n, user, warned

AS_OF_ISO = "2026-06-01T03:00:00Z"
A = parse_as_of(AS_OF_ISO)
GRACE = 30 * DAY_MS
NOTIFY_AFTER = 60 * DAY_MS


# id -> (item attributes besides id/email, expected decision)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "active-60d": ({"lastVisitAt": n(A - NOTIFY_AFTER)}, "active"),
    "notify-60d-1ms": ({"lastVisitAt": n(A - NOTIFY_AFTER - 1)}, "notify"),
    "notify-again": (
        {"accountDeletionEmailSentAt": n(A - 100 * DAY_MS), "lastVisitAt": n(A - 70 * DAY_MS)},
        "notify",
    ),
    "came-back": (
        {"accountDeletionEmailSentAt": n(A - 40 * DAY_MS), "lastVisitAt": n(A - 40 * DAY_MS + 1)},
        "active",
    ),
    "visit-equals-sent": (
        {"accountDeletionEmailSentAt": n(A - 70 * DAY_MS), "lastVisitAt": n(A - 70 * DAY_MS)},
        "notify",
    ),
    "waiting-30d": (warned(A - GRACE), "waiting"),
    "delete-30d-1ms": (warned(A - GRACE - 1), "delete"),
    "u1": (warned(A - 45 * DAY_MS), "delete"),
    "u1x": ({"lastVisitAt": n(A - DAY_MS)}, "active"),
    "u10": ({"lastVisitAt": n(A - DAY_MS)}, "active"),
    "trial-ends-later": (warned(A - 45 * DAY_MS, freeTrialEnd=n(A + 1)), "exempt"),
    "trial-ended-now": (warned(A - 45 * DAY_MS, freeTrialEnd=n(A)), "delete"),
    "lifetime": (warned(A - 45 * DAY_MS, lifeTimeDeal={"BOOL": True}), "exempt"),
    "lifetime-false": (warned(A - 45 * DAY_MS, lifeTimeDeal={"BOOL": False}), "delete"),
    "lifetime-zero": ({"lastVisitAt": n(A - 90 * DAY_MS), "lifeTimeDeal": n(0)}, "notify"),
    "subscriber-open": (
        warned(A - 45 * DAY_MS, subscription={"M": {"id": {"S": "s1"}, "status": {"S": "active"}}}),
        "exempt",
    ),
    "subscriber-ends-later": (
        warned(A - 45 * DAY_MS, subscription={"M": {"endsAt": n(A + 1)}}),
        "exempt",
    ),
    "subscription-ended-now": (
        warned(A - 45 * DAY_MS, subscription={"M": {"endsAt": n(A)}}),
        "delete",
    ),
    "subscription-null": (
        {"lastVisitAt": n(A - 61 * DAY_MS), "subscription": {"NULL": True}},
        "notify",
    ),
    "invalid-seconds": ({"lastVisitAt": n((A - 90 * DAY_MS) // 1000)}, "invalid"),
    "invalid-type": ({"lastVisitAt": {"S": "2026-01-01"}}, "invalid"),
    "invalid-subscription": (
        warned(A - 45 * DAY_MS, subscription={"S": "premium"}),
        "invalid",
    ),
}
NO_EMAIL = "invalid-no-email"
DELETED = sorted(uid for uid, (_, d) in CASES.items() if d == "delete")
NOTIFIED = sorted(uid for uid, (_, d) in CASES.items() if d == "notify")
BIG_FOLDER = 1_005


@dataclass
class Seeded:
    users: dict[str, dict[str, Any]]
    files: dict[str, list[str]] = field(default_factory=dict)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    scoreboards: dict[str, dict[str, Any]] = field(default_factory=dict)


# Recently active users, so that the 4 invalid users stay under the default 1% guard.
PADDING = 420


def seed_world(clients: AwsClients, settings: Settings, big_folder: int = BIG_FOLDER) -> Seeded:
    users = {uid: user(uid, **attrs) for uid, (attrs, _) in CASES.items()}
    users[NO_EMAIL] = {"id": {"S": NO_EMAIL}, "lastVisitAt": n(A - 90 * DAY_MS)}
    for i in range(PADDING):
        users[f"pad-{i:04d}"] = user(f"pad-{i:04d}", lastVisitAt=n(A - (i % 50) * DAY_MS))
    batch_write(clients.dynamodb, settings.users_table, list(users.values()))

    seeded = Seeded(users=users)
    for uid in ("u1", "u1x", "u10", "delete-30d-1ms", "active-60d", "waiting-30d"):
        count = big_folder if uid == "u1" else 3
        seeded.files[uid] = [f"{uid}/file-{i:04d}.txt" for i in range(count)]
    for keys in seeded.files.values():
        put_objects(clients.s3, settings.public_bucket_name, keys)

    features = {
        "f-u1": {"id": {"S": "f-u1"}, "proposedBy": {"S": "u1"}, "title": {"S": "Dark mode"}},
        "f-u1-2": {"id": {"S": "f-u1-2"}, "proposedBy": {"S": "u1"}, "votes": n(3)},
        "f-u1x": {"id": {"S": "f-u1x"}, "proposedBy": {"S": "u1x"}, "title": {"S": "Export"}},
        "f-none": {"id": {"S": "f-none"}, "title": {"S": "Widgets"}},
        "f-waiting": {"id": {"S": "f-waiting"}, "proposedBy": {"S": "waiting-30d"}},
    }
    batch_write(clients.dynamodb, settings.features_table, list(features.values()))
    seeded.features = features

    def entry(uid: str, score: int) -> dict[str, Any]:
        return {"M": {"id": {"S": uid}, "score": n(score), "name": {"S": uid.upper()}}}

    boards = {
        "week": {
            "id": {"S": "week"},
            "users": {
                "L": [
                    entry("u1x", 9),
                    entry("u1", 8),
                    entry("active-60d", 7),
                    entry("delete-30d-1ms", 6),
                    entry("u10", 5),
                ]
            },
        },
        "month": {
            "id": {"S": "month"},
            "users": {"L": [entry("u1", 4), entry("u1", 3), entry("waiting-30d", 2)]},
            "syncedAt": n(A),
        },
    }
    batch_write(clients.dynamodb, settings.scoreboards_table, list(boards.values()))
    seeded.scoreboards = boards
    batch_write(
        clients.dynamodb,
        settings.emails_table,
        [{"id": {"S": "u1@example.com"}, "source": {"S": "signup"}}],
    )
    return seeded


def assert_final_state(
    clients: AwsClients,
    settings: Settings,
    seeded: Seeded,
    sent_to: list[str],
    before: int,
    after: int,
) -> None:
    """Exactly the SPEC §4 outcome: deleted users gone with all their data; warned users hold a
    send time and got one email; everyone else untouched."""
    users = scan_all(clients.dynamodb, settings.users_table)
    assert sorted(set(seeded.users) - set(users)) == DELETED
    for uid, original in seeded.users.items():
        if uid in DELETED:
            continue
        current = users[uid]
        if uid in NOTIFIED:
            sent = int(current["accountDeletionEmailSentAt"]["N"])
            assert before <= sent <= after, uid
            current = {k: v for k, v in current.items() if k != "accountDeletionEmailSentAt"}
            original = {k: v for k, v in original.items() if k != "accountDeletionEmailSentAt"}
        assert current == original, (uid, current, original)
    assert sorted(sent_to) == sorted(f"{uid}@example.com" for uid in NOTIFIED)

    keys = set(keys_under(clients.s3, settings.public_bucket_name))
    expected_keys = {k for uid, ks in seeded.files.items() if uid not in DELETED for k in ks}
    assert keys == expected_keys

    features = scan_all(clients.dynamodb, settings.features_table)
    expected_features = {
        fid: {k: v for k, v in f.items() if not (k == "proposedBy" and v["S"] in DELETED)}
        for fid, f in seeded.features.items()
    }
    assert features == expected_features

    boards = scan_all(clients.dynamodb, settings.scoreboards_table)
    for period, board in seeded.scoreboards.items():
        kept = [e for e in board["users"]["L"] if e["M"]["id"]["S"] not in DELETED]
        assert boards[period] == {**board, "users": {"L": kept}}

    emails = scan_all(clients.dynamodb, settings.emails_table)
    assert emails["u1@example.com"] == {"id": {"S": "u1@example.com"}, "source": {"S": "signup"}}
    assert set(emails) == {f"{uid}@example.com" for uid in DELETED}

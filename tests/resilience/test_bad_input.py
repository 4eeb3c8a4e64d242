"""Malformed user items (SPEC §3 rule 1): decided `invalid` with their reason, never warned,
deleted or modified, and listed in the run's report; a snapshot with too many of them stops
every action (SPEC §5)."""

from dataclasses import dataclass
from typing import Any

import pytest

from cleanup_pipeline.core.wire import decode_items
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import put_objects, read_state
from tests.support.classify import decide_all
from tests.support.items import ABSENT, DAY, NOW, Item, n, now_ms
from tests.support.jobs import check_results, metadata, read_report
from tests.support.malformed_corpus import (
    Malformed,
    OddButValid,
    candidate,
    malformed_corpus,
    odd_but_valid,
)
from tests.support.moto_env import moto_world
from tests.support.run_capture import HOUR, FinishedRun, execute, run_and_capture

CORPUS = malformed_corpus(NOW, NOW)
ODD = odd_but_valid(NOW)
STORABLE = [entry.name for entry in CORPUS if entry.storable]


@pytest.fixture(autouse=True)
def no_faults():
    recording.FAULTS.clear()
    yield
    recording.FAULTS.clear()


def decide(items: list[Item], as_of: int = NOW) -> list[tuple[str, str]]:
    frame = decide_all(items, as_of=as_of)
    return list(zip(frame["decision"].astype(str), frame["reason"].astype(str), strict=True))


def neighbours(as_of: int) -> tuple[Item, Item]:
    """A delete candidate and a notify candidate that must keep their decisions."""
    return (
        candidate("neighbour-delete", as_of),
        candidate("neighbour-notify", as_of, accountDeletionEmailSentAt=ABSENT),
    )


# --- pure: decode_items + classify -------------------------------------------------------------


def test_corpus_has_at_least_thirty_malformed_shapes_and_thirty_storable():
    assert len(CORPUS) >= 30
    assert len(STORABLE) >= 30


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e.name)
def test_malformed_item_is_invalid_with_its_reason(entry: Malformed):
    before, after = neighbours(NOW)
    decided = decide([before, *entry.items, after])
    assert decided[0] == ("delete", "warned over 30 days ago")
    assert decided[-1] == ("notify", "inactive over 60 days")
    for decision, reason in decided[1:-1]:
        assert decision == "invalid", (entry.name, reason)
        assert entry.reason in reason, (entry.name, reason)


@pytest.mark.parametrize("entry", ODD, ids=lambda e: e.name)
def test_odd_but_valid_item_is_decided_by_the_rules(entry: OddButValid):
    decision, reason = decide([entry.item])[0]
    assert decision == entry.decision, (entry.name, reason)
    assert entry.reason in reason


def test_whole_corpus_in_one_page_decides_as_item_by_item():
    """The decoder works on a page at a time: one odd value must not change its neighbours'
    decisions (e.g. by pushing the whole column onto a slower, different parser)."""
    groups = [list(entry.items) for entry in CORPUS] + [[entry.item] for entry in ODD]
    one_by_one = [decided for group in groups for decided in decide(group)]
    assert decide([item for group in groups for item in group]) == one_by_one


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        ("freeTrialEnd", f"{NOW}", "delete"),
        ("freeTrialEnd", f"{NOW}.0", "delete"),
        ("freeTrialEnd", f"{NOW - 1}.5", "delete"),
        ("freeTrialEnd", f"{NOW}.5", "exempt"),
        ("freeTrialEnd", f"{NOW + 1}", "exempt"),
        ("endsAt", f"{NOW}", "delete"),
        ("endsAt", f"{NOW - 1}.5", "delete"),
        ("endsAt", f"{NOW}.5", "exempt"),
        ("endsAt", "-1E+125", "delete"),
        ("endsAt", "1E+125", "exempt"),
        ("freeTrialEnd", "9" * 38, "exempt"),
        ("accountDeletionEmailSentAt", "1E+125", "waiting"),
        ("accountDeletionEmailSentAt", "-1E+125", "notify"),
        ("accountDeletionEmailSentAt", f"{NOW - 30 * DAY}.5", "waiting"),
        ("accountDeletionEmailSentAt", f"{NOW - 30 * DAY - 1}.5", "delete"),
    ],
)
def test_fractional_and_huge_numbers_compare_exactly_as_spec_writes(attribute, value, expected):
    """`freeTrialEnd > as_of`, `endsAt > as_of`, `sentAt + 30 days < as_of` hold for the value
    as written, not for a rounded or rejected one."""
    if attribute == "endsAt":
        item = candidate("u", NOW, subscription={"M": {"endsAt": n(value)}})
    else:
        item = candidate("u", NOW, **{attribute: n(value)})
    assert decide([item])[0][0] == expected


# --- job level: the real job against moto ------------------------------------------------------


@dataclass(frozen=True)
class CorpusRun:
    run: FinishedRun
    as_of: int
    malformed: dict[str, Malformed]
    odd: dict[str, OddButValid]
    deleted: set[str]
    notified: set[str]


def _files(user_id: str) -> list[str]:
    return [f"{user_id}/file-0.txt", f"{user_id}/nested/file-1.txt"]


# Keys no user owns, next to the odd ids' folders: a wrong prefix (stripped, emptied,
# unanchored) would reach them.
DECOYS = [
    "/root.txt",
    "odd-lead/f.txt",
    "odd-trail/f.txt",
    "odd-trail /f.txt",
    "bad-a/f.txt",
    "valid-deletex/f.txt",
    "odd-ü-用户-😀x/f.txt",
    "pad-001/f.txt",
]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> CorpusRun:
    as_of = now_ms() - HOUR
    malformed = {e.name: e for e in malformed_corpus(as_of, now_ms()) if e.storable}
    odd = {e.name: e for e in odd_but_valid(as_of)}
    controls = [
        candidate("valid-delete", as_of),
        candidate("valid-notify", as_of, accountDeletionEmailSentAt=ABSENT),
        *[candidate(f"pad-{i:03d}", as_of, lastVisitAt=n(as_of - i * DAY)) for i in range(3)],
    ]
    users = [e.items[0] for e in malformed.values()] + [e.item for e in odd.values()] + controls
    ids = [item["id"]["S"] for item in users]
    assert len(ids) == len(set(ids))

    with moto_world(tmp_path_factory.mktemp("reports")) as (clients, settings):
        ddb = clients.dynamodb
        batch_write(ddb, settings.users_table, users)
        put_objects(
            clients.s3, settings.public_bucket_name, [k for i in ids for k in _files(i)] + DECOYS
        )
        batch_write(
            ddb,
            settings.features_table,
            [{"id": {"S": f"f-{k}"}, "proposedBy": {"S": i}} for k, i in enumerate(ids)],
        )

        def entry(user_id: str, score: int) -> dict[str, Any]:
            return {"M": {"id": {"S": user_id}, "score": n(score)}}

        stranger = entry("stranger", 0)
        board = [e for k, i in enumerate(ids) for e in (entry(i, k), stranger)]
        batch_write(
            ddb,
            settings.scoreboards_table,
            [
                {"id": {"S": "week"}, "users": {"L": board}},
                {"id": {"S": "month"}, "users": {"L": board[::-1]}},
            ],
        )
        policy = CleanupPolicy(max_invalid_fraction=0.75, send_rate_per_second=200)
        run = run_and_capture(clients, settings, as_of, policy)

    deleted = {"valid-delete"} | {e.user_id for e in odd.values() if e.decision == "delete"}
    notified = {"valid-notify"} | {e.user_id for e in odd.values() if e.decision == "notify"}
    return CorpusRun(run, as_of, malformed, odd, deleted, notified)


def test_job_with_the_corpus_succeeds_and_still_acts_on_valid_users(corpus_run: CorpusRun):
    run = corpus_run.run
    assert run.result.success
    assert set(run.before.users) - set(run.after.users) == corpus_run.deleted
    emails = {uid: run.before.users[uid]["email"]["S"] for uid in corpus_run.notified}
    assert sorted(run.after.sent_to) == sorted(emails.values())
    decided = metadata(run.result, "user_decisions")
    assert decided["invalid"] == len(corpus_run.malformed)
    stored = [run.before.users[e.user_id] for e in corpus_run.malformed.values()]
    flagged = int(decode_items(stored)["malformed"].notna().sum())
    assert metadata(run.result, "users_snapshot")["malformed"] == flagged > 0


@pytest.mark.parametrize("name", STORABLE)
def test_malformed_user_is_untouched_and_reported_invalid(corpus_run: CorpusRun, name: str):
    entry = corpus_run.malformed[name]
    run, user_id = corpus_run.run, entry.user_id
    assert run.after.users[user_id] == run.before.users[user_id] == entry.items[0]
    own = {key for key in run.before.keys if key in _files(user_id)}
    assert own == set(_files(user_id))
    assert own <= run.after.keys
    assert [f for f in run.after.features.values() if f.get("proposedBy") == {"S": user_id}]
    for board in run.after.scoreboards.values():
        assert {"S": user_id} in [e["M"]["id"] for e in board["users"]["L"]]
    email = entry.items[0].get("email", {}).get("S")
    assert email not in run.after.sent_to
    assert email not in run.after.emails
    row = run.report_row(user_id)
    assert row["decision"] == "invalid"
    assert entry.reason in row["reason"]
    assert row["outcome"] == "no_action"


@pytest.mark.parametrize("name", [e.name for e in ODD])
def test_odd_but_valid_user_gets_exactly_its_action(corpus_run: CorpusRun, name: str):
    entry = corpus_run.odd[name]
    run, user_id = corpus_run.run, entry.user_id
    email = entry.item["email"]["S"]
    if entry.decision == "delete":
        assert user_id not in run.after.users
        assert not {key for key in run.after.keys if key.startswith(f"{user_id}/")}
        assert email in run.after.emails
        assert run.report_row(user_id)["outcome"] == "deleted"
        return
    current, expected = dict(run.after.users[user_id]), dict(entry.item)
    if entry.decision == "notify":
        assert run.after.sent_to.count(email) == 1
        assert int(current.pop("accountDeletionEmailSentAt")["N"]) > corpus_run.as_of
        expected.pop("accountDeletionEmailSentAt", None)
        assert run.report_row(user_id)["outcome"] == "warned"
    else:
        assert email not in run.after.sent_to
    assert current == expected
    assert set(_files(user_id)) <= run.after.keys
    reported = run.report[run.report["id"] == user_id]
    if entry.decision == "exempt":
        assert reported.empty
    else:
        assert reported["decision"].tolist() == [entry.decision]


def test_nothing_but_the_deleted_users_data_changed(corpus_run: CorpusRun):
    run, deleted = corpus_run.run, corpus_run.deleted
    gone = {key for key in run.before.keys if any(key.startswith(f"{u}/") for u in deleted)}
    assert gone == {key for u in deleted for key in _files(u)}
    assert run.after.keys == run.before.keys - gone
    for fid, feature in run.before.features.items():
        expected = {"id": feature["id"]}
        if feature["proposedBy"]["S"] not in deleted:
            expected["proposedBy"] = feature["proposedBy"]
        assert run.after.features[fid] == expected
    for period, board in run.before.scoreboards.items():
        kept = [e for e in board["users"]["L"] if e["M"]["id"]["S"] not in deleted]
        assert run.after.scoreboards[period] == {**board, "users": {"L": kept}}
    archived = {run.before.users[u]["email"]["S"] for u in deleted}
    assert set(run.after.emails) == archived


def test_five_percent_invalid_blocks_every_action(aws):
    clients, settings = aws
    as_of = now_ms() - HOUR
    bad = [e for e in malformed_corpus(as_of, now_ms()) if e.storable][:5]
    good = [
        candidate("valid-delete", as_of),
        candidate("valid-notify", as_of, accountDeletionEmailSentAt=ABSENT),
        *[
            candidate(f"pad-{i:03d}", as_of, lastVisitAt=n(as_of - (i % 50) * DAY))
            for i in range(93)
        ],
    ]
    users = [e.items[0] for e in bad] + good
    batch_write(clients.dynamodb, settings.users_table, users)
    put_objects(clients.s3, settings.public_bucket_name, _files("valid-delete") + _files("bad-x"))
    batch_write(
        clients.dynamodb,
        settings.features_table,
        [{"id": {"S": "f-1"}, "proposedBy": {"S": "valid-delete"}}],
    )
    before = read_state(clients, settings)

    result = execute(as_of, CleanupPolicy(send_rate_per_second=200))

    assert not result.success
    checks = check_results(result)
    assert checks["invalid_share_within_limit"] is False
    assert checks["deletions_within_limit"] is True
    assert checks["warnings_within_limit"] is True
    assert not result.is_node_success("warning_emails")
    assert recording.writes() == []
    assert read_state(clients, settings) == before
    assert before.sent_to == []
    report = read_report(result, "candidate_report").set_index("id")
    invalid = report[report["decision"] == "invalid"]
    assert sorted(invalid.index) == sorted(e.user_id for e in bad)
    for entry in bad:
        assert entry.reason in invalid.loc[entry.user_id, "reason"]
    assert report.loc["valid-delete", "outcome"] == "not_attempted"
    assert report.loc["valid-notify", "outcome"] == "not_attempted"

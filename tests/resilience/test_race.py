"""Users who change between the scan and the action (SPEC §4): someone who comes back,
subscribes or gets a lifetime deal is neither deleted nor warned, and gets back whatever the
cascade had already hidden or removed.

One run of the real job; botocore hooks on the job's own clients make the change with a
separate client at a precise moment: right before the consistent re-read (BatchGetItem), right
before the user's S3 listing (the cascade has started), right before the final DeleteItem, or
right before the warning claim (the first UpdateItem of the user).
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import put_objects
from tests.support.items import ABSENT, DAY, Item, n, now_ms, s
from tests.support.malformed_corpus import candidate
from tests.support.moto_env import moto_world
from tests.support.run_capture import HOUR, FinishedRun, run_and_capture

DELETE_TIMINGS = ("recheck", "files", "final-delete")
NOTIFY_TIMINGS = ("recheck", "claim")
CHANGES = ("came-back", "subscribed", "lifetime", "renewed")


def _change(client: Any, table: str, user_id: str, change: str) -> None:
    """What the app writes when the person comes back, subscribes, gets a lifetime deal or
    renews an ended subscription."""
    key = {"id": {"S": user_id}}
    if change == "came-back":
        update = {
            "UpdateExpression": "SET lastVisitAt = :now",
            "ExpressionAttributeValues": {":now": n(now_ms())},
        }
    elif change == "subscribed":
        plan = {"id": s("sub-9"), "planId": s("pro"), "status": s("active")}
        update = {
            "UpdateExpression": "SET subscription = :plan",
            "ExpressionAttributeValues": {
                ":plan": {"M": {**plan, "nextBilledAt": n(now_ms() + 30 * DAY)}}
            },
        }
    elif change == "lifetime":
        update = {
            "UpdateExpression": "SET lifeTimeDeal = :yes",
            "ExpressionAttributeValues": {":yes": {"BOOL": True}},
        }
    else:
        update = {
            "UpdateExpression": "SET subscription.#st = :active REMOVE subscription.endsAt",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":active": s("active")},
        }
    client.update_item(TableName=table, Key=key, **update)


@dataclass
class Race:
    action: str  # "delete" or "notify"
    timing: str
    change: str
    fired: int = 0
    changed_item: Item | None = None

    @property
    def user_id(self) -> str:
        return f"{self.action}-{self.timing}-{self.change}"

    def due(self, operation: str, params: dict[str, Any], settings: Settings) -> bool:
        table = settings.users_table
        if self.timing == "recheck":
            keys = params.get("RequestItems", {}).get(table, {}).get("Keys", [])
            return operation == "BatchGetItem" and {"id": s(self.user_id)} in keys
        if self.timing == "files":
            prefix = settings.user_prefix(self.user_id)
            return operation == "ListObjectVersions" and params.get("Prefix") == prefix
        own = params.get("TableName") == table and params.get("Key") == {"id": s(self.user_id)}
        if self.timing == "final-delete":
            return operation == "DeleteItem" and own
        return operation == "UpdateItem" and own  # "claim": the first write to the user


RACES = [Race("delete", t, c) for t in DELETE_TIMINGS for c in CHANGES] + [
    Race("notify", t, c) for t in NOTIFY_TIMINGS for c in CHANGES if c != "renewed"
]
RACE_IDS = [race.user_id for race in RACES]
ENDED = {"M": {"id": s("sub-1"), "status": s("canceled")}}
CONTROLS_DELETED = ("delete-control", "delete-control-ended-subscription")
CONTROL_WARNED = "notify-control"


def _user(user_id: str, as_of: int) -> Item:
    notify = {"accountDeletionEmailSentAt": ABSENT} if user_id.startswith("notify-") else {}
    if user_id.endswith(("renewed", "ended-subscription")):
        ended = {"M": {**ENDED["M"], "endsAt": n(as_of - 10 * DAY)}}
        return candidate(user_id, as_of, subscription=ended, **notify)
    return candidate(user_id, as_of, **notify)


def _files(user_id: str) -> list[str]:
    return [f"{user_id}/avatar.png", f"{user_id}/docs/notes.txt"]


@dataclass
class RaceRun:
    run: FinishedRun
    races: dict[str, Race]
    as_of: int
    users: dict[str, Item] = field(default_factory=dict)


def _install(clients: AwsClients, settings: Settings, races: list[Race]) -> Callable[..., None]:
    lock = threading.Lock()

    def hook(operation: str, params: dict[str, Any]) -> None:
        with lock:
            for race in races:
                if race.fired or not race.due(operation, params, settings):
                    continue
                race.fired += 1
                _change(clients.dynamodb, settings.users_table, race.user_id, race.change)
                race.changed_item = clients.dynamodb.get_item(
                    TableName=settings.users_table,
                    Key={"id": s(race.user_id)},
                    ConsistentRead=True,
                )["Item"]

    return hook


@pytest.fixture(scope="module")
def race_run(tmp_path_factory) -> RaceRun:
    as_of = now_ms() - HOUR
    races = [Race(r.action, r.timing, r.change) for r in RACES]
    pads = [f"pad-{i}" for i in range(6)]
    ids = [*RACE_IDS, *CONTROLS_DELETED, CONTROL_WARNED, *pads]
    users = [_user(uid, as_of) for uid in ids[: -len(pads)]] + [
        candidate(uid, as_of, lastVisitAt=n(as_of - DAY)) for uid in pads
    ]

    def entry(user_id: str, score: int) -> dict[str, Any]:
        return {"M": {"id": s(user_id), "score": n(score), "name": s(user_id.upper())}}

    with moto_world(tmp_path_factory.mktemp("reports")) as (clients, settings):
        ddb = clients.dynamodb
        batch_write(ddb, settings.users_table, users)
        put_objects(clients.s3, settings.public_bucket_name, [k for u in ids for k in _files(u)])
        features = [{"id": s(f"f-{u}"), "proposedBy": s(u), "title": s("idea")} for u in ids]
        batch_write(ddb, settings.features_table, features)
        week = [entry(u, k) for k, u in enumerate(ids)]
        boards = [
            {"id": s("week"), "users": {"L": week}},
            {"id": s("month"), "users": {"L": week[::-1]}},
        ]
        batch_write(ddb, settings.scoreboards_table, boards)
        recording.FAULTS.append(_install(clients, settings, races))
        try:
            run = run_and_capture(clients, settings, as_of, CleanupPolicy(send_rate_per_second=200))
        finally:
            recording.FAULTS.clear()
    return RaceRun(run, {race.user_id: race for race in races}, as_of)


def test_every_change_happened_once_at_its_moment_and_the_run_succeeded(race_run: RaceRun):
    assert {uid: race.fired for uid, race in race_run.races.items()} == dict.fromkeys(RACE_IDS, 1)
    assert race_run.run.result.success


def test_controls_without_a_change_are_deleted_and_warned(race_run: RaceRun):
    run = race_run.run
    for user_id in CONTROLS_DELETED:
        assert user_id not in run.after.users
        assert not set(_files(user_id)) & run.after.keys
        assert "proposedBy" not in run.after.features[f"f-{user_id}"]
        for board in run.after.scoreboards.values():
            assert s(user_id) not in [e["M"]["id"] for e in board["users"]["L"]]
        assert run.report_row(user_id)["outcome"] == "deleted"
    email = run.before.users[CONTROL_WARNED]["email"]["S"]
    assert run.after.sent_to == [email]
    assert "accountDeletionEmailSentAt" in run.after.users[CONTROL_WARNED]
    assert run.report_row(CONTROL_WARNED)["outcome"] == "warned"


def _keeps_account(race_run: RaceRun, user_id: str, outcome: str = "skipped") -> dict[str, Any]:
    """The user item is exactly as the app left it, and the report says the user was skipped
    (or kept, when the cascade had begun)."""
    run, race = race_run.run, race_run.races[user_id]
    assert race.changed_item is not None
    assert run.after.users[user_id] == race.changed_item
    assert run.before.users[user_id] != race.changed_item
    row = run.report_row(user_id)
    assert row["decision"] == race.action
    assert row["outcome"] == outcome
    return row


def _keeps_all_data(race_run: RaceRun, user_id: str, address_archived: bool = False) -> None:
    """Files, feature reference and scoreboard entries as before the run. The address is in
    the emails table only if the cascade reached that step (where the app keeps every address
    anyway: nothing to give back)."""
    run = race_run.run
    assert set(_files(user_id)) <= run.after.keys
    assert run.after.features[f"f-{user_id}"] == run.before.features[f"f-{user_id}"]
    for period, board in run.before.scoreboards.items():
        own = [e for e in board["users"]["L"] if e["M"]["id"] == s(user_id)]
        assert own
        assert [e for e in run.after.scoreboards[period]["users"]["L"] if e in own] == own
    assert (run.before.users[user_id]["email"]["S"] in run.after.emails) == address_archived


EXPECTED_AT_RECHECK = {
    "came-back": "now active",
    "subscribed": "now exempt (subscriber)",
    "lifetime": "now exempt (lifetime)",
    "renewed": "now exempt (subscriber)",
}


@pytest.mark.parametrize("change", CHANGES)
def test_delete_candidate_changed_before_the_recheck_keeps_account_and_data(
    race_run: RaceRun, change: str
):
    user_id = f"delete-recheck-{change}"
    row = _keeps_account(race_run, user_id)
    assert row["step"] == "recheck"
    assert EXPECTED_AT_RECHECK[change] in row["error"]
    _keeps_all_data(race_run, user_id)


@pytest.mark.parametrize("timing", ["files", "final-delete"])
@pytest.mark.parametrize("change", CHANGES)
def test_delete_candidate_changed_during_the_cascade_keeps_account_and_gets_data_back(
    race_run: RaceRun, change: str, timing: str
):
    user_id = f"delete-{timing}-{change}"
    row = _keeps_account(race_run, user_id, outcome="kept")
    assert row["step"] == "user"
    assert "kept" in row["error"]
    _keeps_all_data(race_run, user_id, address_archived=True)


@pytest.mark.parametrize("timing", NOTIFY_TIMINGS)
@pytest.mark.parametrize("change", [c for c in CHANGES if c != "renewed"])
def test_notify_candidate_changed_before_the_warning_gets_no_email(
    race_run: RaceRun, change: str, timing: str
):
    user_id = f"notify-{timing}-{change}"
    run = race_run.run
    assert run.before.users[user_id]["email"]["S"] not in run.after.sent_to
    row = _keeps_account(race_run, user_id)
    assert row["step"] == timing
    if timing == "recheck":
        assert EXPECTED_AT_RECHECK[change] in row["error"]
    _keeps_all_data(race_run, user_id)

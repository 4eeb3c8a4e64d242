"""Stores of kind `list` beside the app's own scoreboards, through the whole cascade against
moto: a table whose named items are keyed by another attribute than `id`, and a table of
composite key without `items` (every item, found by one Scan a run). The users' entries go,
every other entry keeps its place and fields; recorded with item and position, counted in the
ledger by name, proved gone, given back to a user who came back, restored where nothing took
their place, purged with the manifest, and an entry written late removed and proved by the
next run."""

from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.actions.outcomes import DELETED, KEPT
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_calls import record_params
from tests.support.aws_state import table_items
from tests.support.cascade import outcome_of, run_cascade
from tests.support.data_maps import create_list_stores, use_app_map_with
from tests.support.items import delete_candidate, n, s
from tests.support.recovery_world import (
    assert_deleted_and_proved,
    assert_left_over,
    comes_back,
    comes_back_mid_cascade,
    manifests,
    next_run_proves,
    purge_after_the_window,
    restore,
    seeded,
)

EXTRA = """
  leaderboards:
    table: leaderboards
    items: [daily, weekly]
    list: players
    list_key: playerId
    action: remove_list_entries
  teams:
    table: teams
    list: members
    list_key: userId
"""
COUNTS = {"files": 3, "features": 2, "scoreboards": 3, "leaderboards": 3, "teams": 2}


def player(user: str, score: int) -> dict[str, Any]:
    return {"M": {"playerId": s(user), "score": n(score), "tags": {"L": [s("x"), s("y")]}}}


def member(user: str, role: str = "member") -> dict[str, Any]:
    return {"M": {"userId": s(user), "role": s(role)}}


def board(name: str, players: list[dict[str, Any]]) -> dict[str, Any]:
    return {"board": s(name), "players": {"L": players}}


def team(org: str, team_id: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    return {"orgId": s(org), "teamId": s(team_id), "members": {"L": members}, "name": s(team_id)}


BOARDS = [
    board("daily", [player("a", 9), player("u1", 8), player("b", 7), player("u1", 1)]),
    board("weekly", [player("u1", 30), player("c", 20)]),
    board("monthly", [player("u1", 99)]),  # not a named item: left alone
]
TEAMS = [
    team("org1", "t1", [member("x"), member("u1", "owner"), member("y")]),
    team("org1", "t2", [member("u1x"), member("z")]),  # a neighbour whose id extends the user's
    team("org2", "t1", [member("u10"), member("u1")]),
    *(team("org3", f"t{i}", [member("w")]) for i in range(5)),
]


@pytest.fixture
def world(aws, monkeypatch, tmp_path: Path):
    clients, settings = aws
    use_app_map_with(monkeypatch, tmp_path, EXTRA)
    db = clients.dynamodb
    create_list_stores(db)
    put_items(db, "leaderboards", BOARDS)
    put_items(db, "teams", TEAMS)
    return clients, settings


def table(clients: Any, name: str) -> list[dict[str, Any]]:
    return table_items(clients.dynamodb, name)


def members(clients: Any, org: str, team_id: str) -> list[dict[str, Any]]:
    key = {"orgId": s(org), "teamId": s(team_id)}
    return clients.dynamodb.get_item(TableName="teams", Key=key)["Item"]["members"]["L"]


def players(clients: Any, name: str) -> list[dict[str, Any]]:
    key = {"board": s(name)}
    return clients.dynamodb.get_item(TableName="leaderboards", Key=key)["Item"]["players"]["L"]


@pytest.mark.parametrize("window", [30, 0])
def test_every_entry_of_the_user_goes_the_others_keep_order_and_fields(world, window) -> None:
    clients, settings, as_of = seeded(world, window)

    outcomes = run_cascade(clients, settings, as_of, ["u1"])

    assert_deleted_and_proved(clients, settings, outcomes, COUNTS)
    assert players(clients, "daily") == [player("a", 9), player("b", 7)]
    assert players(clients, "weekly") == [player("c", 20)]
    assert players(clients, "monthly") == [player("u1", 99)]
    assert members(clients, "org1", "t1") == [member("x"), member("y")]
    assert members(clients, "org1", "t2") == [member("u1x"), member("z")]
    assert members(clients, "org2", "t1") == [member("u10")]


def test_the_table_without_items_is_scanned_once_and_only_the_items_holding_a_user_are_read(
    world,
) -> None:
    clients, settings, as_of = seeded(world, 30)
    put_items(clients.dynamodb, settings.users_table, [delete_candidate("u2", as_of)])
    put_items(clients.dynamodb, "teams", [team("org4", "t1", [member("u2"), member("v")])])
    calls = {
        name: record_params(clients.dynamodb, name)
        for name in ("Scan", "BatchGetItem", "GetItem", "UpdateItem")
    }

    outcomes = run_cascade(clients, settings, as_of, ["u1", "u2"])

    assert [outcome_of(outcomes, u)["outcome"] for u in ("u1", "u2")] == [DELETED] * 2
    assert [c["TableName"] for c in calls["Scan"]].count("teams") == 1
    [scan] = [c for c in calls["Scan"] if c["TableName"] == "teams"]
    assert sorted(scan["ExpressionAttributeNames"].values()) == ["members", "orgId", "teamId"]
    reads = [
        c["RequestItems"]["teams"] for c in calls["BatchGetItem"] if "teams" in c["RequestItems"]
    ]
    # One batched read of the three teams holding a candidate before the removal, one to prove.
    assert len(reads) == 2 and all(r["ConsistentRead"] for r in reads)
    assert all(len(r["Keys"]) == 3 for r in reads)
    named = [c["Key"] for c in calls["GetItem"] if c["TableName"] == "leaderboards"]
    assert len(named) == 4 and all(c["ConsistentRead"] for c in calls["GetItem"])
    assert [u["TableName"] for u in calls["UpdateItem"]].count("teams") == 3
    assert members(clients, "org4", "t1") == [member("v")]


def test_a_restore_puts_each_entry_back_at_its_position_where_nothing_took_its_place(
    world,
) -> None:
    clients, settings, as_of = seeded(world, 30)
    boards, teams = table(clients, "leaderboards"), table(clients, "teams")
    run_cascade(clients, settings, as_of, ["u1"])
    # Since the deletion the app put the user in one team again, and a player on a board.
    again = [member("u10"), member("u1", "rejoined")]
    clients.dynamodb.put_item(TableName="teams", Item=team("org2", "t1", again))
    daily = [player("a", 9), player("new", 3), player("b", 7)]
    clients.dynamodb.put_item(TableName="leaderboards", Item=board("daily", daily))

    assert restore(clients, settings, "u1", dry_run=True)["restored"]["teams"] == 2
    assert table(clients, "teams") != teams  # a dry run writes nothing
    summary = restore(clients, settings, "u1")

    assert summary["status"] == "restored"
    assert (summary["restored"]["leaderboards"], summary["restored"]["teams"]) == (3, 1)
    assert (summary["skipped"]["leaderboards"], summary["skipped"]["teams"]) == (0, 1)
    [why] = summary["skipped"]["why"]["teams"]
    assert '"org2"' in why and "already holds an entry of the user" in why
    assert members(clients, "org1", "t1") == [member("x"), member("u1", "owner"), member("y")]
    assert members(clients, "org2", "t1") == again
    # At their recorded positions in the board as it is now.
    assert players(clients, "daily") == [
        player("a", 9),
        player("u1", 8),
        player("new", 3),
        player("u1", 1),
        player("b", 7),
    ]
    assert players(clients, "weekly") == [player("u1", 30), player("c", 20)]
    assert table(clients, "leaderboards") != boards  # the app's own change is kept


@pytest.mark.parametrize("window", [30, 0])
def test_a_user_who_comes_back_mid_cascade_gets_every_entry_back(world, window) -> None:
    clients, settings, as_of = seeded(world, window)

    comes_back_mid_cascade(clients, settings, as_of, "leaderboards", "teams")

    for original in TEAMS:
        assert (
            members(clients, original["orgId"]["S"], original["teamId"]["S"])
            == (original["members"]["L"])
        )


def test_a_list_that_changes_before_the_removal_is_read_again_and_the_new_position_recorded(
    world,
) -> None:
    """Someone joins the team ahead of the user between the batch's read and its removal: the
    removal is refused, the team read again, where the entry now is recorded, and the entry
    removed; the user then comes back and gets it back beside the same neighbours."""
    clients, settings, as_of = seeded(world, 30)
    done: list[bool] = []

    def someone_joins(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == "teams" and not done:
            done.append(True)
            joined = [member("first"), member("x"), member("u1", "owner"), member("y")]
            clients.dynamodb.put_item(TableName="teams", Item=team("org1", "t1", joined))

    event = "before-parameter-build.dynamodb.UpdateItem"
    clients.dynamodb.meta.events.register(event, someone_joins)
    try:
        outcomes = run_cascade(
            clients,
            settings,
            as_of,
            ["u1"],
            before_final_delete=lambda: comes_back(clients, settings),
        )
    finally:
        clients.dynamodb.meta.events.unregister(event, someone_joins)

    assert done and outcome_of(outcomes, "u1")["outcome"] == KEPT
    assert members(clients, "org1", "t1") == [
        member("first"),
        member("x"),
        member("u1", "owner"),
        member("y"),
    ]
    assert len(manifests(clients, settings)) == 2  # the manifest and the new position's


def test_the_purge_removes_the_manifest_that_holds_the_entries(world) -> None:
    clients, settings, as_of = seeded(world, 30)
    run_cascade(clients, settings, as_of, ["u1"])
    teams = table(clients, "teams")

    purge_after_the_window(clients, settings)

    assert table(clients, "teams") == teams


@pytest.mark.parametrize("window", [30, 0])
def test_an_entry_written_after_the_removal_fails_the_user_and_the_next_run_removes_it(
    world, window
) -> None:
    clients, settings, as_of = seeded(world, window)
    back = [member("x"), member("y"), member("u1", "written late")]
    sent: list[dict[str, Any]] = []
    done: list[bool] = []

    def app_writes(**_: Any) -> None:
        if sent[-1].get("Key", {}).get("orgId") == s("org1") and not done:
            done.append(True)
            clients.dynamodb.put_item(TableName="teams", Item=team("org1", "t1", back))

    # Right after the removal from team org1/t1, before the user item goes: the proof finds it.
    events = clients.dynamodb.meta.events
    hooks = {
        "before-parameter-build.dynamodb.UpdateItem": lambda params, **_: sent.append(params),
        "after-call.dynamodb.UpdateItem": app_writes,
    }
    for event, hook in hooks.items():
        events.register(event, hook)
    try:
        outcomes = run_cascade(clients, settings, as_of, ["u1"])
    finally:
        for event, hook in hooks.items():
            events.unregister(event, hook)

    assert_left_over(clients, settings, outcomes, "leftover in teams")

    next_run_proves(clients, settings, as_of, COUNTS)

    assert members(clients, "org1", "t1") == [member("x"), member("y")]
    assert members(clients, "org2", "t1") == [member("u10")]

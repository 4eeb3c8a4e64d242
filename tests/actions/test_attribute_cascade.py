"""Stores of kind `attribute` other than the app's own features, through the whole cascade
against moto: drafts deleted whole (a table with a composite key) and the `likedBy` attribute
removed from likes. Found by the run's one Scan of each table, read again by key before
anything goes, acted on only while the attribute still names the user, recorded, counted in the
ledger by name, proved gone, given back to a user who came back, restored where nothing took
their place, purged with the manifest, and an item that came back removed by the next run."""

from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.actions.cascade import RunReferences, delete_accounts
from cleanup_pipeline.actions.outcomes import DELETED, FAILED
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_calls import record_params
from tests.support.aws_state import ordered, table_items
from tests.support.cascade import cascade_context, outcome_of, read_references, run_cascade
from tests.support.data_maps import create_attribute_stores, use_app_map_with
from tests.support.items import delete_candidate, s
from tests.support.recovery_world import (
    assert_deleted_and_proved,
    assert_left_over,
    comes_back_mid_cascade,
    next_run_proves,
    purge_after_the_window,
    restore,
    seeded,
)

EXTRA = """
  drafts:
    table: drafts
    attribute: authorId
    action: delete_items
  likes:
    table: likes
    attribute: likedBy
    action: remove_attribute
"""
COUNTS = {"files": 3, "features": 2, "scoreboards": 3, "drafts": 2, "likes": 2}


def draft(space: str, draft_id: str, author: str, text: str = "words") -> dict[str, Any]:
    return {"space": s(space), "draftId": s(draft_id), "authorId": s(author), "text": s(text)}


def like(like_id: str, by: str | None) -> dict[str, Any]:
    item = {"id": s(like_id), "post": s(f"post-{like_id}")}
    return item if by is None else {**item, "likedBy": s(by)}


def key(item: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: item[name] for name in names}


D1, D2 = draft("a", "d1", "u1"), draft("b", "d1", "u1")  # same draft id, other space
OTHERS = [draft("a", "d2", "u1x"), draft("b", "d3", "u10"), {**draft("c", "d4", "u2")}]
LIKES = [like("l1", "u1"), like("l2", "u1"), like("l3", "u10"), like("l4", None)]


@pytest.fixture
def world(aws, monkeypatch, tmp_path: Path):
    clients, settings = aws
    use_app_map_with(monkeypatch, tmp_path, EXTRA)
    db = clients.dynamodb
    create_attribute_stores(db)
    put_items(db, "drafts", [D1, D2, *OTHERS])
    put_items(db, "likes", LIKES)
    return clients, settings


def table(clients: Any, name: str) -> list[dict[str, Any]]:
    return table_items(clients.dynamodb, name)


@pytest.mark.parametrize("window", [30, 0])
def test_items_naming_the_user_go_whole_or_lose_the_attribute_counted_and_proved(
    world, window
) -> None:
    clients, settings, as_of = seeded(world, window)
    scans = record_params(clients.dynamodb, "Scan")

    outcomes = run_cascade(clients, settings, as_of, ["u1"])
    scanned = list(scans)

    assert_deleted_and_proved(clients, settings, outcomes, COUNTS)
    assert table(clients, "drafts") == ordered(OTHERS)
    # The likes stay, without the user's name; every other attribute is kept.
    assert table(clients, "likes") == ordered(
        [like("l1", None), like("l2", None), like("l3", "u10"), like("l4", None)]
    )
    # One Scan of each table for the run, reading only the key and the attribute.
    drafts, likes = [next(p for p in scanned if p["TableName"] == t) for t in ("drafts", "likes")]
    assert sorted(p["TableName"] for p in scanned) == ["drafts", "features", "likes"]
    assert sorted(drafts["ExpressionAttributeNames"].values()) == ["authorId", "draftId", "space"]
    assert sorted(likes["ExpressionAttributeNames"].values()) == ["id", "likedBy"]


def test_an_item_that_changes_hands_after_the_scan_is_left_to_its_new_owner(world) -> None:
    """d1 names u2 by the time the batch reads it; d2 and l1 change between that read and
    their removal: none of them is touched, and the proof still verifies u1."""
    clients, settings, as_of = seeded(world, 30)
    db = clients.dynamodb
    moved = {
        "drafts": (key(D2, "space", "draftId"), "authorId"),
        "likes": ({"id": s("l1")}, "likedBy"),
    }

    def give(table_name: str, item_key: dict[str, Any], attribute: str) -> None:
        db.update_item(
            TableName=table_name,
            Key=item_key,
            UpdateExpression="SET #a = :u",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":u": s("u2")},
        )

    def before_write(params: dict[str, Any], **_: Any) -> None:
        name = params["TableName"]
        if name in moved and moved[name][0] == params["Key"]:
            give(name, *moved.pop(name))

    events = db.meta.events
    writes = ("DeleteItem", "UpdateItem")
    refs = read_references(clients, settings, ["u1"])
    give("drafts", key(D1, "space", "draftId"), "authorId")  # after the run's scan
    for name in writes:
        events.register(f"provide-client-params.dynamodb.{name}", before_write)
    try:
        ctx = cascade_context(clients, settings, as_of, refs=refs)
        outcomes = delete_accounts(ctx, ["u1"], refs.features)
    finally:
        for name in writes:
            events.unregister(f"provide-client-params.dynamodb.{name}", before_write)

    assert moved == {}  # both changes were made before the writes they raced
    assert outcome_of(outcomes, "u1")["outcome"] == DELETED
    assert outcomes.verified == 1
    assert table(clients, "drafts") == ordered(
        [{**D1, "authorId": s("u2")}, {**D2, "authorId": s("u2")}, *OTHERS]
    )
    assert table(clients, "likes") == ordered(
        [like("l1", "u2"), like("l2", None), like("l3", "u10"), like("l4", None)]
    )
    # d1 was not recorded at all; what changed hands later is never put back over its owner.
    summary = restore(clients, settings, "u1")
    assert summary["restored"]["drafts"] == 0 and summary["skipped"]["drafts"] == 1
    assert summary["restored"]["likes"] == 1 and summary["skipped"]["likes"] == 1
    assert like("l1", "u2") in table(clients, "likes")
    assert like("l2", "u1") in table(clients, "likes")


def test_a_batch_without_the_runs_scan_loses_nothing(world) -> None:
    """Gathering nothing would let the user item go with the data left: the user fails."""
    clients, settings, as_of = seeded(world, 30)
    refs = read_references(clients, settings, ["u1"])
    partial = RunReferences(features=refs.features, attributes={"likes": refs.attributes["likes"]})

    outcomes = delete_accounts(
        cascade_context(clients, settings, as_of, refs=partial), ["u1"], partial.features
    )

    row = outcome_of(outcomes, "u1")
    assert (row["outcome"], row["step"]) == (FAILED, "drafts")
    assert "the run's scan of drafts is missing" in row["error"]
    assert table(clients, "drafts") == ordered([D1, D2, *OTHERS])
    assert table(clients, "likes") == ordered(LIKES)


def test_a_restore_puts_items_and_attributes_back_where_nothing_took_their_place(world) -> None:
    clients, settings, as_of = seeded(world, 30)
    run_cascade(clients, settings, as_of, ["u1"])
    # Written by the app since the deletion: a draft with d2's key, l2 liked by someone else.
    taken = draft("b", "d1", "u5", text="new")
    put_items(clients.dynamodb, "drafts", [taken])
    put_items(clients.dynamodb, "likes", [like("l2", "u5")])

    planned = restore(clients, settings, "u1", dry_run=True)
    assert (planned["restored"]["drafts"], planned["restored"]["likes"]) == (2, 2)
    assert table(clients, "drafts") == ordered([taken, *OTHERS])  # a dry run writes nothing
    summary = restore(clients, settings, "u1")

    assert summary["status"] == "restored"
    assert (summary["restored"]["drafts"], summary["restored"]["likes"]) == (1, 1)
    assert (summary["skipped"]["drafts"], summary["skipped"]["likes"]) == (1, 1)
    why = summary["skipped"]["why"]
    assert "another item took its place" in why["drafts"][0]
    assert "another value took its place" in why["likes"][0]
    assert table(clients, "drafts") == ordered([D1, taken, *OTHERS])  # whole
    assert table(clients, "likes") == ordered(
        [like("l1", "u1"), like("l2", "u5"), like("l3", "u10"), like("l4", None)]
    )
    again = restore(clients, settings, "u1")  # restoring twice changes nothing
    assert again["status"] == "refused"
    assert table(clients, "drafts") == ordered([D1, taken, *OTHERS])


@pytest.mark.parametrize("window", [30, 0])
def test_a_user_who_comes_back_mid_cascade_gets_every_item_and_attribute_back(
    world, window
) -> None:
    clients, settings, as_of = seeded(world, window)

    comes_back_mid_cascade(clients, settings, as_of)

    assert table(clients, "drafts") == ordered([D1, D2, *OTHERS])
    assert table(clients, "likes") == ordered(LIKES)


def test_the_purge_removes_the_manifest_that_holds_the_records(world) -> None:
    clients, settings, as_of = seeded(world, 30)
    run_cascade(clients, settings, as_of, ["u1"])
    after = {name: table(clients, name) for name in ("drafts", "likes")}

    purge_after_the_window(clients, settings)

    assert {name: table(clients, name) for name in after} == after
    assert restore(clients, settings, "u1")["status"] == "refused"


@pytest.mark.parametrize("window", [30, 0])
def test_an_item_that_comes_back_fails_the_user_and_the_next_run_removes_it(world, window) -> None:
    clients, settings, as_of = seeded(world, window)
    db = clients.dynamodb
    calling: list[tuple[str, dict[str, Any]]] = []
    came_back: dict[str, dict[str, Any]] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        calling.append((params["TableName"], params["Key"]))

    def app_writes(**_: Any) -> None:
        name, item_key = calling.pop()
        if name in ("drafts", "likes") and name not in came_back:
            # Right after the first removal there, before the user item goes: the same item.
            own = [D1, D2] if name == "drafts" else LIKES
            came_back[name] = next(i for i in own if key(i, *item_key) == item_key)
            put_items(db, name, [came_back[name]])

    hooks = [
        (f"{when}.dynamodb.{name}", hook)
        for name in ("DeleteItem", "UpdateItem")
        for when, hook in (("provide-client-params", remember), ("after-call", app_writes))
    ]
    for event, hook in hooks:
        db.meta.events.register(event, hook)
    try:
        outcomes = run_cascade(clients, settings, as_of, ["u1"])
    finally:
        for event, hook in hooks:
            db.meta.events.unregister(event, hook)

    assert_left_over(clients, settings, outcomes, "leftover in drafts, likes")

    next_run_proves(clients, settings, as_of, COUNTS)

    assert table(clients, "drafts") == ordered(OTHERS)
    assert [i for i in table(clients, "likes") if "likedBy" in i] == [like("l3", "u10")]


def test_reads_stay_one_scan_per_store_and_batched_reads_for_the_deleted_users(world) -> None:
    clients, settings, as_of = seeded(world, 30)
    others = [delete_candidate(u, as_of) for u in ("u2", "u3")]
    put_items(clients.dynamodb, settings.users_table, others)
    put_items(clients.dynamodb, "likes", [like(f"m{n}", u) for u in ("u2", "u3") for n in (1, 2)])
    calls = {
        name: record_params(clients.dynamodb, name)
        for name in ("Scan", "BatchGetItem", "DescribeTable")
    }

    outcomes = run_cascade(clients, settings, as_of, ["u1", "u2", "u3"])
    calls = {name: list(made) for name, made in calls.items()}

    assert [outcome_of(outcomes, u)["outcome"] for u in ("u1", "u2", "u3")] == [DELETED] * 3
    assert sorted(p["TableName"] for p in calls["Scan"]) == ["drafts", "features", "likes"]
    assert sorted(d["TableName"] for d in calls["DescribeTable"]) == ["drafts", "likes"]
    read = [t for p in calls["BatchGetItem"] for t in p["RequestItems"]]
    # Per store and batch: one read to gather, one to prove (u2 and u3 have no drafts).
    assert (read.count("drafts"), read.count("likes")) == (2, 2)
    assert [i for i in table(clients, "likes") if "likedBy" in i] == [like("l3", "u10")]


def test_the_runs_scan_reads_every_page_and_keeps_only_the_candidates_keys(world) -> None:
    clients, settings = world
    # About 1.2 MB of likes: DynamoDB answers a Scan in pages of at most 1 MB.
    many = [{**like(f"m{n:03d}", "u2"), "blob": s("x" * 4_000)} for n in range(300)]
    put_items(clients.dynamodb, "likes", many)
    scans = record_params(clients.dynamodb, "Scan")

    found = read_references(clients, settings, ["u1", "u2", "u3"]).attributes

    assert [p["TableName"] for p in scans].count("likes") == 2
    assert sorted(found) == ["drafts", "likes"]
    assert sorted(k["id"]["S"] for k in found["likes"]["u2"]) == [i["id"]["S"] for i in many]
    assert sorted(found["likes"]["u1"], key=str) == [{"id": s("l1")}, {"id": s("l2")}]
    assert "u10" not in found["likes"] and "u3" not in found["likes"]
    assert sorted(found["drafts"]["u1"], key=str) == sorted(
        [key(D1, "space", "draftId"), key(D2, "space", "draftId")], key=str
    )

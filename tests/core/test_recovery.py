"""The pure restore plan: refusals, skipped parts with why, positions clamped."""

from cleanup_pipeline.core.data_map import parse_data_map
from cleanup_pipeline.core.recovery import (
    ArchivedEntry,
    ArchivedFile,
    ArchivedUser,
    CurrentState,
    DeletionRecord,
    JournalEntry,
    LedgerState,
    Manifest,
    ObjectVersion,
    insert_entries,
    merge_deletion,
    plan_put_back,
    plan_restore,
    put_by_restore,
    removed_by_store,
    restoring_record,
)
from cleanup_pipeline.core.settings import load_settings

ITEM = {"id": {"S": "u1"}, "lastVisitAt": {"N": "1"}, "accountDeletionEmailSentAt": {"N": "5"}}
DELETED = {"event": "deleted", "deletion_key": "5", "at": 10, "run_id": "r"}


def entry(user: str) -> dict:
    return {"M": {"id": {"S": user}}}


def test_refusals_say_why_and_plan_nothing() -> None:
    record = DeletionRecord("u1", "5", ITEM, [ArchivedFile("u1/a", "v1")])
    cases = {
        "never deleted": (LedgerState([]), None, CurrentState(False)),
        "already restored": (
            LedgerState(
                [DELETED, {"event": "restored", "deletion_key": "5", "at": 11, "run_id": "x"}]
            ),
            "5",
            CurrentState(False),
        ),
        "purged": (
            LedgerState(
                [DELETED, {"event": "purged", "deletion_key": "5", "at": 11, "run_id": "x"}]
            ),
            "5",
            CurrentState(False),
        ),
        "exists": (LedgerState([DELETED]), "5", CurrentState(True)),
    }
    for words, (ledger, key, state) in cases.items():
        plan = plan_restore("u1", ledger, key, record, state, 100, dry_run=False)
        assert plan.status == "refused" and words in plan.reason
        assert plan.markers == [] and plan.item is None and plan.board_inserts == {}
        assert plan.summary()["restored"] == {
            "item": 0,
            "files": 0,
            "features": 0,
            "scoreboards": 0,
        }


def test_markers_above_the_recorded_version_go_and_newer_versions_are_kept() -> None:
    versions = [
        ObjectVersion("u1/a", "m1", True, True, 3.0),
        ObjectVersion("u1/a", "v1", False, False, 1.0),
        ObjectVersion("u1/b", "v3", True, False, 4.0),
        ObjectVersion("u1/b", "v2", False, False, 2.0),
    ]
    record = DeletionRecord(
        "u1",
        "5",
        ITEM,
        [ArchivedFile("u1/a", "v1"), ArchivedFile("u1/b", "v2"), ArchivedFile("u1/c", "v9")],
    )
    plan = plan_restore(
        "u1", LedgerState([DELETED]), "5", record, CurrentState(False, versions), 100, False
    )
    assert plan.markers == [("u1/a", "m1")]
    assert (plan.restored["files"], plan.skipped["files"]) == (1, 2)
    assert plan.item == {"id": {"S": "u1"}, "lastVisitAt": {"N": "100"}}


def test_entries_go_back_in_order_with_positions_clamped() -> None:
    entries = [ArchivedEntry("week", 5, entry("u1")), ArchivedEntry("week", 0, entry("u1"))]
    assert insert_entries([entry("a"), entry("b")], entries) == [
        entry("u1"),
        entry("a"),
        entry("b"),
        entry("u1"),
    ]


def test_several_attempts_of_one_deletion_merge_without_duplicates() -> None:
    first = Manifest(
        "r1",
        0,
        1,
        30,
        [
            ArchivedUser(
                "u1",
                "5",
                ITEM,
                [ArchivedFile("u1/a", "v1")],
                ["f1"],
                [ArchivedEntry("week", 3, entry("u1"))],
            )
        ],
    )
    second = Manifest(
        "r2",
        0,
        2,
        30,
        [
            ArchivedUser("u1", "5", ITEM, [], ["f1"], [ArchivedEntry("week", 1, entry("u1"))]),
            ArchivedUser("u2", "7", ITEM),
        ],
    )
    other_episode = Manifest(
        "r0", 0, 0, 30, [ArchivedUser("u1", "2", ITEM, [ArchivedFile("u1/z", "v0")])]
    )
    merged = merge_deletion("u1", "5", [second, other_episode, first])
    assert merged.files == [ArchivedFile("u1/a", "v1")]
    assert merged.features == ["f1"]
    assert merged.scoreboard_entries == [ArchivedEntry("week", 1, entry("u1"))]


def session(user: str, started: str) -> dict:
    return {"userId": {"S": user}, "startedAt": {"S": started}, "device": {"S": "phone"}}


def test_records_of_any_store_survive_the_manifest_and_merge_once_per_record() -> None:
    first = ArchivedUser("u1", "5", ITEM, stores={"sessions": [session("u1", "a")]})
    again = ArchivedUser(
        "u1", "5", stores={"sessions": [session("u1", "b"), session("u1", "a")], "notes": []}
    )
    manifests = [
        Manifest.from_json(Manifest("r", 0, at, 30, [user]).to_json())
        for at, user in ((1, first), (2, again))
    ]
    merged = merge_deletion("u1", "5", manifests)
    assert merged.stores == {
        "sessions": [session("u1", "a"), session("u1", "b")],
        "notes": [],
    }


def test_counts_of_other_stores_come_from_the_journal_by_name_the_largest_attempt_winning() -> None:
    settings = load_settings()
    data_map = parse_data_map(
        """
        stores:
          files: {s3_prefix: "{id}/"}
          sessions: {table: sessions, partition_key: userId}
          avatars: {bucket: avatars, s3_prefix: "a/{id}/"}
        """,
        settings,
        {},
    )
    later = JournalEntry("u1", "5", files=3, stores={"sessions": 2, "avatars": 0})
    earlier = JournalEntry("u1", "5", files=1, stores={"sessions": 4})
    entry_ = later.merged(earlier)
    assert entry_.stores == {"avatars": 0, "sessions": 4}
    assert removed_by_store(entry_, data_map) == {"files": 3, "sessions": 4, "avatars": 0}
    assert JournalEntry(**entry_.__dict__) == entry_  # as the journal file keeps it


def test_entries_given_back_beside_the_neighbours_they_had_whoever_else_left() -> None:
    """The board as a deletion batch read it: two entries of `back`, the others of users the
    same batch deleted (d1, d2) or left (a, b), and one the app added meanwhile (new)."""
    as_read = [entry("d1"), entry("back"), entry("a"), entry("d2"), entry("back"), entry("b")]
    now = [entry("new"), entry("a"), entry("b")]
    recorded = [ArchivedEntry("week", 1, entry("back")), ArchivedEntry("week", 4, entry("back"))]
    record = DeletionRecord("back", "5", None, [], [], recorded)
    state = CurrentState(True, boards={"week": now})

    plan = plan_put_back("back", record, state, {"week": as_read})

    board = insert_entries(now, plan.board_inserts["week"])
    assert board == [entry("new"), entry("back"), entry("a"), entry("back"), entry("b")]
    assert plan.restored["scoreboards"] == 2
    # Without the board as read (a later run gives back what a dead run hid): as a restore.
    plain = plan_put_back("back", record, state)
    assert [e.position for e in plain.board_inserts["week"]] == [1, 4]


def test_put_back_names_files_of_which_no_version_is_left() -> None:
    versions = [
        ObjectVersion("u1/a", "m1", True, True, 3.0),
        ObjectVersion("u1/a", "v1", False, False, 1.0),
    ]
    record = DeletionRecord(
        "u1", "5", None, [ArchivedFile("u1/a", "v1"), ArchivedFile("u1/b", "null")]
    )

    plan = plan_put_back("u1", record, CurrentState(True, versions=versions))

    assert plan.markers == [("u1/a", "m1")] and plan.lost == ["u1/b"]
    assert plan.item is None and plan.restored["item"] == 0


def test_an_item_found_is_the_restores_only_when_the_record_describes_it() -> None:
    """The record written before the put recognises the item put back, whatever order DynamoDB
    returns set members in and however often the person came back since; nothing else."""
    record = DeletionRecord("u1", "5", {**ITEM, "tags": {"SS": ["a", "b"]}})
    plan = plan_restore("u1", LedgerState([DELETED]), "5", record, CurrentState(False), 100, False)
    assert plan.item is not None
    written = restoring_record(plan, "first", 100)
    assert "@" not in str(written) and "tags" not in str(written)  # a digest, no content
    put_back = dict(plan.item)
    assert put_by_restore(written, put_back)
    assert put_by_restore(written, {**put_back, "tags": {"SS": ["b", "a"]}})
    assert put_by_restore(written, {**put_back, "lastVisitAt": {"N": "250"}})  # came back
    for other in (
        {**put_back, "lastVisitAt": {"N": "99"}},  # older than the restore: not its item
        {**put_back, "tags": {"SS": ["a"]}},
        {**put_back, "plan": {"S": "pro"}},
        {"id": {"S": "u1"}, "lastVisitAt": {"N": "300"}},  # an account created anew
    ):
        assert not put_by_restore(written, other), other
        state = CurrentState(True, item=other, interrupted=written)
        refused = plan_restore("u1", LedgerState([DELETED]), "5", None, state, 400, False)
        assert refused.status == "refused" and "exists" in refused.reason
    assert not put_by_restore(None, put_back)

    state = CurrentState(True, item=put_back, interrupted=written)
    finished = plan_restore("u1", LedgerState([DELETED]), "5", None, state, 400, False)
    assert finished.status == "restored" and "interrupted restore" in finished.reason
    assert finished.interrupted == written and finished.item is None
    assert finished.summary()["restored"] == plan.summary()["restored"]

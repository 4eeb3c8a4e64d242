"""What a restore puts back (SPEC §9), decided from the archive and the current state alone.

The plan is pure data; `actions/restore.py` reads the inputs and applies it. A restore that was
interrupted is planned again from what it left: files already current, features already naming
the user and boards already holding the recorded entries count as restored and are not written
again, and the user item (written last) is still absent, so the second run goes through.

A restore that died after putting the item back left a record of it in the archive (written just
before the put): when the item found is the one that record describes, the next restore only
records what the first one did. An account created anew under that id is not: it is refused as
any existing account is.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cleanup_pipeline.core.deletion_record import DeletionRecord, LedgerState
from cleanup_pipeline.core.object_versions import ObjectVersion, by_key
from cleanup_pipeline.core.recovery_records import PURGED, SENT_AT, ArchivedEntry

KINDS = ("item", "files", "features", "scoreboards")
RESTORED, REFUSED, DRY_RUN = "restored", "refused", "dry_run"
# Bookkeeping of a warning in flight (see aws/users_table.py): never part of a restored account.
_NOT_RESTORED = (SENT_AT, "accountDeletionEmailClaimedBy", "accountDeletionEmailClaimedAt")

Wire = dict[str, Any]


@dataclass(frozen=True)
class CurrentState:
    """What exists now. `features` maps each recorded feature that still exists to its
    `proposedBy` (None when absent); `boards` maps each recorded board to its `users` list,
    None when the board no longer exists."""

    item_exists: bool
    versions: list[ObjectVersion] = field(default_factory=list)
    features: dict[str, str | None] = field(default_factory=dict)
    boards: dict[str, list[Wire] | None] = field(default_factory=dict)
    # The user item found, and the record a restore of this deletion left before putting the
    # item back (see `restoring_record`), when there are.
    item: Wire | None = None
    interrupted: dict[str, Any] | None = None


@dataclass
class RestorePlan:
    user_id: str
    status: str
    reason: str
    deletion_key: str | None = None
    markers: list[tuple[str, str]] = field(default_factory=list)
    link_features: list[str] = field(default_factory=list)
    board_inserts: dict[str, list[ArchivedEntry]] = field(default_factory=dict)
    item: Wire | None = None
    restored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    why: dict[str, list[str]] = field(default_factory=dict)
    # Keys of recorded files of which no version is left: they cannot come back.
    lost: list[str] = field(default_factory=list)
    # The record of the interrupted restore this one finishes: nothing to write but its event.
    interrupted: dict[str, Any] | None = None

    def skip(self, kind: str, count: int, why: str) -> None:
        self.skipped[kind] += count
        self.why.setdefault(kind, []).append(why)

    def summary(self) -> dict[str, Any]:
        """The JSON object the restore prints last."""
        return {
            "user_id": self.user_id,
            "status": self.status,
            "reason": self.reason,
            "restored": dict(self.restored),
            "skipped": {**self.skipped, "why": dict(self.why)},
        }


def refusal(
    user_id: str, ledger: LedgerState, deletion_key: str | None, state: CurrentState
) -> str | None:
    """Why this restore must write nothing at all, or None when it may proceed."""
    if deletion_key is None:
        return "never deleted: the ledger records no deletion of this user; nothing to restore"
    closed = ledger.closed_by(deletion_key)
    if closed is not None and closed["event"] == PURGED:
        return f"purged at {closed['at']}: the restore window of the latest deletion ended"
    if closed is not None:
        return f"already restored at {closed['at']} (run {closed['run_id']}); nothing to do"
    if state.item_exists and not put_by_restore(state.interrupted, state.item):
        return f"an account with id {user_id!r} exists: a restore never overwrites an account"
    return None


def _canonical_value(value: Wire) -> Any:
    """A wire value in one form, whatever order DynamoDB returns the members of a set in."""
    ((kind, inner),) = value.items()
    if kind in ("SS", "NS", "BS"):
        return {kind: sorted(inner)}
    if kind == "L":
        return {kind: [_canonical_value(v) for v in inner]}
    if kind == "M":
        return {kind: {name: _canonical_value(v) for name, v in inner.items()}}
    return value


def item_digest(item: Wire) -> str:
    """SHA-256 of every attribute of a user item but `lastVisitAt`."""
    kept = {name: _canonical_value(v) for name, v in item.items() if name != "lastVisitAt"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def _last_visit(item: Wire) -> float | None:
    raw = item.get("lastVisitAt", {}).get("N")
    return None if raw is None else float(raw)


def restoring_record(plan: RestorePlan, run_id: str, at: int) -> dict[str, Any]:
    """What a restore writes to the archive just before it puts the item back: enough for a
    later restore to recognise that item (its attributes by digest, no content) and to report
    what this one put back."""
    assert plan.item is not None
    return {
        "user_id": plan.user_id,
        "deletion_key": plan.deletion_key,
        "run_id": run_id,
        "at": at,
        "item_sha256": item_digest(plan.item),
        "last_visit_at": _last_visit(plan.item),
        "restored": dict(plan.restored),
        "skipped": dict(plan.skipped),
        "why": dict(plan.why),
    }


def put_by_restore(interrupted: dict[str, Any] | None, item: Wire | None) -> bool:
    """Whether `item` is the one the restore that left `interrupted` put back: the same
    attributes, and `lastVisitAt` not earlier than it set (the person may have come back
    since). An account created anew differs, and is never taken for a restored one."""
    if interrupted is None or item is None:
        return False
    last = _last_visit(item)
    return (
        item_digest(item) == interrupted["item_sha256"]
        and last is not None
        and last >= interrupted["last_visit_at"]
    )


def _finishing(user_id: str, interrupted: dict[str, Any], dry_run: bool) -> RestorePlan:
    key = interrupted["deletion_key"]
    plan = RestorePlan(user_id, DRY_RUN if dry_run else RESTORED, "", key, interrupted=interrupted)
    plan.restored.update(interrupted["restored"])
    plan.skipped.update(interrupted["skipped"])
    plan.why.update(interrupted["why"])
    done = "would be recorded now (dry run: nothing written)" if dry_run else "recorded now"
    plan.reason = (
        f"finished an interrupted restore: the deletion of {key} was restored by run "
        f"{interrupted['run_id']}, which stopped before recording it; its restored event {done}"
    )
    return plan


def _plan_files(plan: RestorePlan, record: DeletionRecord, state: CurrentState) -> None:
    grouped = by_key(state.versions)
    for archived in record.files:
        versions = grouped.get(archived.key, [])
        ids = [v.version_id for v in versions]
        if archived.version_id not in ids:
            plan.skip("files", 1, f"{archived.key}: the recorded version no longer exists")
            plan.lost.append(archived.key)
            continue
        above = versions[: ids.index(archived.version_id)]
        if any(not v.is_marker for v in above):
            plan.skip("files", 1, f"{archived.key}: replaced by a newer version; left as is")
            continue
        plan.markers.extend((v.key, v.version_id) for v in above)
        plan.restored["files"] += 1


def _plan_features(plan: RestorePlan, record: DeletionRecord, state: CurrentState) -> None:
    for feature_id in record.features:
        if feature_id not in state.features:
            plan.skip("features", 1, f"{feature_id}: the feature no longer exists")
        elif state.features[feature_id] is None:
            plan.link_features.append(feature_id)
            plan.restored["features"] += 1
        elif state.features[feature_id] == plan.user_id:  # put back by an interrupted restore
            plan.restored["features"] += 1
        else:
            plan.skip("features", 1, f"{feature_id}: now proposed by someone else")


def _entry_user(entry: Wire) -> str | None:
    return entry.get("M", {}).get("id", {}).get("S")


def _canonical(entry: Wire) -> str:
    return json.dumps(entry, sort_keys=True)


def _plan_boards(plan: RestorePlan, record: DeletionRecord, state: CurrentState) -> None:
    recorded: dict[str, list[ArchivedEntry]] = {}
    for entry in record.scoreboard_entries:
        recorded.setdefault(entry.board, []).append(entry)
    for board, entries in recorded.items():
        current = state.boards.get(board)
        if current is None:
            plan.skip("scoreboards", len(entries), f"{board}: the board no longer exists")
            continue
        held = [_canonical(e) for e in current if _entry_user(e) == plan.user_id]
        if not held:
            plan.board_inserts[board] = entries
            plan.restored["scoreboards"] += len(entries)
        elif sorted(held) == sorted(_canonical(e.entry) for e in entries):
            plan.restored["scoreboards"] += len(entries)  # put back by an interrupted restore
        else:
            plan.skip("scoreboards", len(entries), f"{board}: the board already holds the user")


def restored_item(item: Wire, now: int) -> Wire:
    """The user item as it comes back: a new inactivity episode starting now."""
    kept = {name: value for name, value in item.items() if name not in _NOT_RESTORED}
    return {**kept, "lastVisitAt": {"N": str(now)}}


def plan_restore(
    user_id: str,
    ledger: LedgerState,
    deletion_key: str | None,
    record: DeletionRecord | None,
    state: CurrentState,
    now: int,
    dry_run: bool,
) -> RestorePlan:
    why_not = refusal(user_id, ledger, deletion_key, state)
    if why_not is None and state.item_exists:  # the item an interrupted restore put back
        assert state.interrupted is not None
        return _finishing(user_id, state.interrupted, dry_run)
    if why_not is None and (record is None or record.item is None):
        why_not = (
            "nothing was kept of this deletion: it was made with no restore window "
            "(RESTORE_WINDOW_DAYS=0) or its manifests are gone"
        )
    if why_not is not None:
        return RestorePlan(user_id, REFUSED, why_not, deletion_key)
    assert record is not None and record.item is not None
    plan = RestorePlan(user_id, DRY_RUN if dry_run else RESTORED, "", deletion_key)
    _plan_files(plan, record, state)
    _plan_features(plan, record, state)
    _plan_boards(plan, record, state)
    plan.item = restored_item(record.item, now)
    plan.restored["item"] = 1
    done = "would be restored (dry run: nothing written)" if dry_run else "restored"
    plan.reason = f"the deletion of {deletion_key} {done}"
    return plan


def _beside_neighbours(
    as_read: list[Wire], current: list[Wire], entries: list[ArchivedEntry]
) -> list[ArchivedEntry]:
    """The entries placed on the board as it is now beside the neighbours they had on the board
    as read then: right after the nearest entry before them that the board still holds, or else
    right before the nearest one after them. So they are where they were among the entries that
    stayed, whoever else left the board meanwhile. An entry the board as read does not hold at
    its position, or whose neighbours all left, keeps its recorded position."""
    now = [_canonical(entry) for entry in current]
    placed = []
    for own, entry in enumerate(sorted(entries, key=lambda e: e.position)):
        position = entry.position
        if position < len(as_read) and _canonical(as_read[position]) == _canonical(entry.entry):
            read = [_canonical(e) for e in as_read]
            before = [now.index(key) + 1 for key in reversed(read[:position]) if key in now]
            after = [now.index(key) for key in read[position + 1 :] if key in now]
            if before or after:
                position = (before[0] if before else after[0]) + own
        placed.append(ArchivedEntry(entry.board, position, entry.entry))
    return placed


def plan_put_back(
    user_id: str,
    record: DeletionRecord,
    state: CurrentState,
    as_read: dict[str, list[Wire] | None] | None = None,
) -> RestorePlan:
    """What a deletion that never reached the user item gives back (the user came back, or its
    run died): the same files, feature references and scoreboard entries a restore would bring
    back, the user item aside, since it is still there. With the boards `as_read` by the
    deletion, each entry goes back beside the neighbours it had then."""
    plan = RestorePlan(user_id, RESTORED, "", record.deletion_key)
    _plan_files(plan, record, state)
    _plan_features(plan, record, state)
    _plan_boards(plan, record, state)
    for board, entries in plan.board_inserts.items():
        read, current = (as_read or {}).get(board), state.boards.get(board)
        if read is not None and current is not None:
            plan.board_inserts[board] = _beside_neighbours(read, current, entries)
    return plan


def insert_entries(current: list[Wire], entries: list[ArchivedEntry]) -> list[Wire]:
    """The board with the entries back at their recorded positions, clamped to its length."""
    board = list(current)
    for entry in sorted(entries, key=lambda e: e.position):
        board.insert(min(entry.position, len(board)), entry.entry)
    return board

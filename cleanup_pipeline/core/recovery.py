"""What the restore window and the ledger keep, and what a restore puts back, as plain data
decided without AWS.

Where things live in the archive (`CLEANUP_ARCHIVE_DIR`), as keys relative to it:
- `manifests/{restorable_until}_{run_id}_{batch}/{seq}.json`: a batch's manifest group (its main
  manifest and any supplementary ones). The end of the window leads the name, so the purge finds
  the groups whose window ended from a listing, without reading the others.
- `pending/{run_id}_{batch}.json`: the journal of a batch that is deleting users.
- `restoring/{sha256 of user_id}.{deletion_key}.json`: a restore about to put a user item back;
  removed once its `restored` event is recorded.
- `ledger/{sha256 of user_id}/{deletion_key}.{event}.json`: one ledger event; never removed by
  the job. A user id may be 1,000 characters of anything, slashes included: hashed, it makes a
  folder name of fixed length that no id can escape; the event itself names the user.

The records:
- A **manifest** is written by a deletion batch before its first destructive step: for each user,
  the user item as re-read, the versions of their files, the features and scoreboard entries the
  cascade removes. It holds personal data, so it lives only in the private archive.
- A **journal entry** says a batch is about to delete a user (ids, counts, manifest groups; no
  address), so that a later run can record in the ledger what a crashed run did.
- A **ledger event** is one fact about one deletion (`deleted`, `verified`, `restored`,
  `purged`), without address or item content. `verified` says a lookup of every store after the
  deletion found nothing left of the user.

A deletion is one inactivity episode of a user, identified by the user id and the
`accountDeletionEmailSentAt` of the deleted item (its *deletion key*): the same for a crashed run
and the run that finishes it, new after a restore (which removes that attribute). Restore and
purge see a deletion as the manifests of every attempt of it merged, with where it stands in
the ledger.

A restore plan is pure data; `actions/restore.py` reads the inputs and applies it. A restore
that was interrupted is planned again from what it left: files already current, features already
naming the user and boards already holding the recorded entries count as restored and are not
written again, and the user item (written last) is still absent, so the second run goes through.
A restore that died after putting the item back left a record of it in the archive (written just
before the put): when the item found is the one that record describes, the next restore only
records what the first one did. An account created anew under that id is not: it is refused as
any existing account is.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from cleanup_pipeline.core.data_map import FEATURES, FILES, SCOREBOARDS, DataMap

MANIFESTS, PENDING, LEDGER = "manifests/", "pending/", "ledger/"
RESTORING = "restoring/"


def manifest_group(restorable_until: int, run_id: str, batch: str) -> str:
    return f"{MANIFESTS}{restorable_until:013d}_{run_id}_{batch}/"


def manifest_key(group: str, seq: int) -> str:
    return f"{group}{seq:03d}.json"


def group_of(key: str) -> str:
    """The manifest group a manifest key belongs to."""
    return key.rsplit("/", 1)[0] + "/"


def group_until(group: str) -> int:
    """The end of the restore window of a manifest group, read from its name."""
    return int(group.removeprefix(MANIFESTS).split("_", 1)[0])


def journal_key(run_id: str, batch: str) -> str:
    return f"{PENDING}{run_id}_{batch}.json"


def ledger_folder(user_id: str) -> str:
    return f"{LEDGER}{hashlib.sha256(user_id.encode()).hexdigest()}/"


def ledger_key(user_id: str, deletion_key: str, event: str) -> str:
    return f"{ledger_folder(user_id)}{deletion_key}.{event}.json"


def restoring_key(user_id: str, deletion_key: str) -> str:
    return f"{RESTORING}{hashlib.sha256(user_id.encode()).hexdigest()}.{deletion_key}.json"


DAY_MS = 86_400_000
DELETED, VERIFIED, RESTORED, PURGED = "deleted", "verified", "restored", "purged"
EVENTS = (DELETED, VERIFIED, RESTORED, PURGED)
SENT_AT = "accountDeletionEmailSentAt"

Wire = dict[str, Any]


def deletion_key(item: Wire) -> str:
    """The deletion key of a user item about to be deleted (a delete candidate is always warned)."""
    sent = item.get(SENT_AT, {})
    return str(sent.get("N", "unwarned"))


def restorable_until(deleted_at: int, window_days: float) -> int:
    return deleted_at + round(window_days * DAY_MS)


@dataclass(frozen=True)
class ArchivedFile:
    key: str
    version_id: str


@dataclass(frozen=True)
class ArchivedEntry:
    """A removed scoreboard entry, its board and its position in the list before removal."""

    board: str
    position: int
    entry: Wire


@dataclass
class ArchivedUser:
    user_id: str
    deletion_key: str
    item: Wire | None = None
    files: list[ArchivedFile] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    scoreboard_entries: list[ArchivedEntry] = field(default_factory=list)
    # What stores of other kinds than the app's own held of the user, by store name: each
    # record as its kind keeps it (a deleted item whole, for instance).
    stores: dict[str, list[Wire]] = field(default_factory=dict)


@dataclass
class Manifest:
    run_id: str
    as_of: int
    deleted_at: int
    window_days: float
    users: list[ArchivedUser] = field(default_factory=list)

    @property
    def restorable_until(self) -> int:
        return restorable_until(self.deleted_at, self.window_days)

    def to_json(self) -> dict[str, Any]:
        return {"format": 1, **asdict(self), "restorable_until": self.restorable_until}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Manifest":
        users = [
            ArchivedUser(
                user_id=u["user_id"],
                deletion_key=u["deletion_key"],
                item=u.get("item"),
                files=[ArchivedFile(**f) for f in u.get("files", [])],
                features=list(u.get("features", [])),
                scoreboard_entries=[ArchivedEntry(**e) for e in u.get("scoreboard_entries", [])],
                stores={name: list(found) for name, found in u.get("stores", {}).items()},
            )
            for u in data["users"]
        ]
        return cls(data["run_id"], data["as_of"], data["deleted_at"], data["window_days"], users)


@dataclass
class JournalEntry:
    """One user a batch is deleting; counts are the most any attempt of this deletion found.


    Without a restore window no manifest file is written, yet a deletion that does not finish
    (the user came back, the run died) must give back what it hid: `inline` then holds that
    user's manifests themselves (item left out), as long as the journal lives.
    `approved_run_id`: the reviewed run that the deleting run's approval named, if any; kept
    here so that the `deleted` event a later run records for a run that died carries it too.
    `request`: the erase request the deletion answers, if the person asked for it; kept for the
    same reason."""

    user_id: str
    deletion_key: str
    files: int = 0
    features: int = 0
    scoreboard_entries: int = 0
    restorable_until: int | None = None
    manifests: list[str] = field(default_factory=list)
    inline: list[dict[str, Any]] = field(default_factory=list)
    approved_run_id: str | None = None
    # What went from each store of other kinds than the app's own, by store name.
    stores: dict[str, int] = field(default_factory=dict)
    request: str | None = None

    def merged(self, other: "JournalEntry") -> "JournalEntry":
        """This attempt combined with an earlier one of the same deletion: an attempt that died
        after removing some data leaves the next one less to find, so the larger count holds.
        The approval is this attempt's: the deletion is recorded for this attempt's run."""
        untils = [u for u in (self.restorable_until, other.restorable_until) if u is not None]
        inline = {json.dumps(m, sort_keys=True): m for m in [*other.inline, *self.inline]}
        return JournalEntry(
            self.user_id,
            self.deletion_key,
            max(self.files, other.files),
            max(self.features, other.features),
            max(self.scoreboard_entries, other.scoreboard_entries),
            max(untils) if untils else None,
            sorted(set(self.manifests) | set(other.manifests)),
            list(inline.values()),
            approved_run_id=self.approved_run_id,
            request=self.request or other.request,
            stores={
                name: max(self.stores.get(name, 0), other.stores.get(name, 0))
                for name in sorted({*self.stores, *other.stores})
            },
        )


def removed_by_store(entry: JournalEntry, data_map: DataMap) -> dict[str, int]:
    """What the deletion removed from each store of the map, by the store's name: objects,
    attribute references, list entries, items. The app's own stores, where the cascade's own
    steps acted on them, are counted in the journal's `files`, `features` and
    `scoreboard_entries`; any other store by its name."""
    own = {FILES: entry.files, FEATURES: entry.features, SCOREBOARDS: entry.scoreboard_entries}
    return {
        store.name: entry.stores.get(store.name, own.get(store.name, 0))
        for store in data_map.stores
    }


def deleted_event(
    entry: JournalEntry, run_id: str, as_of: int, at: int, data_map: DataMap
) -> dict[str, Any]:
    """The `deleted` event, with what went from each store of `data_map`; with
    `approved_run_id` only when the deleting run was approved."""
    stores = removed_by_store(entry, data_map)
    event: dict[str, Any] = {
        "event": DELETED,
        "run_id": run_id,
        "as_of": as_of,
        "at": at,
        # The stores named as the app's own are counted so whichever steps acted on them.
        "files": stores.get(FILES, entry.files),
        "features": stores.get(FEATURES, entry.features),
        "scoreboard_entries": stores.get(SCOREBOARDS, entry.scoreboard_entries),
        # With no restore window nothing is kept: restorable until the moment of deletion.
        "restorable_until": at if entry.restorable_until is None else entry.restorable_until,
        "stores": stores,
        "deletion_key": entry.deletion_key,
        "manifests": entry.manifests,
    }
    if entry.approved_run_id:
        event["approved_run_id"] = entry.approved_run_id
    if entry.request:
        event["request"] = entry.request
    return event


def verified_event(
    deletion: str, run_id: str, at: int, data_map: DataMap, request: str | None = None
) -> dict[str, Any]:
    """The `verified` event of the deletion with key `deletion`: at `at`, nothing was found
    left of the user in any store of `data_map`; with the erase request it answers, if any."""
    zeros = dict.fromkeys((store.name for store in data_map.stores), 0)
    extra: dict[str, Any] = {"request": request} if request else {}
    return later_event(VERIFIED, deletion, run_id, at, stores=zeros, **extra)


def later_event(event: str, deletion: str, run_id: str, at: int, **extra: Any) -> dict[str, Any]:
    """A `verified`, `restored` or `purged` event of the deletion with key `deletion`."""
    return {"event": event, "run_id": run_id, "at": at, "deletion_key": deletion, **extra}


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    is_latest: bool
    is_marker: bool
    last_modified: float


def by_key(versions: list[ObjectVersion]) -> dict[str, list[ObjectVersion]]:
    """Versions grouped by key, newest first (S3 lists each kind newest first; a delete marker
    made in the same second as the version it hides sorts above it)."""
    grouped: dict[str, list[ObjectVersion]] = {}
    for version in versions:
        grouped.setdefault(version.key, []).append(version)
    for found in grouped.values():
        found.sort(key=lambda v: (v.is_latest, v.last_modified, v.is_marker), reverse=True)
    return grouped


def current_objects(versions: list[ObjectVersion]) -> list[ObjectVersion]:
    """The objects that exist now: keys whose latest version is not a delete marker."""
    return [v for v in versions if v.is_latest and not v.is_marker]


@dataclass
class DeletionRecord:
    user_id: str
    deletion_key: str
    item: dict[str, Any] | None = None
    files: list[ArchivedFile] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    scoreboard_entries: list[ArchivedEntry] = field(default_factory=list)
    stores: dict[str, list[Wire]] = field(default_factory=dict)


def _entry_identity(entry: ArchivedEntry) -> tuple[str, str]:
    return entry.board, json.dumps(entry.entry, sort_keys=True)


def merge_deletion(user_id: str, deletion_key: str, manifests: list[Manifest]) -> DeletionRecord:
    """Everything the manifests (oldest first) recorded of this deletion, each thing once.

    An attempt that died before removing something recorded it, and the attempt that finished
    recorded it again: a file by (key, version), a feature by id, a scoreboard entry by board
    and content, its latest recorded position winning (a supplementary manifest records the
    position a retried prune found)."""
    record = DeletionRecord(user_id, deletion_key)
    files: dict[str, ArchivedFile] = {}
    features: dict[str, None] = {}
    entries: dict[tuple[str, str], ArchivedEntry] = {}
    stores: dict[str, dict[str, Wire]] = {}
    for manifest in sorted(manifests, key=lambda m: m.deleted_at):
        for user in manifest.users:
            if user.user_id != user_id or user.deletion_key != deletion_key:
                continue
            record.item = user.item if user.item is not None else record.item
            for archived in user.files:
                files.setdefault(archived.key, archived)  # the earliest: the one made current
            features.update(dict.fromkeys(user.features))
            for entry in user.scoreboard_entries:
                entries[_entry_identity(entry)] = entry
            for name, found in user.stores.items():
                own = stores.setdefault(name, {})
                own.update((json.dumps(one, sort_keys=True), one) for one in found)
    record.files = sorted(files.values(), key=lambda f: f.key)
    record.features = list(features)
    record.scoreboard_entries = sorted(entries.values(), key=lambda e: (e.board, e.position))
    record.stores = {name: list(own.values()) for name, own in stores.items()}
    return record


@dataclass(frozen=True)
class LedgerState:
    """The events of one user's ledger, oldest first."""

    events: list[dict[str, Any]]

    def deletions(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == DELETED]

    def latest_deletion(self) -> dict[str, Any] | None:
        deletions = self.deletions()
        return deletions[-1] if deletions else None

    def closed_by(self, deletion_key: str) -> dict[str, Any] | None:
        """The `restored` or `purged` event that ended this deletion's window, if any."""
        for event in self.events:
            if event["event"] in (RESTORED, PURGED) and event["deletion_key"] == deletion_key:
                return event
        return None

    def has(self, deletion_key: str, kind: str) -> bool:
        return any(
            e["event"] == kind and e.get("deletion_key") == deletion_key for e in self.events
        )


def order_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest first; within one instant a deletion comes before its proof, and both before what
    ended it."""
    rank = {DELETED: 0, VERIFIED: 1, RESTORED: 2, PURGED: 2}
    return sorted(events, key=lambda e: (e["at"], rank.get(e["event"], 3)))


KINDS = ("item", "files", "features", "scoreboards")
RESTORED, REFUSED, DRY_RUN = "restored", "refused", "dry_run"
# Bookkeeping of a warning in flight (see aws/users_table.py): never part of a restored account.
_NOT_RESTORED = (SENT_AT, "accountDeletionEmailClaimedBy", "accountDeletionEmailClaimedAt")


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
    # What stores other than the app's own held of the user, by store name, to put back.
    store_records: dict[str, list[Wire]] = field(default_factory=dict)

    def skip(self, kind: str, count: int, why: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + count
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


@dataclass
class ObjectsBack:
    """What bringing back recorded objects of a folder takes: the delete markers above their
    recorded versions to remove, how many come back, why the others do not, and the keys of
    which no version is left."""

    markers: list[tuple[str, str]] = field(default_factory=list)
    restored: int = 0
    skipped: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def plan_objects(recorded: list[ArchivedFile], versions: list[ObjectVersion]) -> ObjectsBack:
    """Each recorded version becomes current again by removing the delete markers above it;
    a key written again since (a newer version above it) is left as it is."""
    back = ObjectsBack()
    grouped = by_key(versions)
    for archived in recorded:
        found = grouped.get(archived.key, [])
        ids = [v.version_id for v in found]
        if archived.version_id not in ids:
            back.skipped.append(f"{archived.key}: the recorded version no longer exists")
            back.lost.append(archived.key)
            continue
        above = found[: ids.index(archived.version_id)]
        if any(not v.is_marker for v in above):
            back.skipped.append(f"{archived.key}: replaced by a newer version; left as is")
            continue
        back.markers.extend((v.key, v.version_id) for v in above)
        back.restored += 1
    return back


def _plan_files(plan: RestorePlan, record: DeletionRecord, state: CurrentState) -> None:
    back = plan_objects(record.files, state.versions)
    plan.markers.extend(back.markers)
    plan.restored["files"] += back.restored
    for why in back.skipped:
        plan.skip("files", 1, why)
    plan.lost.extend(back.lost)


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


def _plan_stores(plan: RestorePlan, record: DeletionRecord) -> None:
    """Each other store's records go back where nothing took their place, which only the
    write itself tells: planned whole, counted down by the put back."""
    for name, records in record.stores.items():
        plan.store_records[name] = records
        plan.restored[name] = len(records)
        plan.skipped.setdefault(name, 0)


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
    _plan_stores(plan, record)
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
    _plan_stores(plan, record)
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

"""What a deletion batch records before its first destructive step, and after its last.

Before: the manifest (window > 0; the batch's users as re-read, their files' versions, features
and scoreboard entries) and the journal (ids and counts, for the ledger; with no window, the
same record of files, features and entries, item left out, for a deletion that must be given
back), each written durably in one call. During: a scoreboard re-read that finds the batch's
entries elsewhere adds a small supplementary record before the retried removal. After: one
`deleted` ledger event per deleted user, then the journal goes.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cleanup_pipeline.actions.ledger import Pair, close_journal, record, write_journal
from cleanup_pipeline.aws.archive_store import ArchiveStore
from cleanup_pipeline.aws.references import entry_id
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import DataMap
from cleanup_pipeline.core.recovery import (
    ArchivedEntry,
    ArchivedFile,
    ArchivedUser,
    DeletionRecord,
    JournalEntry,
    Manifest,
    ObjectVersion,
    current_objects,
    deleted_event,
    deletion_key,
    journal_key,
    manifest_group,
    manifest_key,
    merge_deletion,
    restorable_until,
    verified_event,
)

Wire = dict[str, Any]


@dataclass(frozen=True)
class Recovery:
    """The archive and what the run carries over from attempts of deletions that a crashed run
    began (see actions/ledger.py `reconcile`)."""

    store: ArchiveStore
    run_id: str
    carried: dict[Pair, JournalEntry] = field(default_factory=dict)
    approved_run_id: str | None = None
    # {user id: erase request id} of a person's own erasure, recorded with each deletion.
    requests: Mapping[str, str] = field(default_factory=dict)


def file_targets(versions: list[ObjectVersion]) -> tuple[list[ObjectVersion], list[ArchivedFile]]:
    """(the objects to hide, what the record keeps of them).

    Whatever the window, each current object gets a delete marker first and its version is
    recorded, so that nothing is lost before the user item is gone; keys already under a marker
    are left (an earlier attempt of this deletion recorded them, or the user had deleted the
    file themselves). Without a window the versions go once the item is gone."""
    current = current_objects(versions)
    return current, [ArchivedFile(v.key, v.version_id) for v in current]


def board_entries(boards: dict[str, list[Wire] | None], user_ids: set[str]) -> dict[str, list]:
    """Each user's entries on the boards just read, with board and position."""
    found: dict[str, list[ArchivedEntry]] = {}
    for board, entries in boards.items():
        for position, entry in enumerate(entries or []):
            owner = entry_id(entry)
            if owner in user_ids:
                found.setdefault(owner, []).append(ArchivedEntry(board, position, entry))
    return found


def deletion_record(store: ArchiveStore, entry: JournalEntry) -> DeletionRecord:
    """Everything every attempt of a journalled deletion recorded, from its manifest groups
    and its inline manifests."""
    manifests = [
        Manifest.from_json(store.read_json(key))
        for group in entry.manifests
        for key in store.keys(group)
    ]
    manifests += [Manifest.from_json(inline) for inline in entry.inline]
    return merge_deletion(entry.user_id, entry.deletion_key, manifests)


@dataclass
class BatchArchive:
    """What one batch wrote to the archive, and where."""

    recovery: Recovery
    window_days: float
    as_of: int
    batch: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    group: str | None = None
    entries: dict[str, JournalEntry] = field(default_factory=dict)
    positions: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    manifests: int = 0

    @property
    def store(self) -> ArchiveStore:
        return self.recovery.store

    @property
    def journal(self) -> str:
        return journal_key(self.recovery.run_id, self.batch)

    def _manifest(self, users: list[ArchivedUser]) -> None:
        """A manifest of `users`: its own file with a window, inline in their journal entries
        without one (the journal is written again)."""
        manifest = Manifest(self.recovery.run_id, self.as_of, now_ms(), self.window_days, users)
        if self.group is None:
            for user in users:  # the journal holds no address: the item stays out
                alone = Manifest(
                    manifest.run_id, self.as_of, manifest.deleted_at, 0, [replace(user, item=None)]
                )
                self.entries[user.user_id].inline.append(alone.to_json())
            self._write_journal()
            return
        self.store.replace_json(manifest_key(self.group, self.manifests), manifest.to_json())
        self.manifests += 1

    def _write_journal(self) -> None:
        write_journal(
            self.store, self.journal, self.recovery.run_id, self.as_of, list(self.entries.values())
        )

    def write(
        self,
        items: dict[str, Wire],
        files: dict[str, tuple[list[ArchivedFile], int]],
        features: dict[str, list[str]],
        entries: dict[str, list[ArchivedEntry]],
        stores: dict[str, dict[str, list[Wire]]] | None = None,
    ) -> None:
        """The manifest (with a window) and the journal, both before anything is removed.
        `stores`: per user, what each store other than the app's own holds of them."""
        deleted_at = now_ms()
        until = restorable_until(deleted_at, self.window_days) if self.window_days > 0 else None
        if until is not None:
            self.group = manifest_group(until, self.recovery.run_id, self.batch)
        users = []
        for user_id, item in items.items():
            archived, count = files.get(user_id, ([], 0))
            key = deletion_key(item)
            own = entries.get(user_id, [])
            held = (stores or {}).get(user_id, {})
            users.append(
                ArchivedUser(
                    user_id, key, item, archived, features.get(user_id, []), own, dict(held)
                )
            )
            for entry in own:
                self.positions.setdefault(entry.board, {}).setdefault(user_id, []).append(
                    entry.position
                )
            journal = JournalEntry(
                user_id,
                key,
                count,
                len(features.get(user_id, [])),
                len(own),
                until,
                [self.group] if self.group else [],
                approved_run_id=self.recovery.approved_run_id,
                request=self.recovery.requests.get(user_id),
                stores={name: len(found) for name, found in held.items()},
            )
            carried = self.recovery.carried.get((user_id, key))
            self.entries[user_id] = journal if carried is None else journal.merged(carried)
        self._manifest(users)  # without a window, inline: the journal is written with it
        if self.group is not None:
            self._write_journal()

    def supplement(self, board: str, entries: list[Wire], *, user_ids: set[str]) -> None:
        """Before a retried removal: record where the board now holds the batch's entries, if
        that is not where the manifest says."""
        found = board_entries({board: entries}, user_ids)
        now = {user: [e.position for e in own] for user, own in found.items()}
        if now == self.positions.get(board, {}):
            return
        users = [
            ArchivedUser(user, self.entries[user].deletion_key, scoreboard_entries=own)
            for user, own in found.items()
            if user in self.entries
        ]
        self._manifest(users)
        self.positions[board] = now

    def supplement_store(self, name: str, found: dict[str, list[Wire]]) -> None:
        """Record more of what the store `name` holds of these users (found where an earlier
        record did not say), before it is removed."""
        users = [
            ArchivedUser(user_id, self.entries[user_id].deletion_key, stores={name: records})
            for user_id, records in found.items()
            if user_id in self.entries
        ]
        if users:
            self._manifest(users)

    def record_item(self, user_id: str, item: Wire) -> None:
        """The user item as re-read when its delete was retried, in a supplementary manifest
        (with a window: restore brings back the latest recorded item)."""
        if self.group is not None:
            self._manifest([ArchivedUser(user_id, self.entries[user_id].deletion_key, item)])

    def record_deleted(
        self, deleted: list[str], settled: set[str], data_map: DataMap, verified: set[str]
    ) -> list[str]:
        """The `deleted` ledger event of each deleted user, then the `verified` one of those the
        proof found gone from every store of `data_map`; then the journal keeps only the users
        not `settled` (a later run finishes them) and those whose events could not be written,
        for the next run to record. Returns the latter."""
        failed: list[str] = []
        at = now_ms()
        for user_id in deleted:
            entry = self.entries[user_id]
            event = deleted_event(entry, self.recovery.run_id, self.as_of, at, data_map)
            try:
                record(self.store, user_id, event)
                if user_id in verified:
                    proved = verified_event(
                        entry.deletion_key, self.recovery.run_id, now_ms(), data_map, entry.request
                    )
                    record(self.store, user_id, proved)
            except Exception:
                failed.append(user_id)
        left = [e for u, e in self.entries.items() if u not in settled or u in failed]
        close_journal(self.store, self.journal, self.recovery.run_id, self.as_of, left)
        return failed

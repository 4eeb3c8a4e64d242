"""One deletion of one user as restore and purge see it: the manifests of every attempt of
that deletion merged, and where it stands in the ledger."""

import json
from dataclasses import dataclass, field
from typing import Any

from cleanup_pipeline.core.recovery_records import (
    DELETED,
    PURGED,
    RESTORED,
    ArchivedEntry,
    ArchivedFile,
    Manifest,
)


@dataclass
class DeletionRecord:
    user_id: str
    deletion_key: str
    item: dict[str, Any] | None = None
    files: list[ArchivedFile] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    scoreboard_entries: list[ArchivedEntry] = field(default_factory=list)


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
    record.files = sorted(files.values(), key=lambda f: f.key)
    record.features = list(features)
    record.scoreboard_entries = sorted(entries.values(), key=lambda e: (e.board, e.position))
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
    """Oldest first; within one instant a deletion comes before what ended it."""
    rank = {DELETED: 0, RESTORED: 1, PURGED: 1}
    return sorted(events, key=lambda e: (e["at"], rank.get(e["event"], 2)))

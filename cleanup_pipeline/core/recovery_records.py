"""What the restore window and the ledger keep (SPEC §9), as plain data with a JSON form.

- A **manifest** is written by a deletion batch before its first destructive step: for each user,
  the user item as re-read, the versions of their files, the features and scoreboard entries the
  cascade removes. It holds personal data, so it lives only in the private archive.
- A **journal entry** says a batch is about to delete a user (ids, counts, manifest groups; no
  address), so that a later run can record in the ledger what a crashed run did.
- A **ledger event** is one fact about one deletion (`deleted`, `restored`, `purged`), without
  address or item content.

A deletion is one inactivity episode of a user, identified by the user id and the
`accountDeletionEmailSentAt` of the deleted item (its *deletion key*): the same for a crashed run
and the run that finishes it, new after a restore (which removes that attribute).
"""

import json
from dataclasses import asdict, dataclass, field
from typing import Any

DAY_MS = 86_400_000
DELETED, RESTORED, PURGED = "deleted", "restored", "purged"
EVENTS = (DELETED, RESTORED, PURGED)
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
    here so that the `deleted` event a later run records for a run that died carries it too."""

    user_id: str
    deletion_key: str
    files: int = 0
    features: int = 0
    scoreboard_entries: int = 0
    restorable_until: int | None = None
    manifests: list[str] = field(default_factory=list)
    inline: list[dict[str, Any]] = field(default_factory=list)
    approved_run_id: str | None = None

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
        )


def deleted_event(entry: JournalEntry, run_id: str, as_of: int, at: int) -> dict[str, Any]:
    """The `deleted` event; with `approved_run_id` only when the deleting run was approved."""
    event: dict[str, Any] = {
        "event": DELETED,
        "run_id": run_id,
        "as_of": as_of,
        "at": at,
        "files": entry.files,
        "features": entry.features,
        "scoreboard_entries": entry.scoreboard_entries,
        # With no restore window nothing is kept: restorable until the moment of deletion.
        "restorable_until": at if entry.restorable_until is None else entry.restorable_until,
        "deletion_key": entry.deletion_key,
        "manifests": entry.manifests,
    }
    if entry.approved_run_id:
        event["approved_run_id"] = entry.approved_run_id
    return event


def later_event(event: str, deletion: str, run_id: str, at: int, **extra: Any) -> dict[str, Any]:
    """A `restored` or `purged` event of the deletion with key `deletion`."""
    return {"event": event, "run_id": run_id, "at": at, "deletion_key": deletion, **extra}

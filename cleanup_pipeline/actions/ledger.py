"""The deletion ledger and the pending journals that make each ledger event exactly once.

A batch writes its journal before its first destructive step and, once the user items are
deleted, the `deleted` events; then it removes the journal (or keeps the entries of users it did
not settle, whose deletion a later run finishes). A run that dies in between leaves its
journal, and the next run's `reconcile` records what it did: a user whose item is gone gets
the `deleted` event. Ledger events are created only if absent, so whoever records one, and
however often, each exists once. What else a dead run left (versions to remove, stores to
finish and the proof that nothing is left, data to give back to a user who is no longer a
candidate) stays journalled until the job has done it (`settle_unfinished` in
actions/cascade.py).
"""

from dataclasses import dataclass, field
from typing import Any

from cleanup_pipeline.aws.archive_store import ArchiveStore
from cleanup_pipeline.aws.dynamodb import read_by_id
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import DataMap
from cleanup_pipeline.core.recovery import (
    DELETED,
    PENDING,
    SENT_AT,
    VERIFIED,
    JournalEntry,
    deleted_event,
    ledger_folder,
    ledger_key,
    order_events,
)

Pair = tuple[str, str]  # (user id, deletion key)


def record(store: ArchiveStore, user_id: str, event: dict[str, Any]) -> bool:
    """Add `event` to the user's ledger unless that deletion already has an event of its kind."""
    key = ledger_key(user_id, event["deletion_key"], event["event"])
    return store.create_json(key, {"user_id": user_id, **event})


def read_ledger(store: ArchiveStore, user_id: str) -> list[dict[str, Any]]:
    """The user's ledger events, oldest first (empty for a user never deleted)."""
    keys = [k for k in store.keys(ledger_folder(user_id)) if k.endswith(".json")]
    return order_events([store.read_json(key) for key in keys])


def write_journal(
    store: ArchiveStore, key: str, run_id: str, as_of: int, entries: list[JournalEntry]
) -> None:
    store.replace_json(
        key, {"run_id": run_id, "as_of": as_of, "users": [e.__dict__ for e in entries]}
    )


def close_journal(store: ArchiveStore, key: str, run_id: str, as_of: int, left: list[Any]) -> None:
    """Remove the journal, or keep only the users the batch did not delete."""
    if left:
        write_journal(store, key, run_id, as_of, left)
    else:
        store.remove(key)


def _journals(store: ArchiveStore) -> dict[str, dict[str, Any]]:
    found = {key: store.read_json(key) for key in store.keys(PENDING)}
    return {key: data for key, data in found.items() if data is not None}


def _pairs(data: dict[str, Any]) -> set[Pair]:
    return {(u["user_id"], u["deletion_key"]) for u in data["users"]}


def pending_pairs(store: ArchiveStore) -> set[Pair]:
    """The deletions some journal still holds: under way, or left unfinished by a run."""
    return {pair for data in _journals(store).values() for pair in _pairs(data)}


def deleted_elsewhere(store: ArchiveStore, pair: Pair, own_journal: str) -> bool:
    """Whether a run other than the one writing `own_journal` deleted (or is deleting) this
    deletion: its journal holds it, or the ledger has its `deleted` event. The journals are
    read first, since a run writes the event before it removes its journal."""
    if any(pair in _pairs(d) for key, d in _journals(store).items() if key != own_journal):
        return True
    return store.read(ledger_key(pair[0], pair[1], DELETED)) is not None


def forget(store: ArchiveStore, pairs: set[Pair], except_run: str | None = None) -> None:
    """Drop these deletions from every journal (but those of run `except_run`): settled."""
    if not pairs:
        return
    for key, data in _journals(store).items():
        if data["run_id"] == except_run or not _pairs(data) & pairs:
            continue
        left = [u for u in data["users"] if (u["user_id"], u["deletion_key"]) not in pairs]
        close_journal(store, key, data["run_id"], data["as_of"], [JournalEntry(**u) for u in left])


@dataclass
class Reconciled:
    recorded: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    carried: dict[Pair, JournalEntry] = field(default_factory=dict)
    # Left in their journals until the job settles them: deletions whose item is gone and
    # that no `verified` event proves, which the job finishes in every store and verifies;
    # deletions without a restore window whose item is gone (versions may remain under the
    # folder); and deletions whose user is back (the item is there, in another episode).
    to_verify: dict[Pair, JournalEntry] = field(default_factory=dict)
    to_purge: dict[Pair, JournalEntry] = field(default_factory=dict)
    to_give_back: dict[Pair, JournalEntry] = field(default_factory=dict)
    journals: int = 0


def _live_episode(item: dict[str, Any], deletion: str) -> bool:
    """The user is still in the inactivity episode this deletion began in: a later run may
    finish it, and must count what the earlier attempt removed."""
    sent = item.get(SENT_AT, {}).get("N")
    last = item.get("lastVisitAt", {}).get("N")
    return sent == deletion and last is not None and float(last) < float(sent)


def reconcile(
    store: ArchiveStore,
    dynamodb: Any,
    users_table: str,
    run_id: str,
    data_map: DataMap,
    dry_run: bool = False,
) -> Reconciled:
    """Record what runs that died left in their journals; return the entries of deletions that
    are still under way (the user item is there, same episode), for the run to carry on, and
    those the job must still settle (see `Reconciled`). A journal keeps a deletion whose item
    is gone until the job has verified it: a run that died before its proof, or whose proof
    found something left, is finished by the next; a verified one (with a restore window)
    leaves the journal here."""
    result = Reconciled()
    journals = _journals(store)
    result.journals = len(journals)
    users = {e["user_id"] for data in journals.values() for e in data["users"]}
    items = read_by_id(dynamodb, users_table, sorted(users), ("lastVisitAt", SENT_AT))
    merged: dict[Pair, JournalEntry] = {}
    for data in journals.values():
        for raw in data["users"]:
            entry = JournalEntry(**raw)
            pair = (entry.user_id, entry.deletion_key)
            merged[pair] = merged[pair].merged(entry) if pair in merged else entry
    done: set[Pair] = set()
    for pair, entry in merged.items():
        item = items.get(entry.user_id)
        if item is None:
            origin = next(
                d
                for d in journals.values()
                if any((u["user_id"], u["deletion_key"]) == pair for u in d["users"])
            )
            event = deleted_event(entry, origin["run_id"], origin["as_of"], now_ms(), data_map)
            event["recorded_by"] = run_id  # the run that died did the deletion; this one saw it
            if dry_run or record(store, entry.user_id, event):
                result.recorded.append((entry.user_id, event))
            proved = store.read(ledger_key(entry.user_id, entry.deletion_key, VERIFIED))
            if proved is None:
                result.to_verify[pair] = entry
            if entry.restorable_until is None:
                result.to_purge[pair] = entry
            elif proved is not None:
                done.add(pair)
        elif _live_episode(item, entry.deletion_key):
            result.carried[pair] = entry
        else:
            result.to_give_back[pair] = entry
    if not dry_run:
        for key, data in journals.items():
            left = [u for u in data["users"] if (u["user_id"], u["deletion_key"]) not in done]
            if len(left) != len(data["users"]):
                close_journal(
                    store, key, data["run_id"], data["as_of"], [JournalEntry(**u) for u in left]
                )
    return result

"""What the cascade does in a store of each kind of the data map, behind one small interface.

A kind answers, for a store of the map and a group of users: what is left of them there (the
proof of deletion), and, for a deletion whose user item is gone but whose run died or whose
proof found something written late, how to remove what the record says is theirs there again
(`finish`). The cascade, the settling of unfinished deletions and the proof walk the map's
stores in order and ask each store's kind; no store is known by name outside the kinds.

Reads stay amortised: an `s3_prefix` store is listed once per user, an `attribute` store's
acted-on items are read by key in batches, a `list` store's named items once each per group
(without named items, its table is scanned once per run and the items holding a user read by
key in batches).
"""

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from cleanup_pipeline.aws import bucket, references
from cleanup_pipeline.aws.dynamodb import read_by_id
from cleanup_pipeline.core.data_map import (
    ATTRIBUTE,
    DELETE_ITEMS,
    LIST,
    PARTITION_KEY,
    S3_PREFIX,
    DataMap,
    Store,
)
from cleanup_pipeline.core.recovery import (
    ArchivedEntry,
    ArchivedFile,
    DeletionRecord,
    ObjectVersion,
    current_objects,
    insert_entries,
    plan_objects,
)
from cleanup_pipeline.core.wire import plain, plain_item

Found = dict[str, int]  # user id -> what was found left of them in one store
# Per store name, the items the cascade acted on for each user (looked up again by the proof):
# ids of the app's own features, or the records of any other store's items.
Acted = dict[str, dict[str, list[Any]]]
Wire = dict[str, Any]


class Clients(Protocol):
    """Anything holding the DynamoDB and S3 clients (the cascade's, restore's, proof's context)."""

    dynamodb: Any
    s3: Any


@dataclass
class PutBack:
    """What giving a store's records back did: how many came back, and why the others did not."""

    restored: int = 0
    skipped: list[str] = field(default_factory=list)
    # Objects of which no version is left (a bucket that keeps none): they cannot come back.
    lost: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProofContext:
    dynamodb: Any
    s3: Any
    users_table: str
    data_map: DataMap
    # Without a restore window a deleted folder keeps no version and no marker.
    every_version_gone: bool


@dataclass(frozen=True)
class FinishContext:
    """What `finish` writes with: the deletions' records, and the users among them made with a
    restore window (their files are hidden, the versions kept until the purge)."""

    dynamodb: Any
    s3: Any
    records: Mapping[str, list[DeletionRecord]]
    windowed: frozenset[str]
    # The names of the map's stores other than the app's own (their records are by store).
    extra: frozenset[str] = frozenset()


class StoreKind:
    """The functions of one kind of store."""

    kind = ""
    # Whether the proof looks each user up alone (a failed lookup concerns that user only).
    per_user_proof = False

    def left(
        self, ctx: ProofContext, store: Store, user_ids: list[str], acted: Mapping[str, list[str]]
    ) -> Found:
        """What is left of these users in the store, read so as to see every earlier write."""
        raise NotImplementedError(f"{store.name}: no proof for {store.kind} stores")

    def finish(self, ctx: FinishContext, store: Store, acted: Acted) -> None:
        """Remove again, for deletions whose user item is gone, what their records say was
        theirs in the store; fill `acted[store.name]` where the proof needs it."""
        raise NotImplementedError(f"{store.name}: {store.kind} stores cannot be finished yet")

    def gather(self, clients: Clients, store: Store, user_ids: list[str]) -> dict[str, list[Wire]]:
        """What each user has in the store, as the manifest records it (before any removal)."""
        raise NotImplementedError(f"{store.name}: {store.kind} stores cannot be gathered yet")

    def remove(
        self, clients: Clients, store: Store, records: Mapping[str, list[Wire]]
    ) -> dict[str, str]:
        """Remove what `gather` found; returns {user: why} for the users not done."""
        raise NotImplementedError(f"{store.name}: {store.kind} stores cannot be removed yet")

    def put_back(
        self, clients: Clients, store: Store, user_id: str, records: list[Wire]
    ) -> PutBack:
        """Give back what the records hold, only where nothing took its place."""
        raise NotImplementedError(f"{store.name}: {store.kind} stores cannot be put back yet")

    def acted_on(self, store: Store, records: list[Wire]) -> list[str]:
        """The items these records of one user are in, as the proof looks them up again by
        key; none where the proof finds what is left by other means."""
        return []

    def export(self, clients: Clients, store: Store, user_id: str) -> list[Wire]:
        """What the store holds for the user, as plain JSON, for a copy of their data; read
        only, nothing is written."""
        raise NotImplementedError(f"{store.name}: {store.kind} stores cannot be exported yet")


def object_records(files: Sequence[ArchivedFile | ObjectVersion]) -> list[Wire]:
    """The manifest's record of a folder's objects: each current object's key and version."""
    return [{"key": f.key, "version_id": f.version_id} for f in files]


def recorded_objects(records: list[Wire]) -> list[ArchivedFile]:
    return [ArchivedFile(r["key"], r["version_id"]) for r in records]


class S3PrefixKind(StoreKind):
    """Every object under the user's folder of the store's bucket, with the semantics of the
    app's own files: hidden under delete markers before the user item goes, each current
    object's version recorded; with a restore window the versions stay until the purge,
    without one every version and marker under the folder goes once the item is gone. The
    cascade lists and hides these folders as it does the app's own (actions/cascade.py
    `_list_folders`, `_hide_folders`), keeping the listing for the removal."""

    kind = S3_PREFIX
    per_user_proof = True

    def gather(self, clients: Clients, store: Store, user_ids: list[str]) -> dict[str, list[Wire]]:
        """One version listing of each user's folder (all pages): its current objects."""
        return {
            user_id: object_records(
                current_objects(
                    bucket.list_versions(clients.s3, store.bucket, store.prefix_of(user_id))
                )
            )
            for user_id in user_ids
        }

    def remove(
        self, clients: Clients, store: Store, records: Mapping[str, list[Wire]]
    ) -> dict[str, str]:
        """The recorded objects hidden under delete markers (their versions stay), in requests
        of 1,000 shared across the users."""
        owner = {r["key"]: user_id for user_id, found in records.items() for r in found}
        hidden = bucket.hide_objects(clients.s3, store.bucket, list(owner))
        failed: dict[str, str] = {}
        for key, why in hidden.refused.items():
            failed.setdefault(owner[key], f"{key}: {why}")
        return failed

    def put_back(
        self, clients: Clients, store: Store, user_id: str, records: list[Wire]
    ) -> PutBack:
        """Each recorded version current again, the delete markers above it removed (content
        and metadata as they were); an object written again since is left as it is."""
        versions = bucket.list_versions(clients.s3, store.bucket, store.prefix_of(user_id))
        back = plan_objects(recorded_objects(records), versions)
        refused = bucket.delete_versions(clients.s3, store.bucket, back.markers)
        if refused:
            raise RuntimeError(f"S3 refused to remove delete markers: {refused}")
        return PutBack(back.restored, back.skipped, [f"{key} ({store.name})" for key in back.lost])

    def left(
        self, ctx: ProofContext, store: Store, user_ids: list[str], acted: Mapping[str, list[str]]
    ) -> Found:
        """One listing of each user's folder: no current object may be left with a restore
        window, no version and no marker without one."""
        found: Found = {}
        for user_id in user_ids:
            prefix = store.prefix_of(user_id)
            if bucket.folder_holds(
                ctx.s3, store.bucket, prefix, any_version=ctx.every_version_gone
            ):
                found[user_id] = 1
        return found

    def finish(self, ctx: FinishContext, store: Store, acted: Acted) -> None:
        """With a restore window, what is current in the folder is hidden under markers (the
        versions stay for the purge); without one the folder was emptied already."""
        for user_id in sorted(ctx.windowed & set(ctx.records)):
            refused = self.remove(ctx, store, self.gather(ctx, store, [user_id]))
            if refused:
                raise RuntimeError(f"files not hidden: {next(iter(refused.values()))}")

    def export(self, clients: Clients, store: Store, user_id: str) -> list[Wire]:
        """Each current object of the user's folder: key, size, last modification and ETag
        (its bytes are read by whoever copies them, one object at a time)."""
        prefix = store.prefix_of(user_id)
        return list(bucket.current_objects_under(clients.s3, store.bucket, prefix))


class AttributeKind(StoreKind):
    """The items whose attribute equals the user id: the attribute removed (`remove_attribute`),
    or the items deleted whole (`delete_items`).

    The app's own features store keeps its path: the features each candidate proposed, read by
    the run's scan of that table, unlinked by the cascade's own step, proved by id. Any other
    store's items are found by one Scan of its table per run (`find`, keeping the keys of the
    run's candidates' items alone), then read again by key for each batch (an item that no
    longer names the user is left alone) and recorded: whole when it is deleted, its key and
    the attribute's value when only the attribute goes. Every write holds only while the
    attribute still names the user."""

    kind = ATTRIBUTE

    def find(
        self, clients: Clients, store: Store, candidates: Collection[str]
    ) -> dict[str, list[Wire]]:
        """The one Scan of the run: candidate -> the keys of the items naming them."""
        key = _table_key(clients.dynamodb, store.table)
        return references.keys_naming(clients.dynamodb, store.table, store.key, key, candidates)

    def gather(self, clients: Clients, store: Store, user_ids: list[str]) -> dict[str, list[Wire]]:
        scanned = getattr(clients, "scanned", {}).get(store.name)
        if scanned is None:  # nothing gathered would let the user item go with the data left
            raise RuntimeError(f"{store.name}: the run's scan of {store.table} is missing")
        key = _table_key(clients.dynamodb, store.table)
        keys = {
            references.key_text(k): (user_id, k)
            for user_id in user_ids
            for k in scanned.get(user_id, [])
        }
        wanted = () if store.action == DELETE_ITEMS else (*key, store.key)
        items = references.read_by_keys(
            clients.dynamodb, store.table, [k for _, k in keys.values()], wanted
        )
        found: dict[str, list[Wire]] = {user_id: [] for user_id in user_ids}
        for item in items:
            user_id, _ = keys[references.key_text(references.key_of(item, key))]
            if item.get(store.key) == {"S": user_id}:
                found[user_id].append(item)
        return found

    def remove(
        self, clients: Clients, store: Store, records: Mapping[str, list[Wire]]
    ) -> dict[str, str]:
        key = _table_key(clients.dynamodb, store.table)
        failed: dict[str, str] = {}
        for user_id, items in records.items():
            try:
                for item in items:
                    references.unlink_item(
                        clients.dynamodb,
                        store.table,
                        references.key_of(item, key),
                        store.key,
                        user_id,
                        delete=store.action == DELETE_ITEMS,
                    )
            except Exception as error:
                failed[user_id] = f"{type(error).__name__}: {error}"
        return failed

    def put_back(
        self, clients: Clients, store: Store, user_id: str, records: list[Wire]
    ) -> PutBack:
        """A deleted item where no item has its key; a removed attribute on an item that still
        exists and holds none."""
        db, key = clients.dynamodb, _table_key(clients.dynamodb, store.table)
        done = PutBack()
        for record in records:
            item_key = references.key_of(record, key)
            if store.action == DELETE_ITEMS:
                if references.put_back_item(db, store.table, record, key) or references.holds_item(
                    db, store.table, record, key
                ):
                    done.restored += 1  # or put back by an interrupted restore
                else:
                    done.skipped.append(f"{item_key}: another item took its place")
                continue
            value = record[store.key]
            if references.relink_item(db, store.table, item_key, store.key, value):
                done.restored += 1
                continue
            now = references.read_by_keys(db, store.table, [item_key])
            if now and now[0].get(store.key) == value:
                done.restored += 1  # put back by an interrupted restore
            elif not now:
                done.skipped.append(f"{item_key}: the item is gone")
            else:
                done.skipped.append(f"{item_key}: another value took its place")
        return done

    def left(
        self, ctx: ProofContext, store: Store, user_ids: list[str], acted: Mapping[str, list[Any]]
    ) -> Found:
        """The items the cascade acted on for these users, by consistent batched reads of their
        keys: any that names the user again in the store's attribute is left. The features
        store's are its ids; any other store's, the records the cascade made."""
        owner = {
            item_id: user_id
            for user_id in user_ids
            for item_id in acted.get(user_id, [])
            if isinstance(item_id, str)
        }
        items = read_by_id(ctx.dynamodb, store.table, list(owner), (store.key,))
        found: Found = {}
        for item_id, item in items.items():
            if item.get(store.key, {}).get("S") == owner[item_id]:
                found[owner[item_id]] = found.get(owner[item_id], 0) + 1
        records = {
            user_id: [r for r in acted.get(user_id, []) if not isinstance(r, str)]
            for user_id in user_ids
        }
        if not any(records.values()):
            return found
        key = _table_key(ctx.dynamodb, store.table)
        keys = {
            references.key_text(references.key_of(r, key)): (user_id, references.key_of(r, key))
            for user_id, own in records.items()
            for r in own
        }
        for item in references.read_by_keys(
            ctx.dynamodb, store.table, [k for _, k in keys.values()], (*key, store.key)
        ):
            user_id, _ = keys[references.key_text(references.key_of(item, key))]
            if item.get(store.key) == {"S": user_id}:
                found[user_id] = found.get(user_id, 0) + 1
        return found

    def finish(self, ctx: FinishContext, store: Store, acted: Acted) -> None:
        own = acted.setdefault(store.name, {})
        if store.name not in ctx.extra:
            for user_id, records in sorted(ctx.records.items()):
                for removed in records:
                    own.setdefault(user_id, []).extend(removed.features)
                    for item_id in removed.features:
                        references.unlink_feature(ctx.dynamodb, store.table, item_id, user_id)
            return
        for user_id, records in sorted(ctx.records.items()):
            found = [item for removed in records for item in removed.stores.get(store.name, [])]
            own.setdefault(user_id, []).extend(found)
        failed = self.remove(ctx, store, {user_id: own[user_id] for user_id in ctx.records})
        if failed:
            raise RuntimeError(next(iter(failed.values())))

    def export(self, clients: Clients, store: Store, user_id: str) -> list[Wire]:
        """One filtered Scan: items deleted whole by the store's action are given whole, others
        as their key and the attribute's value."""
        if store.action == DELETE_ITEMS:
            found = references.items_where(clients.dynamodb, store.table, store.key, user_id)
            return [plain_item(item) for item in found]
        key = _table_key(clients.dynamodb, store.table)
        found = references.items_where(
            clients.dynamodb, store.table, store.key, user_id, (*key, store.key)
        )
        return [
            {"item": plain_item(references.key_of(item, key)), store.key: plain(item[store.key])}
            for item in found
        ]


class ListKind(StoreKind):
    """The entries whose `list_key` equals the user id in the list attribute of the store's
    named `items`, or of every item of the table when it names none.

    Named items are read once each per batch, before its manifest is written; without `items`,
    the run's one Scan of the table (`list_holders`, shared by every batch through the cascade's
    context as `lists`) tells which items hold a candidate, and each batch reads those again,
    consistently, by key. A removal takes out list positions only while they still hold the
    entries as read; a list that changed meanwhile is read again (the new positions recorded in
    a supplementary manifest first) and the removal retried. Each removed entry is recorded
    with its item's key and its position, and put back there only while the list holds no entry
    of the user."""

    kind = LIST

    def gather(self, clients: Clients, store: Store, user_ids: list[str]) -> dict[str, list[Wire]]:
        wanted = set(user_ids)
        holders = (getattr(clients, "lists", None) or {}).get(store.name)
        if store.items is None and holders is None:  # not read for the run: read here
            holders = list_holders(clients.dynamodb, store, user_ids)
        if store.items is None:
            keys = [
                json.loads(text) for text, held in (holders or {}).items() if wanted & set(held)
            ]
        else:
            keys = [_named(clients.dynamodb, store, item) for item in store.items]
        found: dict[str, list[Wire]] = {user_id: [] for user_id in user_ids}
        for text, entries in _read_lists(clients.dynamodb, store, keys).items():
            for user_id, records in _entries_of(store, text, entries, wanted).items():
                found[user_id].extend(records)
        return found

    def acted_on(self, store: Store, records: list[Wire]) -> list[str]:
        """Without `items`, the items the user's entries were removed from (the proof reads
        them again); the named items are read whole by the proof."""
        if store.items is not None:
            return []
        return list(dict.fromkeys(references.key_text(record[KEY]) for record in records))

    def remove(
        self, clients: Clients, store: Store, records: Mapping[str, list[Wire]]
    ) -> dict[str, str]:
        """Each item's entries of these users go; `clients.record_more`, when there is one,
        records where a list read again holds them now, before the retried removal."""
        record_more = getattr(clients, "record_more", None)
        by_item: dict[str, dict[str, list[Wire]]] = {}
        for user_id, found in records.items():
            for record in found:
                text = references.key_text(record[KEY])
                by_item.setdefault(text, {}).setdefault(user_id, []).append(record)
        failed: dict[str, str] = {}
        for text, held in by_item.items():
            try:
                _prune(clients.dynamodb, store, text, held, record_more)
            except Exception as error:
                failed.update(dict.fromkeys(held, f"{type(error).__name__}: {error}"))
        return failed

    def put_back(
        self, clients: Clients, store: Store, user_id: str, records: list[Wire]
    ) -> PutBack:
        """Each item's entries go back at their recorded positions (within the list as it is
        now), by a conditional replace of the list as read; an item whose list holds an entry of
        the user again is left as is, its entries named as skipped. A position recorded again
        after a list changed during the deletion replaces the one recorded first."""
        latest: dict[tuple[str, str], Wire] = {}
        for record in records:
            identity = (references.key_text(record[KEY]), _canonical(record[ENTRY]))
            latest.pop(identity, None)
            latest[identity] = record
        by_item: dict[str, list[Wire]] = {}
        for (text, _), record in latest.items():
            by_item.setdefault(text, []).append(record)
        done = PutBack()
        for text, own in by_item.items():
            done.restored += _put_back_on_item(clients.dynamodb, store, user_id, text, own, done)
        return done

    def left(
        self, ctx: ProofContext, store: Store, user_ids: list[str], acted: Mapping[str, list[str]]
    ) -> Found:
        """A consistent read of each of the store's named items, or, without `items`, of the
        items the cascade acted on for these users (batched, by key): an entry holding one of
        the users' ids in its `list_key` is left."""
        if store.items is None:
            texts = {text for user_id in user_ids for text in acted.get(user_id, [])}
            keys = [json.loads(text) for text in sorted(texts)]
        else:
            keys = [_named(ctx.dynamodb, store, item) for item in store.items]
        wanted, found = set(user_ids), {}
        for text, entries in _read_lists(ctx.dynamodb, store, keys).items():
            for owner, records in _entries_of(store, text, entries, wanted).items():
                found[owner] = found.get(owner, 0) + len(records)
        return found

    def finish(self, ctx: FinishContext, store: Store, acted: Acted) -> None:
        """The named items, or the items the records name, read again and the users' entries
        removed; the proof then reads the same items."""
        if store.items is not None:
            for item_id in store.items:
                key = _named(ctx.dynamodb, store, item_id)
                references.prune_list(
                    ctx.dynamodb,
                    store.table,
                    key,
                    store.list_attribute,
                    store.list_key,
                    sorted(ctx.records),
                    reread=lambda key=key: _read_one(ctx.dynamodb, store, key),
                )
            return
        own = acted.setdefault(store.name, {})
        users: dict[str, set[str]] = {}
        for user_id, removed in sorted(ctx.records.items()):
            records = [r for one in removed for r in one.stores.get(store.name, [])]
            own[user_id] = self.acted_on(store, records)
            for text in own[user_id]:
                users.setdefault(text, set()).add(user_id)
        errors = []
        for text, holders in sorted(users.items()):
            key = json.loads(text)
            try:
                references.prune_list(
                    ctx.dynamodb,
                    store.table,
                    key,
                    store.list_attribute,
                    store.list_key,
                    holders,
                    reread=lambda key=key: _read_one(ctx.dynamodb, store, key),
                )
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")
        if errors:
            raise RuntimeError(errors[0])

    def export(self, clients: Clients, store: Store, user_id: str) -> list[Wire]:
        """Each entry of the user with its item's key and its position in the list (a scan of
        the table when the store names no items)."""
        return [
            {"item": plain_item(r[KEY]), "position": r[POSITION], "entry": plain(r[ENTRY])}
            for r in self.gather(clients, store, [user_id])[user_id]
        ]


# What a `list` store's manifest records of each removed entry: the item's key (wire format),
# the entry's position in the list as read, and the entry itself.
KEY, POSITION, ENTRY = "key", "position", "entry"
# Replacements of one list refused because it changed meanwhile, before a put back gives up.
MAX_LIST_CONFLICTS = 8


def list_holders(client: Any, store: Store, user_ids: list[str]) -> dict[str, list[str]]:
    """One Scan of a `list` store's table without `items`: each item holding an entry of one of
    the users (its key as `references.key_text`) -> those users."""
    key = _table_key(client, store.table)
    return references.list_holders(
        client, store.table, key, store.list_attribute, store.list_key, user_ids
    )


def _named(client: Any, store: Store, item_id: str) -> dict[str, Any]:
    """The key of one of a store's named items."""
    return {store.item_key or _table_key(client, store.table)[0]: {"S": item_id}}


def _read_lists(client: Any, store: Store, keys: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The list of each of these items that exists, consistently, by key text: the named items
    one GetItem each, others (keys of any shape) in batches."""
    if store.items is not None:
        lists = {references.key_text(key): _read_one(client, store, key) for key in keys}
        return {text: entries for text, entries in lists.items() if entries is not None}
    if not keys:
        return {}
    table_key = _table_key(client, store.table)
    items = references.read_by_keys(
        client, store.table, keys, attributes=(*table_key, store.list_attribute)
    )
    return {
        references.key_text(references.key_of(item, table_key)): _list_of(store, item)
        for item in items
    }


def _read_one(client: Any, store: Store, key: dict[str, Any]) -> list[Any] | None:
    """The list of one item, consistently; None when the item is gone."""
    if store.items is not None:
        return references.list_at(client, store.table, key, store.list_attribute)
    table_key = _table_key(client, store.table)
    items = references.read_by_keys(
        client, store.table, [key], attributes=(*table_key, store.list_attribute)
    )
    return _list_of(store, items[0]) if items else None


def _list_of(store: Store, item: Wire) -> list[Any]:
    return item.get(store.list_attribute, {}).get("L", [])


def _entries_of(
    store: Store, text: str, entries: list[Any], user_ids: set[str]
) -> dict[str, list[Wire]]:
    """The records of the users' entries in one item's list, as read."""
    key = json.loads(text)
    found: dict[str, list[Wire]] = {}
    for position, entry in enumerate(entries):
        owner = references.entry_id(entry, store.list_key)
        if owner in user_ids:
            found.setdefault(owner, []).append({KEY: key, POSITION: position, ENTRY: entry})
    return found


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _prune(
    client: Any,
    store: Store,
    text: str,
    held: dict[str, list[Wire]],
    record_more: Callable[[str, dict[str, list[Wire]]], None] | None,
) -> None:
    """Remove the recorded entries of the users `held` in one item's list. A list read again
    (it changed meanwhile) whose entries of these users are not where the records say is
    recorded first, so that a give back or a restore puts back what is really removed."""
    key = json.loads(text)
    recorded = {user_id: [_canonical(r) for r in records] for user_id, records in held.items()}
    length = 1 + max(r[POSITION] for records in held.values() for r in records)
    as_read: list[Any] = [{}] * length  # only the users' positions matter to the removal
    for records in held.values():
        for record in records:
            as_read[record[POSITION]] = record[ENTRY]

    def reread(entries: list[Any]) -> None:
        now = _entries_of(store, text, entries, set(held))
        moved = {
            user_id: records
            for user_id, records in now.items()
            if sorted(map(_canonical, records)) != sorted(recorded.get(user_id, []))
        }
        if moved and record_more is not None:
            record_more(store.name, moved)
        recorded.update({u: [_canonical(r) for r in records] for u, records in moved.items()})

    references.prune_list(
        client,
        store.table,
        key,
        store.list_attribute,
        store.list_key,
        set(held),
        as_read,
        reread=lambda: _read_one(client, store, key),
        on_reread=reread,
        exact=True,
        label=f"{store.name}: item {text}",
    )


def _put_back_on_item(
    client: Any, store: Store, user_id: str, text: str, records: list[Wire], done: PutBack
) -> int:
    """Put the user's records back in one item's list; how many came back (the others are
    named in `done.skipped`)."""
    key = json.loads(text)
    wanted = sorted(_canonical(r[ENTRY]) for r in records)
    back = [ArchivedEntry(text, r[POSITION], r[ENTRY]) for r in records]
    for _ in range(MAX_LIST_CONFLICTS):
        current = _read_one(client, store, key)
        if current is None:
            done.skipped.extend([f"{text}: the item no longer exists"] * len(records))
            return 0
        held = [e for e in current if references.entry_id(e, store.list_key) == user_id]
        if held and sorted(map(_canonical, held)) == wanted:
            return len(records)  # put back by an interrupted restore
        if held:
            why = f"{text}: the list already holds an entry of the user"
            done.skipped.extend([why] * len(records))
            return 0
        entries = insert_entries(current, back)
        if references.replace_list(
            client, store.table, key, store.list_attribute, current, entries
        ):
            return len(records)
    raise RuntimeError(f"{store.name}: item {text} kept changing; entries not put back")


class PartitionKeyKind(StoreKind):
    """Every item of the table whose key attribute (of the table, or of its index) is the user
    id: one Query per user, the items recorded whole and deleted by the table's full key."""

    kind = PARTITION_KEY

    def gather(self, clients: Clients, store: Store, user_ids: list[str]) -> dict[str, list[Wire]]:
        key = _table_key(clients.dynamodb, store.table)
        return {
            user_id: references.items_of(
                clients.dynamodb, store.table, store.key, user_id, key, store.index
            )
            for user_id in user_ids
        }

    def remove(
        self, clients: Clients, store: Store, records: Mapping[str, list[Wire]]
    ) -> dict[str, str]:
        key = _table_key(clients.dynamodb, store.table)
        failed: dict[str, str] = {}
        keys = {
            user_id: [references.key_of(i, key) for i in items]
            for user_id, items in records.items()
        }
        try:
            references.delete_keys(
                clients.dynamodb, store.table, [k for ks in keys.values() for k in ks]
            )
        except Exception as error:
            failed.update(dict.fromkeys(keys, f"{type(error).__name__}: {error}"))
        return failed

    def put_back(
        self, clients: Clients, store: Store, user_id: str, records: list[Wire]
    ) -> PutBack:
        key = _table_key(clients.dynamodb, store.table)
        done = PutBack()
        for item in records:
            if references.put_back_item(clients.dynamodb, store.table, item, key):
                done.restored += 1
            elif references.holds_item(clients.dynamodb, store.table, item, key):
                done.restored += 1  # put back by an interrupted restore
            else:
                done.skipped.append(f"{references.key_of(item, key)}: another item took its place")
        return done

    def left(
        self, ctx: ProofContext, store: Store, user_ids: list[str], acted: Mapping[str, list[str]]
    ) -> Found:
        """One Query per user (a hit on an index confirmed by a consistent read of its item)."""
        found = self.gather(ctx, store, user_ids)
        return {user_id: len(items) for user_id, items in found.items() if items}

    def finish(self, ctx: FinishContext, store: Store, acted: Acted) -> None:
        """What the user has there now (written back, or left by a run that died) goes."""
        failed = self.remove(ctx, store, self.gather(ctx, store, sorted(ctx.records)))
        if failed:
            raise RuntimeError(next(iter(failed.values())))

    def export(self, clients: Clients, store: Store, user_id: str) -> list[Wire]:
        """Every item of the user, whole."""
        return [plain_item(item) for item in self.gather(clients, store, [user_id])[user_id]]


# A table's key never changes while the table exists: described once per client and table.
_TABLE_KEYS: WeakKeyDictionary[Any, dict[str, tuple[str, ...]]] = WeakKeyDictionary()


def _table_key(client: Any, table: str) -> tuple[str, ...]:
    """The table's key attributes, partition key first."""
    known = _TABLE_KEYS.setdefault(client, {})
    if table not in known:
        known[table] = references.table_key(client, table)
    return known[table]


KINDS: dict[str, StoreKind] = {
    kind.kind: kind for kind in (S3PrefixKind(), PartitionKeyKind(), AttributeKind(), ListKind())
}


def kind_of(store: Store) -> StoreKind:
    """The functions of the store's kind; a kind without them yet fails each call by name."""
    return KINDS.get(store.kind) or StoreKind()

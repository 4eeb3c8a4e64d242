"""What the cascade does in a store of each kind of the data map, behind one small interface.

A kind answers, for a store of the map and a group of users: what is left of them there (the
proof of deletion), and, for a deletion whose user item is gone but whose run died or whose
proof found something written late, how to remove what the record says is theirs there again
(`finish`). The cascade, the settling of unfinished deletions and the proof walk the map's
stores in order and ask each store's kind; no store is known by name outside the kinds.

Reads stay amortised: an `s3_prefix` store is listed once per user, an `attribute` store's
acted-on items are read by key in batches, a `list` store's named items once each per group.
"""

from collections.abc import Collection, Mapping
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
from cleanup_pipeline.core.recovery import DeletionRecord, current_objects

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


class S3PrefixKind(StoreKind):
    """Every object under the user's folder of the store's bucket."""

    kind = S3_PREFIX
    per_user_proof = True

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
            found = bucket.list_versions(ctx.s3, store.bucket, store.prefix_of(user_id))
            keys = [v.key for v in current_objects(found)]
            refused = bucket.hide_objects(ctx.s3, store.bucket, keys).refused
            if refused:
                raise RuntimeError(f"{len(refused)} files not hidden")


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


class ListKind(StoreKind):
    """The entries whose `list_key` equals the user id in the list attribute of the items."""

    kind = LIST

    def left(
        self, ctx: ProofContext, store: Store, user_ids: list[str], acted: Mapping[str, list[str]]
    ) -> Found:
        """One consistent read of each of the store's items: an entry holding one of the users'
        ids in its `list_key` is left."""
        if store.items is None:
            raise ValueError(f"{store.name}: the proof reads a list store's named items only")
        wanted, found = set(user_ids), {}
        for item_id in store.items:
            for entry in (
                references.read_list(ctx.dynamodb, store.table, item_id, store.list_attribute) or []
            ):
                owner = references.entry_id(entry, store.list_key)
                if owner in wanted:
                    found[owner] = found.get(owner, 0) + 1
        return found

    def finish(self, ctx: FinishContext, store: Store, acted: Acted) -> None:
        for item_id in store.items or ():
            references.prune_scoreboard(ctx.dynamodb, store.table, item_id, sorted(ctx.records))


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

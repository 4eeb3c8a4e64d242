"""Proof of deletion: once a batch's user items are gone, each deleted user is looked up again
in every store of the data map, and in the users table, with reads that see every write made
before them.

Each store kind has its own lookup, over all the batch's users at once where AWS allows: the
users items by consistent batched reads; an `attribute` store's acted-on items (the ones the
cascade removed the attribute from) by key, consistent and batched, none of which may name the
user again; a `list` store's items by one consistent read each, none of whose entries may hold
the user's id; an `s3_prefix` store by one listing of each user's folder, where no current
object may be left with a restore window (the versions stay for it) and nothing at all, no
version and no delete marker, without one. A user with something left, or whose lookup failed,
is not verified: the reason names the stores.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cleanup_pipeline.aws import bucket, references
from cleanup_pipeline.aws.dynamodb import read_by_id
from cleanup_pipeline.core.data_map import ATTRIBUTE, LIST, S3_PREFIX, DataMap, Store

# The users item, looked up beside the map's stores and named so in a leftover's reason.
USERS = "users"
# The cascade's step a user who is not verified fails at.
VERIFY_STEP = "verify"

Found = dict[str, int]  # user id -> what was found left of them in one store


class NotVerifiedError(RuntimeError):
    """Something of a deleted user is left in a store, or could not be looked up."""


@dataclass(frozen=True)
class ProofContext:
    dynamodb: Any
    s3: Any
    users_table: str
    data_map: DataMap
    # Without a restore window a deleted folder keeps no version and no marker.
    every_version_gone: bool


@dataclass
class Proof:
    """What the lookups found: per user, the stores where something is left (or whose lookup
    failed, with why)."""

    users: list[str]
    stores: tuple[str, ...]
    left: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def verified(self) -> list[str]:
        return [u for u in self.users if u not in self.left and u not in self.errors]

    def zeros(self) -> dict[str, int]:
        """What the `verified` ledger event says of each store: nothing found."""
        return dict.fromkeys(self.stores, 0)

    def reason(self, user_id: str) -> str:
        """Why the user is not verified: `leftover in files, scoreboards`, and each lookup that
        failed with its error."""
        parts = []
        if user_id in self.left:
            parts.append("leftover in " + ", ".join(self.left[user_id]))
        for store, error in self.errors.get(user_id, {}).items():
            parts.append(f"{store} not verified: {error}")
        return "; ".join(parts)


def user_items_left(ctx: ProofContext, user_ids: list[str]) -> Found:
    """The users items, by consistent batched reads of their keys alone."""
    found = read_by_id(ctx.dynamodb, ctx.users_table, user_ids, ())
    return {user_id: 1 for user_id in found}


def folder_left(ctx: ProofContext, store: Store, user_ids: list[str]) -> Found:
    """One listing of each user's folder."""
    found: Found = {}
    for user_id in user_ids:
        prefix = store.prefix_of(user_id)
        if bucket.folder_holds(ctx.s3, store.bucket, prefix, any_version=ctx.every_version_gone):
            found[user_id] = 1
    return found


def attribute_left(
    ctx: ProofContext, store: Store, user_ids: list[str], acted: Mapping[str, list[str]]
) -> Found:
    """The items the cascade acted on for these users, by consistent batched reads of their
    keys: any that names the user again in the store's attribute is left."""
    owner = {item_id: user_id for user_id in user_ids for item_id in acted.get(user_id, [])}
    items = read_by_id(ctx.dynamodb, store.table, list(owner), (store.key,))
    found: Found = {}
    for item_id, item in items.items():
        if item.get(store.key, {}).get("S") == owner[item_id]:
            found[owner[item_id]] = found.get(owner[item_id], 0) + 1
    return found


def list_left(ctx: ProofContext, store: Store, user_ids: list[str]) -> Found:
    """One consistent read of each of the store's items: an entry holding one of the users' ids
    in its `list_key` is left."""
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


def prove_deleted(
    ctx: ProofContext, user_ids: list[str], acted: Mapping[str, Mapping[str, list[str]]]
) -> Proof:
    """Every deleted user looked up in every store (see the module's docstring). `acted` gives,
    per `attribute` store, the items the cascade acted on for each user. A lookup that fails
    leaves its users unverified; a folder's listing concerns its user alone."""
    proof = Proof(list(user_ids), tuple(store.name for store in ctx.data_map.stores))
    if not user_ids:
        return proof
    lookups: list[tuple[str, list[str], Callable[[list[str]], Found]]] = [
        (USERS, user_ids, partial(user_items_left, ctx))
    ]
    for store in ctx.data_map.stores:
        lookup = _lookup(ctx, store, acted.get(store.name, {}))
        groups = [[user_id] for user_id in user_ids] if store.kind == S3_PREFIX else [user_ids]
        lookups.extend((store.name, group, lookup) for group in groups)
    for name, group, lookup in lookups:
        try:
            found = lookup(group)
        except Exception as error:
            for user_id in group:
                proof.errors.setdefault(user_id, {})[name] = f"{type(error).__name__}: {error}"
            continue
        for user_id in (u for u in group if found.get(u)):
            proof.left.setdefault(user_id, []).append(name)
    return proof


def _lookup(
    ctx: ProofContext, store: Store, acted: Mapping[str, list[str]]
) -> Callable[[list[str]], Found]:
    if store.kind == S3_PREFIX:
        return partial(folder_left, ctx, store)
    if store.kind == ATTRIBUTE:
        return lambda user_ids: attribute_left(ctx, store, user_ids, acted)
    if store.kind == LIST:
        return partial(list_left, ctx, store)

    def unsupported(_: list[str]) -> Found:
        raise ValueError(f"{store.name}: no proof for {store.kind} stores")

    return unsupported

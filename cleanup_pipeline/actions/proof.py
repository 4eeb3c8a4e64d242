"""Proof of deletion: once a batch's user items are gone, each deleted user is looked up again
in every store of the data map, and in the users table, with reads that see every write made
before them.

Each store kind has its own lookup, over all the batch's users at once where AWS allows: the
users items by consistent batched reads; an `attribute` store's acted-on items (the ones the
cascade removed the attribute from) by key, consistent and batched, none of which may name the
user again; a `list` store's named items by one consistent read each, or without named items
the items the cascade pruned (by key, consistent and batched), none of whose entries may hold
the user's id; an `s3_prefix` store by one listing of each user's folder, where no current
object may be left with a restore window (the versions stay for it) and nothing at all, no
version and no delete marker, without one. A user with something left, or whose lookup failed,
is not verified: the reason names the stores.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from cleanup_pipeline.actions.store_kinds import Found, ProofContext, kind_of
from cleanup_pipeline.aws.dynamodb import read_by_id

# The users item, looked up beside the map's stores and named so in a leftover's reason.
USERS = "users"
# The cascade's step a user who is not verified fails at.
VERIFY_STEP = "verify"


class NotVerifiedError(RuntimeError):
    """Something of a deleted user is left in a store, or could not be looked up."""


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
        kind = kind_of(store)
        lookup = partial(kind.left, ctx, store, acted=acted.get(store.name, {}))
        groups = [[user_id] for user_id in user_ids] if kind.per_user_proof else [user_ids]
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

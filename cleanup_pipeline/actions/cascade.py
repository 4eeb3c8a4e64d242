"""Deleting a user and everything they left behind, in an order a crash cannot corrupt.

The steps run over a batch of users (the run splits its candidates into batches that may run in
parallel, in separate processes): files, feature references, scoreboard entries, the address
in the emails table, and the user item **last**, conditionally. Until the user item is gone the
user is still a delete candidate, so a run that dies part-way is finished by the next run; every
step is idempotent. A user whose step fails leaves the batch (and keeps their user item) while
the others go on.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cleanup_pipeline.actions.outcomes import DELETED, SKIPPED, FailureHook, Outcomes
from cleanup_pipeline.actions.recheck import email_of, recheck
from cleanup_pipeline.aws import bucket, emails_table, references, users_table
from cleanup_pipeline.core.decisions import DELETE
from cleanup_pipeline.core.policy import Policy
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.core.wire_decode import Item


def split_into_batches(user_ids: list[str], size: int) -> list[list[str]]:
    """The candidates in batches of at most `size`, sorted by id so that a run's batches are the
    same however the scan ordered them."""
    if size < 1:
        raise ValueError(f"batch size must be positive: {size}")
    ordered = sorted(set(user_ids))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


@dataclass
class CascadeBatch:
    """Users still in the cascade (re-read items, email left out) and the finished outcomes.

    A batch lives in one op's memory and is never stored between steps; the addresses it holds
    for the emails table are dropped as soon as they are archived."""

    items: dict[str, Item]
    outcomes: Outcomes = field(default_factory=lambda: Outcomes(DELETE))
    addresses: dict[str, str] = field(default_factory=dict, repr=False)

    def fail(self, user_id: str, step: str, error: BaseException, hook: FailureHook | None) -> None:
        """The user leaves the batch (keeping their user item) and is recorded as failed."""
        self.items.pop(user_id, None)
        self.addresses.pop(user_id, None)
        self.outcomes.fail(user_id, step, error, hook)


@dataclass(frozen=True)
class RunReferences:
    """What the run reads once of the other tables and shares with every batch: the features
    each delete candidate proposed. (Scoreboards are read by each batch right before it prunes
    them, since other batches change them meanwhile.)"""

    features: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CascadeContext:
    dynamodb: Any
    s3: Any
    settings: Settings
    as_of: int
    policy: Policy
    on_failure: FailureHook | None = None


def _without_email(item: Item) -> Item:
    return {name: value for name, value in item.items() if name != "email"}


def confirm_candidates(ctx: CascadeContext, user_ids: list[str]) -> CascadeBatch:
    """Consistent re-read; only users who are still delete candidates enter the cascade."""
    batch = CascadeBatch(items={})
    try:
        now = int(time.time() * 1000)
        items, dropped = recheck(
            ctx.dynamodb,
            ctx.settings.users_table,
            user_ids,
            DELETE,
            ctx.as_of,
            now,
            ctx.policy,
            ctx.settings.holds_table,
        )
    except Exception as error:
        for user_id in user_ids:
            batch.fail(user_id, "recheck", error, ctx.on_failure)
        return batch
    # Addresses are personal data: kept apart, for the emails table only, and never logged.
    batch.items = {user_id: _without_email(item) for user_id, item in items.items()}
    batch.addresses = {
        user_id: email_of(item) for user_id, item in items.items() if "email" in item
    }
    for user_id, why in dropped.items():
        batch.outcomes.add(user_id, SKIPPED, "recheck", why)
    return batch


def delete_files(ctx: CascadeContext, batch: CascadeBatch) -> CascadeBatch:
    """Delete every object under each user's folder: one listing per user, deletes batched
    across users in requests of 1,000 keys."""
    owner: dict[str, str] = {}
    name = ctx.settings.public_bucket_name
    for user_id in list(batch.items):
        try:
            for key in bucket.list_folder(ctx.s3, name, ctx.settings.user_prefix(user_id)):
                owner[key] = user_id
        except Exception as error:
            batch.fail(user_id, "files", error, ctx.on_failure)
    try:
        refused = bucket.delete_keys(ctx.s3, name, list(owner))
    except Exception as error:
        for user_id in set(owner.values()):
            batch.fail(user_id, "files", error, ctx.on_failure)
        return batch
    first_refusal: dict[str, str] = {}
    for key, why in refused.items():
        first_refusal.setdefault(owner[key], f"{key}: {why}")
    for user_id, why in first_refusal.items():  # one failure per user, not one per key
        batch.fail(user_id, "files", RuntimeError(why), ctx.on_failure)
    return batch


def unlink_features(
    ctx: CascadeContext, batch: CascadeBatch, proposed: dict[str, list[str]]
) -> CascadeBatch:
    """Remove `proposedBy` from the features each user proposed (index read once per run)."""
    table = ctx.settings.features_table
    for user_id in list(batch.items):
        try:
            for feature_id in proposed.get(user_id, []):
                references.unlink_feature(ctx.dynamodb, table, feature_id, user_id)
        except Exception as error:
            batch.fail(user_id, "features", error, ctx.on_failure)
    return batch


def prune_scoreboards(ctx: CascadeContext, batch: CascadeBatch) -> CascadeBatch:
    """Remove the batch's entries from every scoreboard. Each board is read right before it is
    pruned (one GetItem per board and batch), since batches in other processes prune the same
    boards meanwhile; a board that lists none of the batch's users is not written."""
    table = ctx.settings.scoreboards_table
    for period in ctx.settings.scoreboard_periods:
        users = set(batch.items)
        try:
            entries = references.read_scoreboard(ctx.dynamodb, table, period) or []
        except Exception as error:
            for user_id in sorted(users):  # who is on the board is unknown: all keep their item
                batch.fail(user_id, "scoreboards", error, ctx.on_failure)
            continue
        listed = users.intersection(references.entry_id(entry) for entry in entries)
        if not listed:
            continue
        try:
            references.prune_scoreboard(ctx.dynamodb, table, period, listed, entries)
        except Exception as error:
            for user_id in sorted(listed):
                batch.fail(user_id, "scoreboards", error, ctx.on_failure)
    return batch


def archive_emails(ctx: CascadeContext, batch: CascadeBatch) -> CascadeBatch:
    """Keep each address in the emails table (written only where missing, by transactions of
    conditional puts), as re-read by the batch's consistent read; then the batch lets go of
    the addresses."""
    try:
        addresses = [batch.addresses[u] for u in batch.items if u in batch.addresses]
        emails_table.archive_addresses(ctx.dynamodb, ctx.settings.emails_table, addresses)
    except Exception as error:
        for user_id in list(batch.items):
            batch.fail(user_id, "emails", error, ctx.on_failure)
    batch.addresses.clear()
    return batch


def delete_user_items(ctx: CascadeContext, batch: CascadeBatch) -> Outcomes:
    """Last step: delete each user item, only if it still is exactly as re-read."""
    for user_id, item in list(batch.items.items()):
        try:
            if users_table.delete_user(ctx.dynamodb, ctx.settings.users_table, item):
                batch.outcomes.add(user_id, DELETED)
            else:
                batch.outcomes.add(user_id, SKIPPED, "user", "changed during the cascade; kept")
        except Exception as error:
            batch.fail(user_id, "user", error, ctx.on_failure)
            continue
        batch.items.pop(user_id)
    return batch.outcomes


# The cascade's stages, in order, as `delete_accounts` reports them to `on_stage`.
STAGES = ("re-read", "files", "feature references", "scoreboards", "emails table", "user items")


def delete_accounts(
    ctx: CascadeContext,
    user_ids: list[str],
    features: dict[str, list[str]],
    on_stage: Callable[[str], None] | None = None,
) -> Outcomes:
    """One batch through the whole cascade, in order: consistent re-read (anyone who changed
    leaves), files, feature references (`features`: the features each user proposed), scoreboard
    entries, the address kept in the emails table, and last each user item, only if it is still
    exactly as re-read. `on_stage` is told each stage's name as it ends, for progress."""
    done = on_stage or (lambda _stage: None)
    batch = confirm_candidates(ctx, user_ids)
    done(STAGES[0])
    batch = delete_files(ctx, batch)
    done(STAGES[1])
    batch = unlink_features(ctx, batch, features)
    done(STAGES[2])
    batch = prune_scoreboards(ctx, batch)
    done(STAGES[3])
    batch = archive_emails(ctx, batch)
    done(STAGES[4])
    outcomes = delete_user_items(ctx, batch)
    done(STAGES[5])
    return outcomes

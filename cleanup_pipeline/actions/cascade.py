"""Deleting a user and everything they left behind, in an order a crash cannot corrupt.

The steps run over a batch of users (the run splits its candidates into batches that may run in
parallel, in separate processes): the record of what goes (manifest and journal), files
hidden under delete markers, feature references, scoreboard entries, the address in the emails
table, and the user item **last**, conditionally, followed by the proof that nothing of the
user is left in any store (see actions/proof.py) and the ledger events. Nothing that
cannot be undone happens before that conditional delete succeeds: files are hidden, not removed
(without a restore window their versions go once the item is gone), so a user found to be no
longer a delete candidate at the end gets everything back in the same run. Until the user item
is gone the user is still a delete candidate, so a run that dies part-way is finished by the
next run, or given back if the user is no longer a candidate (`settle_unfinished`); every step
is idempotent. A user whose step fails leaves the batch (keeping their user item, and getting
back what was hidden) while the others go on. A deleted user of whom the proof finds something
left (written after the cascade read that store) fails, and stays in the batch's journal: the
next run finishes that deletion in every store and proves it (`settle_unfinished`).
"""

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from cleanup_pipeline.actions.archive import (
    BatchArchive,
    Recovery,
    board_entries,
    deletion_record,
    file_targets,
)
from cleanup_pipeline.actions.ledger import Pair, deleted_elsewhere, forget, reconcile, record
from cleanup_pipeline.actions.outcomes import (
    DELETED,
    DELETED_BY_OTHER_RUN,
    FAILED,
    KEPT,
    KEPT_PARTIAL,
    SKIPPED,
    FailureHook,
    Outcomes,
)
from cleanup_pipeline.actions.proof import (
    VERIFY_STEP,
    NotVerifiedError,
    ProofContext,
    prove_deleted,
)
from cleanup_pipeline.actions.recheck import GONE, email_of, recheck
from cleanup_pipeline.actions.restore import RestoreContext, roll_back
from cleanup_pipeline.actions.store_kinds import (
    Acted,
    AttributeKind,
    Clients,
    FinishContext,
    kind_of,
    list_holders,
    object_records,
)
from cleanup_pipeline.aws import bucket, emails_table, references, users_table
from cleanup_pipeline.aws.requests_table import still_open_erasures
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import (
    ATTRIBUTE,
    FEATURES,
    FILES,
    LIST,
    S3_PREFIX,
    SCOREBOARDS,
    DataMap,
    Store,
    builtin_map,
    extra_stores,
    own_stores,
)
from cleanup_pipeline.core.decisions import DELETE, ERASE, Policy
from cleanup_pipeline.core.recovery import (
    ArchivedFile,
    DeletionRecord,
    JournalEntry,
    ObjectVersion,
    removed_by_store,
    verified_event,
)
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.core.wire import Item

# Conditional deletes of one user item refused while the user stayed a delete candidate.
MAX_DELETE_ATTEMPTS = 3
# Lost files named in a report's error, the rest counted.
MAX_NAMED_FILES = 20


def split_into_batches(user_ids: list[str], size: int) -> list[list[str]]:
    """The candidates in batches of at most `size`, sorted by id so that a run's batches are the
    same however the scan ordered them."""
    if size < 1:
        raise ValueError(f"batch size must be positive: {size}")
    ordered = sorted(set(user_ids))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


@dataclass
class Folders:
    """One `s3_prefix` store's folders while a batch deletes (the app's own files, or any other
    such store): the current objects of each user's folder as listed, to hide; without a
    restore window each user's (key, version id) pairs to remove once the item is gone, and
    the users whose folder must be listed again for it (see `_hide_folders`)."""

    targets: dict[str, list[ObjectVersion]] = field(default_factory=dict)
    leftovers: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    relist: set[str] = field(default_factory=set)


@dataclass
class CascadeBatch:
    """Users still in the cascade (re-read items, email left out) and the finished outcomes.

    A batch lives in one op's memory and is never stored between steps; the addresses it holds
    for the emails table are dropped as soon as they are archived."""

    items: dict[str, Item]
    outcomes: Outcomes = field(default_factory=lambda: Outcomes(DELETE))
    addresses: dict[str, str] = field(default_factory=dict, repr=False)
    # Filled by `record_batch`: the whole items for the manifest (until it is written), each
    # `s3_prefix` store's folders as listed (by store name), the boards as read, and what was
    # written to the archive.
    full_items: dict[str, Item] = field(default_factory=dict, repr=False)
    folders: dict[str, Folders] = field(default_factory=dict)
    boards: dict[str, list[Any] | None] = field(default_factory=dict)
    archive: BatchArchive | None = None
    # Users whose data the cascade began to hide: given back unless their item goes.
    started: set[str] = field(default_factory=set)
    # Per `attribute` store, the items the cascade acts on for each user: looked up again by
    # the proof.
    acted: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Per store other than the app's own (see `remove_from_stores`), what each user has there,
    # as recorded in the manifest.
    gathered: dict[str, dict[str, list[Any]]] = field(default_factory=dict, repr=False)

    def fail(self, user_id: str, step: str, error: BaseException, hook: FailureHook | None) -> None:
        """The user leaves the batch (keeping their user item) and is recorded as failed."""
        self.items.pop(user_id, None)
        self.addresses.pop(user_id, None)
        self.full_items.pop(user_id, None)
        self.outcomes.fail(user_id, step, error, hook)


@dataclass(frozen=True)
class RunReferences:
    """What the run reads once of the other tables and shares with every batch: the features
    each delete candidate proposed, and the items of list stores without named items that hold
    a candidate. (Scoreboards and named list items are read by each batch right before it
    prunes them, since other batches change them meanwhile.)"""

    features: dict[str, list[str]] = field(default_factory=dict)
    # Per `list` store without `items`: the items holding a candidate's entry (their keys as
    # text) -> the candidates they hold, from one Scan of the table per run.
    lists: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Per `attribute` store other than the app's own, the keys of the items whose attribute
    # names each candidate (one Scan of its table per run; only the candidates' keys are kept).
    attributes: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    # Deletions a crashed run began and this run may finish (see actions/ledger.py).
    carried: dict[Pair, JournalEntry] = field(default_factory=dict)
    recorded_late: int = 0
    verified_late: int = 0  # deletions of runs that died, proved by this run


def run_lists(
    dynamodb: Any, data_map: DataMap, settings: Settings, candidates: list[str]
) -> dict[str, dict[str, list[str]]]:
    """For each `list` store without `items` (other than the app's own), one Scan of its table:
    the items holding an entry of a candidate -> those candidates (see `RunReferences.lists`)."""
    if not candidates:
        return {}
    return {
        store.name: list_holders(dynamodb, store, candidates)
        for store in extra_stores(data_map, settings)
        if store.kind == LIST and store.items is None
    }


def scan_attribute_stores(
    clients: Clients, data_map: DataMap, settings: Settings, candidates: Collection[str]
) -> dict[str, dict[str, list[Any]]]:
    """The run's one Scan of each `attribute` store other than the app's own: per store, the
    keys of the items naming each candidate (see `RunReferences.attributes`)."""
    if not candidates:
        return {}
    return {
        store.name: AttributeKind().find(clients, store, candidates)
        for store in extra_stores(data_map, settings)
        if store.kind == ATTRIBUTE
    }


@dataclass(frozen=True)
class CascadeContext:
    dynamodb: Any
    s3: Any
    settings: Settings
    as_of: int
    policy: Policy
    on_failure: FailureHook | None = None
    recovery: Recovery | None = None
    # The checked data map; None: the built-in one.
    mapped: DataMap | None = None
    # The run's `RunReferences.lists`; a `list` store without `items` missing here is scanned
    # by each batch.
    lists: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    # While a batch removes from its stores: records more of a store for some users (a list
    # read again holds their entries elsewhere), in a supplementary manifest.
    record_more: Callable[[str, dict[str, list[Any]]], None] | None = None
    # `RunReferences.attributes`: what the run's scans of `attribute` stores found.
    scanned: Mapping[str, Mapping[str, list[Any]]] = field(default_factory=dict)
    # A person's own erasure: {user id: their open erase request id}; the settings then carry
    # the erasure's restore window. None: deletions of inactive users.
    erasures: Mapping[str, str] | None = None

    @property
    def action(self) -> Decision:
        return DELETE if self.erasures is None else ERASE

    @property
    def data_map(self) -> DataMap:
        return builtin_map(self.settings) if self.mapped is None else self.mapped

    @property
    def extra_stores(self) -> list[Store]:
        return extra_stores(self.data_map, self.settings)

    @property
    def own(self) -> frozenset[str]:
        """The app's own stores the map declares as built-in (see `own_stores`): each of the
        cascade's own steps acts only on those."""
        return own_stores(self.data_map, self.settings)

    def proof(self, every_version_gone: bool) -> ProofContext:
        """What the proof of deletion reads with; `every_version_gone` for deletions made
        without a restore window."""
        return ProofContext(
            self.dynamodb, self.s3, self.settings.users_table, self.data_map, every_version_gone
        )


def _without_email(item: Item) -> Item:
    return {name: value for name, value in item.items() if name != "email"}


def _recheck(
    ctx: CascadeContext, user_ids: list[str], whole_items: bool
) -> tuple[dict[str, Item], dict[str, str]]:
    """The users still candidates of the context's action, by consistent reads; for an
    erasure, their requests are read again too (still open) before the user is."""
    erasures = None
    if ctx.erasures is not None:
        asked = {u: ctx.erasures[u] for u in user_ids if u in ctx.erasures}
        table = ctx.settings.requests_table
        erasures = still_open_erasures(ctx.dynamodb, table, asked) if table else {}
    return recheck(
        ctx.dynamodb,
        ctx.settings.users_table,
        user_ids,
        ctx.action,
        ctx.as_of,
        now_ms(),
        ctx.policy,
        ctx.settings.holds_table,
        whole_items=whole_items,
        erasures=erasures,
    )


def confirm_candidates(ctx: CascadeContext, user_ids: list[str]) -> CascadeBatch:
    """Consistent re-read; only users who are still candidates enter the cascade."""
    batch = CascadeBatch(items={}, outcomes=Outcomes(ctx.action))
    try:
        items, dropped = _recheck(ctx, user_ids, ctx.settings.restore_window_days > 0)
    except Exception as error:
        for user_id in user_ids:
            batch.fail(user_id, "recheck", error, ctx.on_failure)
        return batch
    # Addresses are personal data: kept apart, for the emails table only, and never logged.
    batch.items = {user_id: _without_email(item) for user_id, item in items.items()}
    if ctx.settings.restore_window_days > 0:
        batch.full_items = items  # for the manifest only; dropped once it is written
    batch.addresses = {
        user_id: email_of(item) for user_id, item in items.items() if "email" in item
    }
    for user_id, why in dropped.items():
        batch.outcomes.add(user_id, SKIPPED, "recheck", why)
    return batch


def record_batch(
    ctx: CascadeContext, batch: CascadeBatch, proposed: dict[str, list[str]]
) -> CascadeBatch:
    """Before anything is removed: list each user's folder (one version listing per user, all
    pages), read the scoreboards (one GetItem per board), and write the manifest (with a
    restore window) and the journal (without one, it holds the same record, item left out). A
    user whose folder cannot be listed, or a batch whose archive cannot be written, loses
    nothing."""
    window = ctx.settings.restore_window_days
    files: dict[str, tuple[list[ArchivedFile], int]] = {}
    if FILES in ctx.own:
        files = {
            user_id: (archived, len(archived))
            for user_id, archived in _list_folders(ctx, batch, _app_files(ctx)).items()
        }
    for period in _own_boards(ctx):
        try:
            batch.boards[period] = references.read_scoreboard(
                ctx.dynamodb, ctx.settings.scoreboards_table, period
            )
        except Exception as error:  # who is on the board is unknown: all keep their item
            for user_id in sorted(batch.items):
                batch.fail(user_id, "scoreboards", error, ctx.on_failure)
    for store in ctx.extra_stores:
        _gather(ctx, batch, store)
    if not batch.items:
        return batch
    for store in ctx.data_map.of_kind(ATTRIBUTE):
        found = batch.gathered.get(store.name)  # None: the app's own features store
        batch.acted[store.name] = {
            user_id: _own_features(ctx, proposed).get(user_id, [])
            if found is None
            else found.get(user_id, [])
            for user_id in batch.items
        }
    try:
        if ctx.recovery is None:
            raise RuntimeError("a deletion needs an archive to write its journal to")
        archive = BatchArchive(ctx.recovery, window, ctx.as_of)
        archive.write(
            {user_id: batch.full_items.get(user_id, item) for user_id, item in batch.items.items()},
            files,
            {user_id: _own_features(ctx, proposed).get(user_id, []) for user_id in batch.items},
            board_entries(batch.boards, set(batch.items)),
            {
                user_id: {name: found[user_id] for name, found in batch.gathered.items()}
                for user_id in batch.items
            },
        )
    except Exception as error:
        for user_id in list(batch.items):
            batch.fail(user_id, "archive", error, ctx.on_failure)
        return batch
    finally:
        batch.full_items.clear()  # addresses: kept no longer than needed
    batch.archive = archive
    return batch


def _app_files(ctx: CascadeContext) -> Store:
    """The app's own `files` store, as the built-in map has it."""
    return next(s for s in builtin_map(ctx.settings).stores if s.name == FILES)


def _own_boards(ctx: CascadeContext) -> tuple[str, ...]:
    """The scoreboards the cascade's own step prunes: none unless the map declares the app's
    own scoreboards store."""
    return ctx.settings.scoreboard_periods if SCOREBOARDS in ctx.own else ()


def _own_features(ctx: CascadeContext, proposed: dict[str, list[str]]) -> dict[str, list[str]]:
    """The features the cascade's own step unlinks: none unless the map declares the app's own
    features store."""
    return proposed if FEATURES in ctx.own else {}


def _folder_stores(ctx: CascadeContext) -> list[Store]:
    """Every `s3_prefix` store the cascade empties: the app's own files (when the map declares
    them), then the map's others."""
    own = [_app_files(ctx)] if FILES in ctx.own else []
    return [*own, *(s for s in ctx.extra_stores if s.kind == S3_PREFIX)]


def _list_folders(
    ctx: CascadeContext, batch: CascadeBatch, store: Store
) -> dict[str, list[ArchivedFile]]:
    """One version listing of each user's folder in an `s3_prefix` store (all pages): the
    current objects, to hide and to record by key and version id; without a restore window
    also every version and marker found, to remove once the user item is gone. A user whose
    folder cannot be listed fails, and loses nothing."""
    folders = batch.folders.setdefault(store.name, Folders())
    recorded: dict[str, list[ArchivedFile]] = {}
    for user_id in list(batch.items):
        try:
            found = bucket.list_versions(ctx.s3, store.bucket, store.prefix_of(user_id))
        except Exception as error:
            batch.fail(user_id, store.name, error, ctx.on_failure)
            continue
        folders.targets[user_id], recorded[user_id] = file_targets(found)
        if ctx.settings.restore_window_days == 0:
            folders.leftovers[user_id] = {(v.key, v.version_id) for v in found}
    return recorded


def _gather(ctx: CascadeContext, batch: CascadeBatch, store: Store) -> None:
    """What the batch's users have in a store other than the app's own, before anything goes:
    per user where the kind reads per user (a failed read fails that user alone), else for the
    batch at once. An `s3_prefix` store's folders are listed as the app's own files are, the
    listing kept with the batch for their removal."""
    found = batch.gathered.setdefault(store.name, {})
    if store.kind == S3_PREFIX:
        listed = _list_folders(ctx, batch, store)
        found.update((user_id, object_records(files)) for user_id, files in listed.items())
        return
    kind = kind_of(store)
    groups = [[u] for u in batch.items] if kind.per_user_proof else [sorted(batch.items)]
    for group in groups:
        try:
            found.update(kind.gather(ctx, store, group))
        except Exception as error:
            for user_id in group:
                batch.fail(user_id, store.name, error, ctx.on_failure)
    for user_id in batch.items:
        acted = kind.acted_on(store, found.get(user_id, []))
        if acted:
            batch.acted.setdefault(store.name, {})[user_id] = acted


def delete_files(ctx: CascadeContext, batch: CascadeBatch) -> CascadeBatch:
    """Hide what `record_batch` found current under each user's folder under delete markers, in
    requests of 1,000 shared across users: the versions stay (until the purge with a restore
    window, until the user item is gone without one). On a bucket that keeps no versions the
    objects go at once: the one case where a user who comes back loses files."""
    if FILES not in ctx.own:
        return batch
    return _hide_folders(ctx, batch, _app_files(ctx))


def _hide_folders(ctx: CascadeContext, batch: CascadeBatch, store: Store) -> CascadeBatch:
    """`delete_files` for any `s3_prefix` store: the current objects its listing found in the
    batch's users' folders hidden in its bucket, in requests of 1,000 shared across users."""
    folders = batch.folders.setdefault(store.name, Folders())
    owner: dict[str, str] = {}
    for user_id in [u for u in batch.items if u not in folders.targets]:
        batch.fail(user_id, store.name, RuntimeError("folder not listed"), ctx.on_failure)
    for user_id in batch.items:
        owner.update((version.key, user_id) for version in folders.targets[user_id])
    batch.started.update(batch.items)
    try:
        hidden = bucket.hide_objects(ctx.s3, store.bucket, list(owner))
    except Exception as error:
        for user_id in set(owner.values()):
            batch.fail(user_id, store.name, error, ctx.on_failure)
        return batch
    first_refusal: dict[str, str] = {}
    for key, why in hidden.refused.items():
        first_refusal.setdefault(owner[key], f"{key}: {why}")
    for user_id, why in first_refusal.items():  # one failure per user, not one per key
        batch.fail(user_id, store.name, RuntimeError(why), ctx.on_failure)
    for user_id in (u for u in batch.items if u in folders.leftovers):
        _after_hiding(folders, user_id, hidden)
    return batch


def _after_hiding(folders: Folders, user_id: str, hidden: bucket.Hidden) -> None:
    """Without a restore window: what must go once the item is gone. A marker made over a
    version goes with it; where no marker was made (or it took the place of the version, on a
    bucket whose versioning was suspended) that version is gone already."""
    leftovers = folders.leftovers[user_id]
    for version in folders.targets[user_id]:
        if version.key in hidden.retried or version.key not in hidden.markers:
            folders.relist.add(user_id)
            continue
        marker = hidden.markers[version.key]
        if marker is None or marker == version.version_id:
            leftovers.discard((version.key, version.version_id))
        if marker is not None:
            leftovers.add((version.key, marker))


def unlink_features(
    ctx: CascadeContext, batch: CascadeBatch, proposed: dict[str, list[str]]
) -> CascadeBatch:
    """Remove `proposedBy` from the features each user proposed (index read once per run)."""
    table, proposed = ctx.settings.features_table, _own_features(ctx, proposed)
    for user_id in list(batch.items):
        try:
            for feature_id in proposed.get(user_id, []):
                references.unlink_feature(ctx.dynamodb, table, feature_id, user_id)
        except Exception as error:
            batch.fail(user_id, "features", error, ctx.on_failure)
    return batch


def prune_scoreboards(ctx: CascadeContext, batch: CascadeBatch) -> CascadeBatch:
    """Remove the batch's entries from every scoreboard, as `record_batch` read it (one GetItem
    per board and batch). Batches in other processes prune the same boards meanwhile: a
    removal whose positions shifted is refused, and the board read again (the new positions
    recorded in a supplementary manifest first); a board that lists none of the batch's users is
    not written."""
    table = ctx.settings.scoreboards_table
    for period in _own_boards(ctx):
        users = set(batch.items)
        if not users:
            break
        if period not in batch.boards:  # not read by `record_batch` (failed there, or not run)
            try:
                batch.boards[period] = references.read_scoreboard(ctx.dynamodb, table, period)
            except Exception as error:
                for user_id in sorted(users):
                    batch.fail(user_id, "scoreboards", error, ctx.on_failure)
                continue
        entries = batch.boards[period] or []
        listed = users.intersection(references.entry_id(entry) for entry in entries)
        if not listed:
            continue
        on_reread = None
        if batch.archive is not None:
            on_reread = partial(batch.archive.supplement, user_ids=listed)
        try:
            references.prune_scoreboard(
                ctx.dynamodb, table, period, listed, entries, on_reread=on_reread
            )
        except Exception as error:
            for user_id in sorted(listed):
                batch.fail(user_id, "scoreboards", error, ctx.on_failure)
    return batch


def remove_from_stores(ctx: CascadeContext, batch: CascadeBatch) -> CascadeBatch:
    """In each store other than the app's own, in the map's order, what `record_batch` found of
    the batch's users goes, through the store kind's functions; a user whose removal fails
    leaves the batch (and gets back what was removed). An `s3_prefix` store's objects are
    hidden as the app's own files are (see `delete_files`)."""
    acting = ctx
    if batch.archive is not None:
        acting = replace(ctx, record_more=batch.archive.supplement_store)
    for store in ctx.extra_stores:
        if store.kind == S3_PREFIX:
            _hide_folders(ctx, batch, store)
            continue
        found = batch.gathered.get(store.name, {})
        records = {user_id: found.get(user_id, []) for user_id in batch.items}
        try:
            failed = kind_of(store).remove(acting, store, records)
        except Exception as error:
            failed = dict.fromkeys(records, f"{type(error).__name__}: {error}")
        for user_id, why in failed.items():
            batch.fail(user_id, store.name, RuntimeError(why), ctx.on_failure)
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


@dataclass
class Fates:
    """How each user's conditional delete ended."""

    deleted: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)  # the item was gone: another run's doing
    back: dict[str, str] = field(default_factory=dict)  # no longer a candidate: why
    # The delete's answer, or the re-read after a refusal, never came: whether the item is gone
    # is unknown, so nothing is given back and the journal keeps the user for the next run.
    unsure: set[str] = field(default_factory=set)


def _delete_items(ctx: CascadeContext, batch: CascadeBatch) -> Fates:
    """Each user item deleted on condition it is still as re-read. A refused delete means the
    item changed: it is re-read consistently and judged again. Gone: another run deleted it (or
    this run did, its answer lost: see `_gone`). No longer a candidate: the user is back. Still
    a candidate (an attribute the rules ignore changed): deleted again against the fresh item,
    a bounded number of times."""
    fates, pending = Fates(), dict(batch.items)
    table, window = ctx.settings.users_table, ctx.settings.restore_window_days
    for _ in range(MAX_DELETE_ATTEMPTS):
        refused = []
        for user_id, item in pending.items():
            try:
                if users_table.delete_user(ctx.dynamodb, table, item):
                    fates.deleted.append(user_id)
                else:
                    refused.append(user_id)
            except Exception as error:
                batch.fail(user_id, "user", error, ctx.on_failure)
                fates.unsure.add(user_id)
        pending = {}
        if not refused:
            break
        try:
            fresh, dropped = _recheck(ctx, refused, window > 0)
        except Exception as error:
            for user_id in refused:
                batch.fail(user_id, "user", error, ctx.on_failure)
                fates.unsure.add(user_id)
            break
        for user_id, why in dropped.items():
            if why == GONE:
                fates.elsewhere.append(user_id)
            else:
                fates.back[user_id] = why
        for user_id, item in fresh.items():
            try:
                if batch.archive is not None:
                    batch.archive.record_item(user_id, item)
            except Exception as error:
                batch.fail(user_id, "archive", error, ctx.on_failure)
                continue
            pending[user_id] = _without_email(item)
    for user_id in pending:
        why = f"the user item changed at each of {MAX_DELETE_ATTEMPTS} deletes; kept"
        batch.fail(user_id, "user", RuntimeError(why), ctx.on_failure)
    for user_id in [*fates.deleted, *fates.elsewhere, *fates.back]:
        batch.items.pop(user_id, None)
    _gone(ctx, batch, fates)
    return fates


def _gone(ctx: CascadeContext, batch: CascadeBatch, fates: Fates) -> None:
    """A user item found gone after a refused delete was deleted by another run, unless no
    other run's journal nor the ledger holds that deletion: then it was this run's own delete,
    whose answer was lost and whose retry the item's absence refused."""
    if batch.archive is None:
        return
    for user_id in list(fates.elsewhere):
        pair = (user_id, batch.archive.entries[user_id].deletion_key)
        try:
            other = deleted_elsewhere(batch.archive.store, pair, batch.archive.journal)
        except Exception:
            other = True  # its journal stays with ours dropped: the other run records the event
        if not other:
            fates.elsewhere.remove(user_id)
            fates.deleted.append(user_id)


def _remove_versions(ctx: CascadeContext, batch: CascadeBatch, fates: Fates) -> dict[str, str]:
    """Without a restore window, once the user items are gone: every version and delete marker
    under their folders in each `s3_prefix` store (see `_remove_folder_versions`). Returns
    {user: error} for what remains."""
    if ctx.settings.restore_window_days > 0:
        return {}
    failed: dict[str, str] = {}
    for store in _folder_stores(ctx):
        folders = batch.folders.get(store.name, Folders())
        for user_id, why in _remove_folder_versions(ctx, folders, store, fates).items():
            failed.setdefault(user_id, why)
    return failed


def _remove_folder_versions(
    ctx: CascadeContext, folders: Folders, store: Store, fates: Fates
) -> dict[str, str]:
    """Every version and delete marker under the deleted users' folders of one store, from what
    the listing found and the markers the cascade made, in requests of 1,000 shared across the
    batch's users. A folder is listed again where the markers made are not all known (a
    request sent twice), and for a user another run deleted (it may have listed before this
    run's markers). Returns {user: error} for what remains."""
    name = store.bucket
    again = [u for u in fates.deleted if u in folders.relist] + fates.elsewhere
    owner: dict[str, str] = {}
    targets: list[tuple[str, str | None]] = []
    for user_id in (u for u in fates.deleted if u not in folders.relist):
        for key, version in sorted(folders.leftovers.get(user_id, ())):
            owner[key] = user_id
            targets.append((key, version))
    failed: dict[str, str] = {}
    try:
        refused = bucket.delete_targets(ctx.s3, name, targets)
    except Exception as error:
        refused = dict.fromkeys(owner, f"{type(error).__name__}: {error}")
    for key, why in refused.items():
        failed.setdefault(owner[key], f"{key}: {why}")
    folders_again = {store.prefix_of(user_id): user_id for user_id in again}
    for prefix, why in bucket.remove_folders(ctx.s3, name, sorted(folders_again)).items():
        failed[folders_again[prefix]] = why
    return failed


def _give_back(ctx: CascadeContext, batch: CascadeBatch, user_ids: list[str]) -> dict[str, Any]:
    """What the cascade hid or removed of users whose item stays, put back as a restore would
    (see actions/restore.py `roll_back`): {user: the plan applied, or the error}."""
    results: dict[str, Any] = {}
    if batch.archive is None or not user_ids:
        return results
    archive = batch.archive
    restore = RestoreContext(
        ctx.dynamodb, ctx.s3, ctx.settings, archive.store, archive.recovery.run_id, ctx.mapped
    )
    for user_id in user_ids:
        try:
            record = deletion_record(archive.store, archive.entries[user_id])
            results[user_id] = roll_back(restore, record, batch.boards)
        except Exception as error:
            results[user_id] = error
    return results


def _lost_files(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_NAMED_FILES])
    more = f" and {len(keys) - MAX_NAMED_FILES} more" if len(keys) > MAX_NAMED_FILES else ""
    return f"{len(keys)} files lost, the bucket keeping no versions: {shown}{more}"


def delete_user_items(ctx: CascadeContext, batch: CascadeBatch) -> Outcomes:
    """Last step: each user item deleted on condition it is still a delete candidate (see
    `_delete_items`); without a restore window, the versions of the deleted users' files then
    go; a user who is no longer a candidate, or who failed a step after the cascade began hiding
    their data, gets back what it had hidden or removed; each deletion is recorded in the
    ledger. A ledger write that fails leaves the journal entry, so the next run records it: the
    user still counts as deleted."""
    fates = _delete_items(ctx, batch)
    stuck = _remove_versions(ctx, batch, fates)
    window = ctx.settings.restore_window_days
    proof = prove_deleted(
        ctx.proof(every_version_gone=window == 0),
        [u for u in fates.deleted if u not in stuck],  # the next run removes and proves these
        batch.acted,
    )
    verified = set(proof.verified)
    unproved = {u: proof.reason(u) for u in proof.users if u not in verified}
    batch.outcomes.verified = len(verified)
    failed = {row["id"] for row in batch.outcomes.rows if row["outcome"] == FAILED}
    to_give_back = [*fates.back, *sorted((failed & batch.started) - fates.unsure)]
    given = _give_back(ctx, batch, to_give_back)
    if batch.archive is not None:  # the report's counts by store: those of the `deleted` event
        for user_id in fates.deleted:
            entry = batch.archive.entries[user_id]
            batch.outcomes.removed[user_id] = removed_by_store(entry, ctx.data_map)
    for user_id in fates.deleted:
        if user_id in unproved:  # the item is gone: the journal keeps the rest for the next run
            why = unproved[user_id]
            batch.outcomes.fail(user_id, VERIFY_STEP, NotVerifiedError(why), ctx.on_failure, why)
            continue
        batch.outcomes.add(user_id, DELETED)
        if user_id in stuck and ctx.on_failure is not None:  # the next run removes them
            ctx.on_failure(user_id, "delete.files", RuntimeError(stuck[user_id]))
    for user_id in fates.elsewhere:
        why = "the user item was already gone: another run deleted the account"
        if user_id in stuck:
            batch.outcomes.fail(user_id, "files", RuntimeError(stuck[user_id]), ctx.on_failure)
        else:
            batch.outcomes.add(user_id, DELETED_BY_OTHER_RUN, "user", why)
    for user_id, result in given.items():
        if user_id not in fates.back:  # failed earlier: that failure stays its outcome
            if isinstance(result, Exception) and ctx.on_failure is not None:
                ctx.on_failure(user_id, "delete.rollback", result)
            continue
        kept = f"kept: {fates.back[user_id]} when the user item was to go"
        if isinstance(result, Exception):
            batch.outcomes.fail(user_id, "rollback", result, ctx.on_failure)
        elif result.lost:
            batch.outcomes.add(user_id, KEPT_PARTIAL, "user", f"{kept}; {_lost_files(result.lost)}")
        else:
            batch.outcomes.add(user_id, KEPT, "user", f"{kept}; what the cascade removed is back")
    settled = {
        *(u for u in fates.deleted if u not in stuck and u not in unproved),
        *(u for u in fates.elsewhere if u not in stuck),
        *(u for u, result in given.items() if not isinstance(result, Exception)),
    }
    if batch.archive is not None:
        try:
            unrecorded = batch.archive.record_deleted(
                fates.deleted, settled, ctx.data_map, verified
            )
            error: BaseException = RuntimeError("ledger event not written; the next run will")
        except Exception as raised:
            unrecorded, error = fates.deleted, raised
        for user_id in unrecorded:
            if ctx.on_failure is not None:
                ctx.on_failure(user_id, "delete.ledger", error)
    return batch.outcomes


# The cascade's stages, in order, as `delete_accounts` reports them to `on_stage`.
STAGES = (
    "re-read",
    "archive",
    "files",
    "feature references",
    "scoreboards",
    "emails table",
    "user items",
)


def delete_accounts(
    ctx: CascadeContext,
    user_ids: list[str],
    features: dict[str, list[str]],
    on_stage: Callable[[str], None] | None = None,
) -> Outcomes:
    """One batch through the whole cascade, in order: consistent re-read (anyone who changed
    leaves), manifest and journal (before anything is removed), files, feature references
    (`features`: the features each user proposed), scoreboard entries, the address kept in the
    emails table, and last each user item, only if it is still exactly as re-read, with its
    ledger event. `on_stage` is told each stage's name as it ends, for progress."""
    done = on_stage or (lambda _stage: None)
    batch = confirm_candidates(ctx, user_ids)
    done(STAGES[0])
    batch = record_batch(ctx, batch, features)
    done(STAGES[1])
    batch = delete_files(ctx, batch)
    done(STAGES[2])
    batch = unlink_features(ctx, batch, features)
    done(STAGES[3])
    batch = prune_scoreboards(ctx, batch)
    batch = remove_from_stores(ctx, batch)
    done(STAGES[4])
    batch = archive_emails(ctx, batch)
    done(STAGES[5])
    outcomes = delete_user_items(ctx, batch)
    done(STAGES[6])
    return outcomes


@dataclass(frozen=True)
class Settled:
    """What a run did, before acting, with the deletions that runs which died left unfinished:
    late `deleted` events recorded, data given back to users who are no longer delete
    candidates (with the files that could not come back), folders of deleted users emptied
    (no restore window), deletions whose item is gone finished in every store and proved
    (`verified`), and the deletions still under way that this run's cascade carries on.
    `failed` maps a user to why their deletion stays unsettled, for the next run."""

    carried: dict[Pair, JournalEntry] = field(default_factory=dict)
    recorded_late: int = 0
    given_back: list[str] = field(default_factory=list)
    lost_files: dict[str, list[str]] = field(default_factory=dict)
    emptied: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def settle_unfinished(ctx: CascadeContext) -> Settled:
    """Finish what the journals of runs that died hold, whatever this run's guards decide: a
    user whose item is gone gets the `deleted` event (and, without a restore window, every
    version under their folder goes), what is left of them in any store is removed and the
    deletion proved, with its `verified` event (a run that died before its proof, or whose
    proof found something written after the cascade read that store, leaves such users); a
    user whose item is there but who is no longer a delete candidate (came back, subscribed,
    lifetime deal, held) gets back what the dead run had hidden or removed; the others are
    carried on by this run's cascade. A person's own erasure (its entry names the request) is
    judged as an erasure instead: carried on by this run's erasure batches while its request
    is open and the user is still an erase candidate (not invalid, held or paying), given back
    otherwise."""
    assert ctx.recovery is not None
    store, run_id = ctx.recovery.store, ctx.recovery.run_id
    late = reconcile(store, ctx.dynamodb, ctx.settings.users_table, run_id, ctx.data_map)
    # A person's own erasure is not judged by the inactivity rules (its user is usually active):
    # it goes on while its request is open and the user may still be erased.
    erasing = {p: e for p, e in (*late.carried.items(), *late.to_give_back.items()) if e.request}
    carried = {p: e for p, e in late.carried.items() if p not in erasing}
    to_give_back = {p: e for p, e in late.to_give_back.items() if p not in erasing}
    if carried:
        still, _ = recheck(
            ctx.dynamodb,
            ctx.settings.users_table,
            sorted({user_id for user_id, _ in carried}),
            DELETE,
            ctx.as_of,
            now_ms(),
            ctx.policy,
            ctx.settings.holds_table,
        )
        for pair in [p for p in carried if p[0] not in still]:
            to_give_back[pair] = carried.pop(pair)
    if erasing:
        erasable = _still_erasable(ctx, {user_id: e.request for (user_id, _), e in erasing.items()})
        for pair, entry in erasing.items():
            (carried if pair[0] in erasable else to_give_back)[pair] = entry
    done: set[Pair] = set()
    given_back: list[str] = []
    lost: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    restore = RestoreContext(ctx.dynamodb, ctx.s3, ctx.settings, store, run_id, ctx.mapped)
    for pair, entry in sorted(to_give_back.items()):
        try:
            plan = roll_back(restore, deletion_record(store, entry))
        except Exception as error:
            failed[pair[0]] = f"not given back: {type(error).__name__}: {error}"
            continue
        given_back.append(pair[0])
        if plan.lost:
            lost[pair[0]] = plan.lost
        done.add(pair)
    for folder_store in _folder_stores(ctx):  # every version under each s3_prefix store's folder
        folders: dict[str, list[Pair]] = {}
        for pair in late.to_purge:
            folders.setdefault(folder_store.prefix_of(pair[0]), []).append(pair)
        stuck = bucket.remove_folders(ctx.s3, folder_store.bucket, sorted(folders))
        for prefix, pairs in folders.items():
            if prefix in stuck:
                failed.setdefault(pairs[0][0], f"versions not removed: {stuck[prefix]}")
    done.update(
        pair for pair in late.to_purge if pair[0] not in failed and pair not in late.to_verify
    )
    to_verify = {pair: e for pair, e in late.to_verify.items() if pair[0] not in failed}
    verified = _finish_and_prove(ctx, to_verify, failed)
    done.update(pair for pair in to_verify if pair[0] in verified)
    forget(store, done)
    return Settled(
        carried=carried,
        recorded_late=len(late.recorded),
        given_back=given_back,
        lost_files=lost,
        emptied=sorted({user_id for user_id, _ in late.to_purge} - set(failed)),
        verified=sorted(verified),
        failed=failed,
    )


def _still_erasable(ctx: CascadeContext, asked: Mapping[str, str | None]) -> set[str]:
    """The users of `asked` ({user: the erase request their unfinished erasure answers}) who
    are still erase candidates: their request still open (read consistently), and neither
    invalid, held nor paying, by a consistent re-read of their item and holds."""
    table = ctx.settings.requests_table
    requests = {user_id: request for user_id, request in asked.items() if request}
    still_open = still_open_erasures(ctx.dynamodb, table, requests) if table else {}
    if not still_open:
        return set()
    kept, _ = recheck(
        ctx.dynamodb,
        ctx.settings.users_table,
        sorted(still_open),
        ERASE,
        ctx.as_of,
        now_ms(),
        ctx.policy,
        ctx.settings.holds_table,
        erasures=still_open,
    )
    return set(kept)


def _finish_and_prove(
    ctx: CascadeContext, deletions: dict[Pair, JournalEntry], failed: dict[str, str]
) -> set[str]:
    """Deletions whose user item is gone, finished in every store as the cascade would, from
    what their record holds (with a restore window, files left current are hidden under
    markers, their versions kept until the purge; without one the folder was emptied), then
    proved, each `verified` event recorded. Returns the users verified; `failed` gets why the
    others are not."""
    assert ctx.recovery is not None
    if not deletions:
        return set()
    archive = ctx.recovery.store
    records = {}
    for pair, entry in sorted(deletions.items()):
        try:
            records[pair] = deletion_record(archive, entry)
        except Exception as error:
            failed[pair[0]] = f"not verified: {type(error).__name__}: {error}"
    users = sorted({user_id for user_id, _ in records})
    by_user: dict[str, list[DeletionRecord]] = {}
    for (user_id, _), removed in sorted(records.items()):
        by_user.setdefault(user_id, []).append(removed)
    windowed = {u for (u, _), e in deletions.items() if e.restorable_until is not None}
    extra = frozenset(store.name for store in ctx.extra_stores)
    finishing = FinishContext(ctx.dynamodb, ctx.s3, by_user, frozenset(windowed), extra)
    acted: Acted = {}
    for data_store in ctx.data_map.stores:
        try:
            kind_of(data_store).finish(finishing, data_store, acted)
        except Exception as error:  # the proof tells who is left
            for user_id in users:
                failed.setdefault(user_id, f"{data_store.name}: {type(error).__name__}: {error}")
    verified: set[str] = set()
    for without_window in (True, False):
        group = sorted(
            {
                user_id
                for (user_id, _), entry in deletions.items()
                if (entry.restorable_until is None) == without_window and user_id in users
            }
        )
        proof = prove_deleted(ctx.proof(every_version_gone=without_window), group, acted)
        verified.update(proof.verified)
        for user_id in set(group) - set(proof.verified):
            failed[user_id] = proof.reason(user_id)
    at = now_ms()
    for (user_id, deletion), _ in sorted(records.items()):
        if user_id not in verified:
            continue
        request = deletions[(user_id, deletion)].request
        try:
            record(
                archive,
                user_id,
                verified_event(deletion, ctx.recovery.run_id, at, ctx.data_map, request),
            )
        except Exception as error:
            verified.discard(user_id)
            failed[user_id] = f"verified event not written: {type(error).__name__}: {error}"
    for user_id in verified:
        failed.pop(user_id, None)  # finished in spite of an error above: the proof says so
    return verified

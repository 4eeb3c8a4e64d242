"""Restore a deleted user from the archive: read, plan (core/recovery.py), apply.

Writes go in an order that makes an interrupted restore finish when run again: files (delete
markers removed), features, scoreboard entries, and last the user item, conditionally, so a
second run still finds no item and plans only what is left. Then the `restored` ledger event.
Just before the item, a record of the restore goes to the archive (removed after the event): a
restore that died after putting the item back is finished by the next one, which finds the
item the record describes and records the event; an account created anew is still refused.
"""

from dataclasses import dataclass
from typing import Any

from cleanup_pipeline.actions.ledger import read_ledger, reconcile, record
from cleanup_pipeline.actions.store_kinds import kind_of
from cleanup_pipeline.aws import bucket, references, users_table
from cleanup_pipeline.aws.archive_store import ArchiveStore
from cleanup_pipeline.aws.dynamodb import read_by_id
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import DataMap, builtin_map, extra_stores
from cleanup_pipeline.core.recovery import (
    REFUSED,
    RESTORED,
    CurrentState,
    DeletionRecord,
    LedgerState,
    Manifest,
    RestorePlan,
    insert_entries,
    later_event,
    merge_deletion,
    plan_put_back,
    plan_restore,
    restoring_key,
    restoring_record,
)
from cleanup_pipeline.core.settings import Settings

# Board writes refused because the app changed the board meanwhile, before giving up.
MAX_BOARD_CONFLICTS = 8


@dataclass(frozen=True)
class RestoreContext:
    dynamodb: Any
    s3: Any
    settings: Settings
    store: ArchiveStore
    run_id: str
    # The checked data map; None: the built-in one.
    mapped: DataMap | None = None

    @property
    def data_map(self) -> DataMap:
        return builtin_map(self.settings) if self.mapped is None else self.mapped


def _record(ctx: RestoreContext, latest: dict[str, Any], user_id: str) -> DeletionRecord:
    manifests = [
        Manifest.from_json(ctx.store.read_json(key))
        for group in latest.get("manifests", [])
        for key in ctx.store.keys(group)
    ]
    return merge_deletion(user_id, latest["deletion_key"], manifests)


def _current(ctx: RestoreContext, user_id: str, record: DeletionRecord) -> CurrentState:
    settings = ctx.settings
    features = read_by_id(
        ctx.dynamodb, settings.features_table, record.features, [references.PROPOSED_BY]
    )
    boards = {
        board: references.read_scoreboard(ctx.dynamodb, settings.scoreboards_table, board)
        for board in sorted({e.board for e in record.scoreboard_entries})
    }
    versions = []  # a map without the app's own files records none
    if record.files:
        prefix = settings.user_prefix(user_id)
        versions = bucket.list_versions(ctx.s3, settings.public_bucket_name, prefix)
    return CurrentState(
        item_exists=False,
        versions=versions,
        features={
            fid: item.get(references.PROPOSED_BY, {}).get("S") for fid, item in features.items()
        },
        boards=boards,
    )


def plan(ctx: RestoreContext, user_id: str, dry_run: bool) -> RestorePlan:
    """Read what the restore needs and decide; nothing is written (but a deletion a crashed
    run left unrecorded is recorded first, unless `dry_run`)."""
    late = reconcile(
        ctx.store,
        ctx.dynamodb,
        ctx.settings.users_table,
        ctx.run_id,
        ctx.data_map,
        dry_run=dry_run,
    )
    events = read_ledger(ctx.store, user_id)
    if dry_run:
        events += [event for owner, event in late.recorded if owner == user_id]
    ledger = LedgerState(events)
    latest = ledger.latest_deletion()
    found = read_by_id(ctx.dynamodb, ctx.settings.users_table, [user_id]).get(user_id)
    key = None if latest is None else latest["deletion_key"]
    nothing = CurrentState(item_exists=found is not None)
    if latest is None or ledger.closed_by(key) is not None:
        if key is not None and ledger.has(key, RESTORED) and not dry_run:
            ctx.store.remove(restoring_key(user_id, key))  # left by one that died after its event
        return plan_restore(user_id, ledger, key, None, nothing, now_ms(), dry_run)
    if found is not None:
        interrupted = ctx.store.read_json(restoring_key(user_id, key))
        state = CurrentState(item_exists=True, item=found, interrupted=interrupted)
        return plan_restore(user_id, ledger, key, None, state, now_ms(), dry_run)
    record = _record(ctx, latest, user_id)
    state = _current(ctx, user_id, record) if record.item is not None else nothing
    return plan_restore(user_id, ledger, key, record, state, now_ms(), dry_run)


def _put_back_on_board(ctx: RestoreContext, board: str, entries: list, user_id: str) -> bool:
    """Insert the entries at their positions, on condition the board is still as read; False
    when the board meanwhile came to hold the user (or went away)."""
    table = ctx.settings.scoreboards_table
    for _ in range(MAX_BOARD_CONFLICTS):
        current = references.read_scoreboard(ctx.dynamodb, table, board)
        if current is None or any(references.entry_id(e) == user_id for e in current):
            return False
        if references.replace_scoreboard(
            ctx.dynamodb, table, board, current, insert_entries(current, entries)
        ):
            return True
    raise RuntimeError(f"scoreboard {board!r} kept changing; entries not put back")


def put_back(ctx: RestoreContext, restore: RestorePlan) -> RestorePlan:
    """The planned writes but the user item: delete markers removed, `proposedBy` set where
    still absent, scoreboard entries inserted on boards that do not hold the user, and what
    other stores held put back where nothing took its place."""
    settings = ctx.settings
    refused = bucket.delete_versions(ctx.s3, settings.public_bucket_name, restore.markers)
    if refused:
        raise RuntimeError(f"S3 refused to remove delete markers: {refused}")
    for feature_id in restore.link_features:
        if not references.link_feature(
            ctx.dynamodb, settings.features_table, feature_id, restore.user_id
        ):
            restore.restored["features"] -= 1
            restore.skip("features", 1, f"{feature_id}: changed during the restore")
    for board, entries in restore.board_inserts.items():
        if not _put_back_on_board(ctx, board, entries, restore.user_id):
            restore.restored["scoreboards"] -= len(entries)
            restore.skip("scoreboards", len(entries), f"{board}: changed during the restore")
    stores = {store.name: store for store in extra_stores(ctx.data_map, settings)}
    for name, records in restore.store_records.items():
        if name not in stores:
            restore.restored[name] -= len(records)
            restore.skip(name, len(records), f"{name}: no longer a store of the data map")
            continue
        back = kind_of(stores[name]).put_back(ctx, stores[name], restore.user_id, records)
        restore.restored[name] = back.restored
        for why in back.skipped:
            restore.skip(name, 1, why)
        restore.lost.extend(back.lost)
    return restore


def apply(ctx: RestoreContext, restore: RestorePlan) -> RestorePlan:
    """Make the planned writes; the user item last, only if still absent."""
    if restore.interrupted is not None:
        return _finish_interrupted(ctx, restore)
    settings = ctx.settings
    put_back(ctx, restore)
    assert restore.item is not None and restore.deletion_key is not None
    pending = restoring_key(restore.user_id, restore.deletion_key)
    ctx.store.replace_json(pending, restoring_record(restore, ctx.run_id, now_ms()))
    if not users_table.put_back_user(ctx.dynamodb, settings.users_table, restore.item):
        ctx.store.remove(pending)
        restore.status = REFUSED
        restore.reason = "an account with this id was created during the restore; kept as is"
        restore.restored["item"] = 0
        return restore
    _record_restored(ctx, restore.user_id, restore.deletion_key, ctx.run_id, now_ms())
    return restore


def _record_restored(
    ctx: RestoreContext, user_id: str, deletion: str, run_id: str, at: int, **extra: Any
) -> None:
    """The `restored` event (once, whoever records it), then the restore's record goes."""
    record(ctx.store, user_id, later_event(RESTORED, deletion, run_id, at, **extra))
    ctx.store.remove(restoring_key(user_id, deletion))


def _finish_interrupted(ctx: RestoreContext, restore: RestorePlan) -> RestorePlan:
    """Record what a restore that died after putting the item back did, in its name."""
    done = restore.interrupted
    assert done is not None and restore.deletion_key is not None
    _record_restored(
        ctx,
        restore.user_id,
        restore.deletion_key,
        done["run_id"],
        done["at"],
        recorded_by=ctx.run_id,
    )
    return restore


def roll_back(
    ctx: RestoreContext, record: DeletionRecord, as_read: dict[str, list[Any] | None] | None = None
) -> RestorePlan:
    """Give back what an unfinished deletion hid or removed of a user whose item is still
    there: the recorded file versions current again, feature references and scoreboard entries
    put back (beside their neighbours on the boards `as_read` by the deletion, when known), as
    a restore would, without touching the item or the ledger."""
    state = _current(ctx, record.user_id, record)
    return put_back(ctx, plan_put_back(record.user_id, record, state, as_read))


def restore_user(ctx: RestoreContext, user_id: str, dry_run: bool = False) -> RestorePlan:
    restore = plan(ctx, user_id, dry_run)
    if restore.status == REFUSED or dry_run:
        return restore
    return apply(ctx, restore)

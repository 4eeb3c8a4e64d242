"""The end of a restore window: every version of a deleted user's files goes for good.

For each manifest group whose window ended (the end is in its name), each of its deletions that
was neither restored nor purged is purged: every version and delete marker under the user's
folder in each `s3_prefix` store of the data map (the app's own files and any other bucket or
prefix), found by listing the folder's versions (older versions of their files too), deleted in
requests of 1,000 per bucket shared across the group's users; then a `purged` ledger event.
Stores of other kinds kept nothing but the manifest, which goes with the group. A deletion whose
latest attempt has a later window waits for it. The group is removed once each of its deletions
is purged or restored (or never happened: the user came back during the cascade and got
everything back). Whatever fails stays for the next run.
"""

from dataclasses import dataclass
from typing import Any

from cleanup_pipeline.actions.ledger import pending_pairs, read_ledger, record
from cleanup_pipeline.aws import bucket
from cleanup_pipeline.aws.archive_store import ArchiveStore
from cleanup_pipeline.aws.dynamodb import read_by_id
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import S3_PREFIX, DataMap, Store, builtin_map
from cleanup_pipeline.core.recovery import (
    MANIFESTS,
    PURGED,
    RESTORED,
    SENT_AT,
    LedgerState,
    Manifest,
    group_of,
    group_until,
    later_event,
)
from cleanup_pipeline.core.settings import Settings

PURGE, WAIT, DONE = "purge", "wait", "done"


@dataclass
class PurgeCounts:
    expired_groups: int = 0
    purged_users: int = 0
    versions_removed: int = 0
    groups_removed: int = 0
    waiting_users: int = 0
    failed_users: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _verdict(
    ledger: LedgerState, deletion: str, item: dict[str, Any] | None, now: int, journalled: bool
) -> str:
    """What the purge does with one deletion of a group whose window ended; `journalled`: a
    journal still holds it."""
    if ledger.has(deletion, RESTORED) or ledger.has(deletion, PURGED):
        return DONE
    events = [e for e in ledger.deletions() if e.get("deletion_key") == deletion]
    if events and item is not None:
        return DONE  # the account is back (restored, its event unwritten): its folder is live
    if events:
        return PURGE if max(e["restorable_until"] for e in events) < now else WAIT
    # No `deleted` event: the user item was never deleted in that episode (the user came back
    # and got everything back), unless a journal still holds the deletion: a later run finishes
    # it, or gives back what it hid, and needs the manifest for that.
    return WAIT if journalled else DONE


def purge_expired(
    store: ArchiveStore,
    s3: Any,
    dynamodb: Any,
    settings: Settings,
    run_id: str,
    dry_run: bool = False,
    now: int | None = None,
    data_map: DataMap | None = None,
) -> PurgeCounts:
    """Purge the deletions whose window ended (see the module's docstring); `data_map`: the
    checked map (None: the built-in one)."""
    now = now_ms() if now is None else now
    counts = PurgeCounts()
    folders = (builtin_map(settings) if data_map is None else data_map).of_kind(S3_PREFIX)
    manifest_keys = store.keys(MANIFESTS)
    groups = sorted({group_of(key) for key in manifest_keys})
    expired = [group for group in groups if group_until(group) < now]
    journalled = pending_pairs(store) if expired else set()
    for group in expired:
        counts.expired_groups += 1
        manifests = [
            Manifest.from_json(store.read_json(key))
            for key in manifest_keys
            if key.startswith(group)
        ]
        pairs = sorted({(u.user_id, u.deletion_key) for m in manifests for u in m.users})
        items = read_by_id(dynamodb, settings.users_table, sorted({u for u, _ in pairs}), [SENT_AT])
        verdicts = {
            pair: _verdict(
                LedgerState(read_ledger(store, pair[0])),
                pair[1],
                items.get(pair[0]),
                now,
                pair in journalled,
            )
            for pair in pairs
        }
        to_purge = [pair for pair, verdict in verdicts.items() if verdict == PURGE]
        counts.waiting_users += sum(1 for v in verdicts.values() if v == WAIT)
        if dry_run:
            counts.purged_users += len(to_purge)
            continue
        purged = _purge_users(store, s3, folders, run_id, to_purge, counts)
        if all(v == DONE or (pair in purged) for pair, v in verdicts.items()):
            for key in (k for k in manifest_keys if k.startswith(group)):
                store.remove(key)
            counts.groups_removed += 1
    return counts


def _purge_users(
    store: ArchiveStore,
    s3: Any,
    folders: list[Store],
    run_id: str,
    pairs: list[tuple[str, str]],
    counts: PurgeCounts,
) -> set[tuple[str, str]]:
    """Delete every version under these users' folders of the `folders` stores; returns the
    deletions purged."""
    owner: dict[tuple[str, str], tuple[str, str]] = {}  # (bucket, key) -> deletion
    targets: dict[str, list[tuple[str, str | None]]] = {}  # bucket -> its versions to delete
    listed: list[tuple[str, str]] = []
    for pair in pairs:
        try:
            found = [
                (folder.bucket, version)
                for folder in folders
                for version in bucket.list_versions(s3, folder.bucket, folder.prefix_of(pair[0]))
            ]
        except Exception:
            counts.failed_users += 1
            continue
        listed.append(pair)
        for name, version in found:
            owner[(name, version.key)] = pair
            targets.setdefault(name, []).append((version.key, version.version_id))
    failed: set[tuple[str, str]] = set()
    try:
        for name, versions in targets.items():
            failed.update(owner[(name, key)] for key in bucket.delete_targets(s3, name, versions))
    except Exception:
        counts.failed_users += len(listed)
        return set()
    purged: set[tuple[str, str]] = set()
    for pair in listed:
        if pair in failed:
            counts.failed_users += 1
            continue
        removed = sum(
            owner[(name, key)] == pair for name, versions in targets.items() for key, _ in versions
        )
        try:
            record(store, pair[0], later_event(PURGED, pair[1], run_id, now_ms(), versions=removed))
        except Exception:
            counts.failed_users += 1  # its versions are gone; the next run records the event
            continue
        purged.add(pair)
        counts.purged_users += 1
        counts.versions_removed += removed
    return purged

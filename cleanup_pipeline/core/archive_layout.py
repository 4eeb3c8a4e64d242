"""Where things live in the archive (`CLEANUP_ARCHIVE_DIR`), as keys relative to it.

- `manifests/{restorable_until}_{run_id}_{batch}/{seq}.json`: a batch's manifest group (its main
  manifest and any supplementary ones). The end of the window leads the name, so the purge finds
  the groups whose window ended from a listing, without reading the others.
- `pending/{run_id}_{batch}.json`: the journal of a batch that is deleting users.
- `restoring/{sha256 of user_id}.{deletion_key}.json`: a restore about to put a user item back;
  removed once its `restored` event is recorded.
- `ledger/{sha256 of user_id}/{deletion_key}.{event}.json`: one ledger event; never removed by
  the job. A user id may be 1,000 characters of anything, slashes included: hashed, it makes a
  folder name of fixed length that no id can escape; the event itself names the user.
"""

import hashlib

MANIFESTS, PENDING, LEDGER = "manifests/", "pending/", "ledger/"
RESTORING = "restoring/"


def manifest_group(restorable_until: int, run_id: str, batch: str) -> str:
    return f"{MANIFESTS}{restorable_until:013d}_{run_id}_{batch}/"


def manifest_key(group: str, seq: int) -> str:
    return f"{group}{seq:03d}.json"


def group_of(key: str) -> str:
    """The manifest group a manifest key belongs to."""
    return key.rsplit("/", 1)[0] + "/"


def group_until(group: str) -> int:
    """The end of the restore window of a manifest group, read from its name."""
    return int(group.removeprefix(MANIFESTS).split("_", 1)[0])


def journal_key(run_id: str, batch: str) -> str:
    return f"{PENDING}{run_id}_{batch}.json"


def ledger_folder(user_id: str) -> str:
    return f"{LEDGER}{hashlib.sha256(user_id.encode()).hexdigest()}/"


def ledger_key(user_id: str, deletion_key: str, event: str) -> str:
    return f"{ledger_folder(user_id)}{deletion_key}.{event}.json"


def restoring_key(user_id: str, deletion_key: str) -> str:
    return f"{RESTORING}{hashlib.sha256(user_id.encode()).hexdigest()}.{deletion_key}.json"

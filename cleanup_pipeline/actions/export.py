"""A copy of one user's data, for a person who asks for it: one zip, read from every store of
the data map, written to a private local folder or to S3 with server-side encryption.

The zip holds `user.json` (the users item as plain JSON), `stores/<name>.json` (what each store
holds for the user, as its kind reads it), the bytes of each current object of the user's
folders, and `export.json` (when, the map's stores, the counts per store and where each store's
files are). The app's files store (the store named `files`, or else the map's first `s3_prefix`
store) keeps the short layout `files/<key below the prefix>`; each other `s3_prefix` store's
objects go under `stores/<name>/<key below its prefix>`, so two stores' keys never meet in one
name. Objects are copied one at a time, in chunks, straight into the zip: a folder of any size
never sits in memory. Nothing is written to the app's stores; the zip appears whole or not at
all (written under a temporary name, then renamed or uploaded), and its contents and the
person's address are never logged. With a requests table, the export request is recorded open
before the zip is written and marked done once the zip is in place (`export_requested`).
"""

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cleanup_pipeline.actions.store_kinds import Clients, kind_of
from cleanup_pipeline.aws import bucket
from cleanup_pipeline.aws.dynamodb import read_by_id
from cleanup_pipeline.aws.reports import is_s3, split_s3
from cleanup_pipeline.aws.requests_table import (
    close_request,
    new_request_id,
    note_request,
    record_request,
    require_table,
)
from cleanup_pipeline.aws.stores import require_stores
from cleanup_pipeline.core.as_of import format_ms, now_ms
from cleanup_pipeline.core.data_map import S3_PREFIX, DataMap, Store, load_data_map
from cleanup_pipeline.core.requests import (
    EXPORT_VARIABLE,
    Request,
    RequestError,
    RequestKind,
    RequestStatus,
    export_destination_problem,
    new_request,
)
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.core.wire import plain_item

FILE_MODE, FOLDER_MODE = 0o600, 0o700
FILES_FOLDER = "files/"
NO_SUCH_USER = "no such user"
# Bytes copied at a time from an object's body into the zip.
CHUNK_BYTES = 1 << 20
# The reason an export request carries while its zip is written, and once it is in place.
EXPORTING, EXPORTED = "export in progress: the zip is being written", "exported"
# Longest error text kept as an open export request's reason.
_MAX_REASON_CHARS = 1000


class ExportError(RequestError):
    """An export refused or failed; nothing was left at the destination."""


@dataclass(frozen=True)
class Exported:
    location: str  # the zip's path, or its s3:// address
    counts: dict[str, int]
    size: int = 0  # the zip's bytes


def export_name(user_id: str, now: int) -> str:
    """`<user id hash>-<time>.zip`: the first 16 hex digits of the id's SHA-256 (the id itself
    stays out of file names and listings) and the UTC time to the millisecond."""
    digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:16]
    stamp = datetime.fromtimestamp(now / 1000, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{digest}-{stamp}{now % 1000:03d}Z.zip"


def check_destination(destination: str, settings: Settings) -> None:
    """Refuse, before anything is read or written, a destination that is a file, or that is or
    lies in the reports or archive location (the job's own files, listed and expired there)."""
    guarded = {
        "CLEANUP_REPORTS_DIR": settings.reports_location,
        "CLEANUP_ARCHIVE_DIR": settings.archive_location,
    }
    if not destination.strip():
        raise ExportError(
            "export destination (--out) is empty: give a folder or s3://bucket/prefix"
        )
    if is_s3(destination):
        problem = export_destination_problem(destination, guarded)
        if problem:
            raise ExportError(problem)
        return
    path = Path(destination).expanduser()
    if path.exists() and not path.is_dir():
        raise ExportError(f"export destination {destination} exists and is not a folder")
    where = path.resolve()
    for name, location in guarded.items():
        if is_s3(location):
            continue
        theirs = Path(location).expanduser().resolve()
        if where == theirs or theirs in where.parents:
            raise ExportError(
                f"export destination {destination} is inside {name} ({location}): exports go to "
                "a folder of their own"
            )


def files_folders(data_map: DataMap) -> dict[str, str]:
    """Each `s3_prefix` store -> the folder of the zip its objects go to."""
    folders = data_map.of_kind(S3_PREFIX)
    main = next((s for s in folders if s.name == "files"), folders[0] if folders else None)
    return {s.name: FILES_FOLDER if s == main else f"stores/{s.name}/" for s in folders}


def read_user(clients: Clients, settings: Settings, user_id: str) -> dict[str, Any]:
    """The users item, consistently; `ExportError` ("no such user") when there is none."""
    item = read_by_id(clients.dynamodb, settings.users_table, [user_id]).get(user_id)
    if item is None:
        raise ExportError(f"{NO_SUCH_USER}: no user item has this id; nothing was exported")
    return item


def _write_json(archive: zipfile.ZipFile, name: str, value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    archive.writestr(name, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)


def _file_name(folder: str, prefix: str, key: str) -> str | None:
    """The zip name of an object, or None for a folder marker (a key ending in '/')."""
    below = key[len(prefix) :] if key.startswith(prefix) else key
    return None if not below or below.endswith("/") else folder + below


def _copy_objects(
    archive: zipfile.ZipFile,
    clients: Clients,
    store: Store,
    prefix: str,
    folder: str,
    records: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each object's bytes, streamed into the zip; the records of those copied (an object gone
    since the listing is left out)."""
    copied = []
    for record in records:
        name = _file_name(folder, prefix, record["key"])
        if name is None:
            copied.append({**record, "file": None})
            continue
        body = bucket.open_object(clients.s3, store.bucket, record["key"])
        if body is None:
            continue
        try:
            # Stored as they are: most uploads (images, PDFs) are compressed already.
            with archive.open(name, "w", force_zip64=True) as out:
                shutil.copyfileobj(body, out, CHUNK_BYTES)
        finally:
            body.close()
        copied.append({**record, "file": name})
    return copied


def write_export(
    out: IO[bytes],
    clients: Clients,
    data_map: DataMap,
    user_id: str,
    user: dict[str, Any],
    now: int,
) -> dict[str, int]:
    """Write the zip to `out`, store by store; the counts per store."""
    folders = files_folders(data_map)
    counts: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        _write_json(archive, "user.json", plain_item(user))
        for store in data_map.stores:
            records = kind_of(store).export(clients, store, user_id)
            if store.kind == S3_PREFIX:
                prefix = store.prefix_of(user_id)
                records = _copy_objects(
                    archive, clients, store, prefix, folders[store.name], records
                )
            counts[store.name] = len(records)
            _write_json(archive, f"stores/{store.name}.json", records)
        _write_json(
            archive,
            "export.json",
            {
                "exported_at": format_ms(now),
                "exported_at_ms": now,
                "user_id": user_id,
                "stores": [store.name for store in data_map.stores],
                "counts": counts,
                "files": folders,
            },
        )
    return counts


@contextmanager
def _private_file(folder: Path | None) -> Iterator[tuple[IO[bytes], Path]]:
    """A new file only this user can read (in `folder`, or the system's temporary folder),
    removed on the way out unless it was renamed meanwhile."""
    handle, name = tempfile.mkstemp(prefix=".export-", suffix=".zip.part", dir=folder)
    path = Path(name)
    try:
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "wb") as out:
            yield out, path
    finally:
        path.unlink(missing_ok=True)


def _local_folder(destination: str) -> Path:
    """The destination folder, created private (0700) if it is not there; an existing folder is
    left as it is (the zip itself is 0600)."""
    path = Path(destination).expanduser()
    if not path.is_dir():
        path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        path.chmod(FOLDER_MODE)  # whatever the umask
    return path


def export_user(
    clients: Clients,
    settings: Settings,
    data_map: DataMap,
    user_id: str,
    destination: str,
    now: int,
    on_user: Callable[[], None] | None = None,
) -> Exported:
    """Read the user and every store of the map, and write the zip to `destination` (a local
    folder or s3://bucket/prefix), whole or not at all. `on_user` is called once the user is
    found, before anything is written."""
    user = read_user(clients, settings, user_id)
    if on_user is not None:
        on_user()
    name = export_name(user_id, now)
    if is_s3(destination):
        target_bucket, prefix = split_s3(destination)
        key = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name
        with _private_file(None) as (out, path):
            counts = write_export(out, clients, data_map, user_id, user, now)
            out.close()
            size = path.stat().st_size
            bucket.upload_encrypted(clients.s3, str(path), target_bucket, key)
        return Exported(f"s3://{target_bucket}/{key}", counts, size)
    folder = _local_folder(destination)
    final = folder / name
    with _private_file(folder) as (out, path):
        counts = write_export(out, clients, data_map, user_id, user, now)
        out.flush()
        os.fsync(out.fileno())
        size = os.fstat(out.fileno()).st_size
        os.replace(path, final)
    return Exported(str(final), counts, size)


@dataclass(frozen=True)
class ExportDone:
    """An access request answered: the zip written, and the done export request recorded in
    the requests table (None when requests are off)."""

    user_id: str
    exported: Exported
    request: Request | None

    def lines(self) -> list[str]:
        """What the operator is told, with no address or content of the person's data."""
        said = [f"export request {self.request.id} recorded as done"] if self.request else []
        total = sum(self.exported.counts.values())
        stores = len(self.exported.counts)
        return [*said, f"exported {total} records and files from {stores} stores"]

    def as_json(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "export": self.exported.location,
            "counts": self.exported.counts,
        }


def export_destination(out: str | None) -> str:
    """Where the zip goes: `out`, or else `CLEANUP_EXPORT_DIR`; refused when neither is given."""
    destination = (out or os.environ.get(EXPORT_VARIABLE) or "").strip()
    if not destination:
        raise ExportError(
            "export destination (--out / out) not given: give --out DIR|s3://bucket/prefix, "
            f"or set {EXPORT_VARIABLE}"
        )
    return destination


def _failure(error: BaseException) -> str:
    """The error on one line, short enough to be a request's reason."""
    return " ".join(f"{type(error).__name__}: {error}".split())[:_MAX_REASON_CHARS]


def _left_open(clients: Clients, table: str, request: Request, why: str) -> str:
    """Record `why` as the open request's reason; what to add to the error about it."""
    try:
        noted = note_request(clients.dynamodb, table, request, why)
    except Exception as error:
        return (
            f"; export request {request.id} left open, its reason not recorded: {_failure(error)}"
        )
    if not noted:
        return f"; export request {request.id} is no longer open"
    return f"; export request {request.id} left open with that reason"


def export_requested(
    clients: Clients,
    settings: Settings,
    data_map: DataMap,
    request: Request,
    destination: str,
    now: int,
    run_id: str | None = None,
) -> Exported:
    """The export a person asked for (`request`), as `export_user` writes it, with its request
    in the requests table when there is one: recorded open once the user is found and before
    the zip is written, then marked done once the zip is in place (renamed or uploaded). A
    request that cannot be recorded leaves no zip; a zip that cannot be written, or a request
    that cannot be marked done, leaves the request open with why (shown by `request list`).
    Each failure raises `ExportError` in one line."""
    table = settings.requests_table
    started = replace(request, status=RequestStatus.OPEN, reason=EXPORTING, done_at=None)
    recorded = False

    def record() -> None:
        nonlocal recorded
        if table is None:
            return
        try:
            record_request(clients.dynamodb, table, started)
        except Exception as error:
            raise ExportError(
                f"no export written: the export request was not recorded: {_failure(error)}"
            ) from None
        recorded = True

    try:
        exported = export_user(
            clients, settings, data_map, request.user_id, destination, now, on_user=record
        )
    except ExportError:
        raise
    except Exception as error:
        why = f"no export written: {_failure(error)}"
        left = _left_open(clients, table, started, why) if table and recorded else ""
        raise ExportError(f"{why}{left}") from None
    if table is None:
        return exported
    try:
        closed = close_request(
            clients.dynamodb,
            table,
            started,
            RequestStatus.DONE,
            reason=EXPORTED,
            done_at=now_ms(),
            run_id=run_id,
        )
    except Exception as error:
        why = f"export written to {exported.location}, but not marked done: {_failure(error)}"
        raise ExportError(why + _left_open(clients, table, started, why)) from None
    if not closed:
        raise ExportError(
            f"export written to {exported.location}, but export request {started.id} was "
            "closed meanwhile and is not marked done"
        )
    return exported


def answer_export_request(
    clients: Clients,
    settings: Settings,
    user_id: str,
    out: str | None,
    *,
    ref: str | None = None,
    received: str | None = None,
    run_id: str | None = None,
) -> ExportDone:
    """`request export`, from the command line or the UI. Everything is checked before the zip
    is written: the id and the request's fields and the destination (before any AWS call), the
    requests table (when there is one), the data map and its stores, and that the user exists.
    Only reads are made in the app's stores; the zip and the done export request are the
    writes. Each refusal is a one-line `RequestError` (or `DataMapError`)."""
    now = now_ms()
    request = new_request(
        new_request_id(),
        user_id,
        RequestKind.EXPORT,
        now=now,
        deadline_days=settings.request_deadline_days,
        received=received,
        ref=ref,
    )
    destination = export_destination(out)
    check_destination(destination, settings)
    if settings.requests_table is not None:
        require_table(clients.dynamodb, settings.requests_table)
    data_map = load_data_map(settings)
    require_stores(clients.dynamodb, clients.s3, settings, data_map)
    exported = export_requested(
        clients, settings, data_map, request, destination, now, run_id=run_id
    )
    done = None
    if settings.requests_table is not None:
        done = replace(
            request, status=RequestStatus.DONE, reason=EXPORTED, done_at=now_ms(), run_id=run_id
        )
    return ExportDone(request.user_id, exported, done)

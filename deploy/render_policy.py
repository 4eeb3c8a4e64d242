"""Render deploy/iam-policy.json for one deployment, from the job's own environment and its data
map.

    python deploy/render_policy.py --account 123456789012 > policy.json

Placeholders (`${Name}`) are filled from the same variables the job reads, so the
policy names exactly the tables, bucket, folders and sender the job will touch. The statements
of the data map's stores (`CLEANUP_DATA_MAP`, or the built-in map) are rendered from the map,
loaded as the job loads it: per store exactly the actions its kind and action need, on its
table, index or bucket prefix; `DescribeTable` on every table the job checks before a run, and
`ListTables` / `ListAllMyBuckets` only when the map has `coverage`. The optional
report statements (`WriteReports`, `ReadReports` for approvals, `ListReports`, `ExpireReports`)
are kept only when `CLEANUP_REPORTS_DIR` is an `s3://` location, the archive statements
(`WriteArchive`, `ReadArchive`, `ListArchive`, `RemoveArchivedManifests`) only when
`CLEANUP_ARCHIVE_DIR` is, the holds statements (`ReadHolds` for the cleanup job, `ManageHolds`
for the `manage_hold` job) only when `HOLDS_TABLE_NAME` is set, the requests statements
(`ManageRequests`, for `request erase` and `request list`; `CloseRequests`, for the run that
closes the requests it answered) only when `REQUESTS_TABLE_NAME` is, the step-outputs statements
(`StepOutputs`, `ListStepOutputs`) only when `CLEANUP_STEP_OUTPUTS_S3_URI` is, and the access
export's statements only when `CLEANUP_EXPORT_DIR` declares where exports go: the listing and
reading of each `s3_prefix` store's folders (`ExportList...Files`, `ExportRead...Files`) and, for
an `s3://` location, `WriteExports` (the zips there, encrypted). The ledger under
the archive can be written and read, never deleted; every archive object is written encrypted
(SSE-S3), or not at all.
"""

import argparse
import json
import os
import re
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cleanup_pipeline.core.data_map import (
    ATTRIBUTE,
    DELETE_ITEMS,
    LIST,
    PARTITION_KEY,
    S3_PREFIX,
    DataMap,
    Store,
    load_data_map,
)
from cleanup_pipeline.core.requests import EXPORT_VARIABLE
from cleanup_pipeline.core.settings import (
    S3StepStorage,
    Settings,
    load_settings,
    step_storage_from_env,
)

TEMPLATE = Path(__file__).with_name("iam-policy.json")
REPORTS_SIDS = {"WriteReports", "ReadReports", "ListReports", "ExpireReports"}
ARCHIVE_SIDS = {"WriteArchive", "ReadArchive", "ListArchive", "RemoveArchivedManifests"}
HOLDS_SIDS = {"ReadHolds", "ManageHolds"}
REQUESTS_SIDS = {"ManageRequests", "CloseRequests"}
STEP_OUTPUTS_SIDS = {"StepOutputs", "ListStepOutputs"}


def placeholders(
    settings: Settings,
    account: str,
    step_storage: S3StepStorage | None = None,
    export_location: str | None = None,
) -> dict[str, str]:
    """The value of every placeholder of the template for these settings (and this S3
    location of step outputs, and this location of access exports, if any)."""
    if not re.fullmatch(r"\d{12}", account):
        raise ValueError(f"account must be a 12-digit AWS account id, got {account!r}")
    if not settings.aws_region:
        raise ValueError("AWS_REGION is not set: the tables' region is unknown")
    values = {
        "Account": account,
        "Region": settings.aws_region,
        "SesRegion": settings.ses_region or settings.aws_region,
        "UsersTable": settings.users_table,
        "EmailsTable": settings.emails_table,
        "HoldsTable": settings.holds_table or "",
        "RequestsTable": settings.requests_table or "",
        "PublicBucket": settings.public_bucket_name,
        "EmailDomain": settings.email_domain,
        "ReportsBucket": "",
        "ReportsPrefix": "",
        "ArchiveBucket": "",
        "ArchivePrefix": "",
        "StepOutputsBucket": step_storage.bucket if step_storage else "",
        "StepOutputsPrefix": step_storage.prefix if step_storage else "",
        "ExportLocation": (export_location or "").strip(),
        "ExportBucket": "",
        "ExportPrefix": "",
    }
    if values["ExportLocation"].startswith("s3://"):
        bucket, _, prefix = values["ExportLocation"].removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        values["ExportBucket"] = bucket
        values["ExportPrefix"] = f"{prefix}/" if prefix else ""
    if settings.archive_location.startswith("s3://"):
        bucket, _, prefix = settings.archive_location.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        values["ArchiveBucket"] = bucket
        values["ArchivePrefix"] = f"{prefix}/" if prefix else ""
    if settings.reports_location.startswith("s3://"):
        bucket, _, prefix = settings.reports_location.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        values["ReportsBucket"] = bucket
        values["ReportsPrefix"] = f"{prefix}/" if prefix else ""
    # A wildcard character inside a value would silently widen the grant.
    widening = {name: value for name, value in values.items() if re.search(r"[*?$]", value)}
    if widening:
        raise ValueError(f"placeholder values must not contain '*', '?' or '$': {widening}")
    return values


# The built-in map's files store keeps the statement names policies already deployed carry.
_FILES_SIDS = {"files": ("ListUserFolders", "DeleteUserFiles")}
# The stores' statements follow the job's own tables in the rendered policy.
_STORES_AFTER = "EmailsTable"
COVERAGE_SID = "ListAccountStores"


def _one_or_many(resources: list[str]) -> str | list[str]:
    return resources[0] if len(resources) == 1 else resources


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict:
    action: str | list[str] = actions[0] if len(actions) == 1 else actions
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": action,
        "Resource": _one_or_many(resources),
        **extra,
    }


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _store_statements(store: Store, table_arn: str) -> list[dict]:
    """What the cascade, the archive, restore, purge and the proof of deletion call for one
    store, on its own table, index or bucket prefix."""
    name = _camel(store.name)
    if store.kind == S3_PREFIX:
        # A user's folder, `{id}` standing for any id: its versions are listed, its objects and
        # versions deleted (and brought back by deleting a delete marker).
        folder = store.prefix.replace("{id}", "*")
        list_sid, delete_sid = _FILES_SIDS.get(
            store.name, (f"List{name}Folders", f"Delete{name}Files")
        )
        return [
            _statement(
                list_sid,
                ["s3:ListBucketVersions"],
                [f"arn:aws:s3:::{store.bucket}"],
                Condition={"StringLike": {"s3:prefix": folder}},
            ),
            _statement(
                delete_sid,
                ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                [f"arn:aws:s3:::{store.bucket}/{folder}*"],
            ),
        ]
    table = f"{table_arn}/{store.table}"
    if store.kind == ATTRIBUTE:
        # One Scan a run finds the items; they are read back by key, then changed or deleted
        # (and put back whole by a restore).
        writes = ["dynamodb:UpdateItem"]
        if store.action == DELETE_ITEMS:
            writes = ["dynamodb:DeleteItem", "dynamodb:PutItem"]
        actions = ["dynamodb:Scan", "dynamodb:BatchGetItem", *writes]
        return [_statement(f"{name}Table", actions, [table])]
    if store.kind == LIST:
        # The named items are read by key; without `items`, one Scan a run finds the items
        # holding a candidate, read back by key in batches. Lists are changed in place.
        reads = ["dynamodb:GetItem"] if store.items else ["dynamodb:Scan", "dynamodb:BatchGetItem"]
        return [_statement(f"{name}Table", [*reads, "dynamodb:UpdateItem"], [table])]
    assert store.kind == PARTITION_KEY
    # A Query of the table (or its index) per user; the items found are read back by key on
    # the table, deleted in batches, and put back whole by a restore.
    item_actions = ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem"]
    if not store.index:
        return [_statement(f"{name}Table", ["dynamodb:Query", *item_actions], [table])]
    return [
        _statement(f"{name}Table", item_actions, [table]),
        _statement(f"{name}Index", ["dynamodb:Query"], [f"{table}/index/{store.index}"]),
    ]


def _export_statements(data_map: DataMap, values: Mapping[str, str]) -> list[dict]:
    """What an access export calls beyond the run: each current object of the user's folders
    listed and read, and the zip written to an s3:// export location, with SSE-S3 or not at
    all (one upload, never in parts: a part carries no encryption header to check)."""
    statements = []
    for store in data_map.of_kind(S3_PREFIX):
        name = "UserFiles" if store.name == "files" else f"{_camel(store.name)}Files"
        folder = store.prefix.replace("{id}", "*")
        statements += [
            _statement(
                f"ExportList{name}",
                ["s3:ListBucket"],
                [f"arn:aws:s3:::{store.bucket}"],
                Condition={"StringLike": {"s3:prefix": folder}},
            ),
            _statement(
                f"ExportRead{name}", ["s3:GetObject"], [f"arn:aws:s3:::{store.bucket}/{folder}*"]
            ),
        ]
    if values.get("ExportBucket"):
        statements.append(
            _statement(
                "WriteExports",
                ["s3:PutObject"],
                [f"arn:aws:s3:::{values['ExportBucket']}/{values['ExportPrefix']}*.zip"],
                Condition={"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
            )
        )
    return statements


def _widening(data_map: DataMap) -> None:
    named = {
        f"stores.{store.name}": [store.table, store.index, store.bucket, store.prefix]
        for store in data_map.stores
    }
    widening = sorted(
        where for where, values in named.items() if re.search(r"[*?$]", "".join(values))
    )
    if widening:
        raise ValueError(
            f"data map names must not contain '*', '?' or '$' (they would widen the grant): "
            f"{', '.join(widening)}"
        )


def map_statements(data_map: DataMap, values: Mapping[str, str], taken: set[str]) -> list[dict]:
    """The statements of the map's stores, the existence check before a run (every table
    described, every bucket's versioning read) and, with `coverage`, the account listings."""
    _widening(data_map)
    table_arn = f"arn:aws:dynamodb:{values['Region']}:{values['Account']}:table"
    statements: list[dict] = []
    for store in data_map.stores:
        for statement in _store_statements(store, table_arn):
            while statement["Sid"] in taken:  # a store named like one of the job's statements
                statement["Sid"] = f"Store{statement['Sid']}"
            taken.add(statement["Sid"])
            statements.append(statement)
    tables = [values["UsersTable"], values["EmailsTable"], values.get("HoldsTable", "")]
    tables = list(dict.fromkeys(t for t in [*tables, *(s.table for s in data_map.stores)] if t))
    statements.append(
        _statement(
            "DescribeTables", ["dynamodb:DescribeTable"], [f"{table_arn}/{t}" for t in tables]
        )
    )
    buckets = [s.bucket for s in data_map.stores if s.bucket]
    statements.append(
        _statement(
            "CheckBucketVersioning",
            ["s3:GetBucketVersioning"],
            [f"arn:aws:s3:::{b}" for b in dict.fromkeys(buckets)],
        )
    )
    if values.get("ExportLocation"):
        for statement in _export_statements(data_map, values):
            while statement["Sid"] in taken:
                statement["Sid"] = f"Store{statement['Sid']}"
            taken.add(statement["Sid"])
            statements.append(statement)
    if data_map.coverage is not None:
        # Account-level listings: IAM scopes neither to a resource.
        statements.append(
            _statement(COVERAGE_SID, ["dynamodb:ListTables", "s3:ListAllMyBuckets"], ["*"])
        )
    return statements


def render(template: str, values: Mapping[str, str], data_map: DataMap) -> dict[str, Any]:
    """The policy with every placeholder substituted and the data map's statements added; the
    report (archive) statements dropped when reports (the archive) are not written to S3, the
    holds statements when there is no holds table, the requests statement when there is no
    requests table, the step-outputs statements when step
    outputs stay on the run's machine. An unknown placeholder raises KeyError."""
    policy = json.loads(string.Template(template).substitute(values))
    dropped = (
        (set() if values.get("ReportsBucket") else REPORTS_SIDS)
        | (set() if values.get("ArchiveBucket") else ARCHIVE_SIDS)
        | (set() if values.get("HoldsTable") else HOLDS_SIDS)
        | (set() if values.get("RequestsTable") else REQUESTS_SIDS)
        | (set() if values.get("StepOutputsBucket") else STEP_OUTPUTS_SIDS)
    )
    kept = [s for s in policy["Statement"] if s.get("Sid") not in dropped]
    stores = map_statements(data_map, values, {s["Sid"] for s in kept})
    at = next(i for i, s in enumerate(kept) if s["Sid"] == _STORES_AFTER) + 1
    policy["Statement"] = [*kept[:at], *stores, *kept[at:]]
    return policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account", required=True, help="AWS account id of the tables and SES")
    args = parser.parse_args(argv)
    settings = load_settings()
    export_location = os.environ.get(EXPORT_VARIABLE)
    values = placeholders(settings, args.account, step_storage_from_env(), export_location)
    policy = render(TEMPLATE.read_text(), values, load_data_map(settings))
    json.dump(policy, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

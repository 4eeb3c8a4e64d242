"""Render deploy/iam-policy.json for one deployment, from the job's own environment.

    python deploy/render_policy.py --account 123456789012 > policy.json

Placeholders (`${Name}`) are filled from the same variables the job reads, so the
policy names exactly the tables, bucket, folders and sender the job will touch. The optional
report statements (`WriteReports`, `ReadReports` for approvals, `ListReports`, `ExpireReports`)
are kept only when `CLEANUP_REPORTS_DIR` is an `s3://` location, the archive statements
(`WriteArchive`, `ReadArchive`, `ListArchive`, `RemoveArchivedManifests`) only when
`CLEANUP_ARCHIVE_DIR` is, the holds statements (`ReadHolds` for the cleanup job, `ManageHolds`
for the `manage_hold` job) only when `HOLDS_TABLE_NAME` is set, and the step-outputs statements
(`StepOutputs`, `ListStepOutputs`) only when `CLEANUP_STEP_OUTPUTS_S3_URI` is. The ledger under
the archive can be written and read, never deleted; every archive object is written encrypted
(SSE-S3), or not at all.
"""

import argparse
import json
import re
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
STEP_OUTPUTS_SIDS = {"StepOutputs", "ListStepOutputs"}


def placeholders(
    settings: Settings, account: str, step_storage: S3StepStorage | None = None
) -> dict[str, str]:
    """The value of every placeholder of the template for these settings (and this S3
    location of step outputs, if any)."""
    if not re.fullmatch(r"\d{12}", account):
        raise ValueError(f"account must be a 12-digit AWS account id, got {account!r}")
    if not settings.aws_region:
        raise ValueError("AWS_REGION is not set: the tables' region is unknown")
    values = {
        "Account": account,
        "Region": settings.aws_region,
        "SesRegion": settings.ses_region or settings.aws_region,
        "UsersTable": settings.users_table,
        "FeaturesTable": settings.features_table,
        "ScoreboardsTable": settings.scoreboards_table,
        "EmailsTable": settings.emails_table,
        "HoldsTable": settings.holds_table or "",
        "PublicBucket": settings.public_bucket_name,
        "UserFolderPrefix": settings.user_folder_template.split("{id}")[0],
        "EmailDomain": settings.email_domain,
        "ReportsBucket": "",
        "ReportsPrefix": "",
        "ArchiveBucket": "",
        "ArchivePrefix": "",
        "StepOutputsBucket": step_storage.bucket if step_storage else "",
        "StepOutputsPrefix": step_storage.prefix if step_storage else "",
    }
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


def render(template: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The policy with every placeholder substituted; the report (archive) statements dropped
    when reports (the archive) are not written to S3, the holds statements when there is no
    holds table, the step-outputs statements when step outputs stay on the run's machine. An
    unknown placeholder raises KeyError."""
    policy = json.loads(string.Template(template).substitute(values))
    dropped = (
        (set() if values.get("ReportsBucket") else REPORTS_SIDS)
        | (set() if values.get("ArchiveBucket") else ARCHIVE_SIDS)
        | (set() if values.get("HoldsTable") else HOLDS_SIDS)
        | (set() if values.get("StepOutputsBucket") else STEP_OUTPUTS_SIDS)
    )
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") not in dropped]
    return policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account", required=True, help="AWS account id of the tables and SES")
    args = parser.parse_args(argv)
    values = placeholders(load_settings(), args.account, step_storage_from_env())
    policy = render(TEMPLATE.read_text(), values)
    json.dump(policy, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

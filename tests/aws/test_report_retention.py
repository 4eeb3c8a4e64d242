"""Report files past the retention are removed, locally and on S3; nothing else is."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cleanup_pipeline.aws.report_retention import (
    DELETE_BATCH,
    StoredReport,
    expired_reports,
    remove_reports,
    report_name,
    stored_reports,
)
from tests.support.report_files import NOW, touch

REPORTS = [
    "2026-01-01_3f2a9c1e-0d4b-4c7e-9a51-6b1f0e2d7c88.parquet",
    "2026-01-01_3f2a9c1e-0d4b-4c7e-9a51-6b1f0e2d7c88.summary.md",
    "2026-01-02_run-2.parquet.partial",
    "2026-01-02_run-2.csv",
]
OTHERS = [
    "notes.txt",
    "2026-01-01_run-3.tsv",
    "2026-01-01_run-3.csv.bak",
    "2026-01-01_run-3.parquet.bak",
    "keep-2026-01-01_run-3.parquet",
    "2026-1-1_run-3.parquet",
]


def test_local_lists_only_report_files_directly_in_the_folder(tmp_path):
    for name in REPORTS + OTHERS:
        touch(tmp_path / name, 100)
    touch(tmp_path / "archive" / REPORTS[0], 100)
    found = stored_reports(str(tmp_path))
    assert sorted(report_name(r) for r in found) == sorted(REPORTS)
    assert all(abs(r.modified - (NOW - timedelta(days=100))) < timedelta(seconds=1) for r in found)
    assert stored_reports(str(tmp_path / "missing")) == []


def test_local_removes_only_expired_reports_and_never_this_runs(tmp_path):
    touch(tmp_path / "2026-01-01_old.parquet", 91)
    touch(tmp_path / "2026-01-01_old.summary.md", 91)
    touch(tmp_path / "2026-03-01_recent.parquet", 89)
    touch(tmp_path / "2025-01-01_this-run.parquet", 400)  # a replay of an old as_of, by this run
    touch(tmp_path / "notes.txt", 400)
    cutoff = NOW - timedelta(days=90)

    expired = expired_reports(stored_reports(str(tmp_path)), cutoff, keep_run_id="this-run")
    assert sorted(report_name(r) for r in expired) == [
        "2026-01-01_old.parquet",
        "2026-01-01_old.summary.md",
    ]
    remove_reports(expired)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2025-01-01_this-run.parquet",
        "2026-03-01_recent.parquet",
        "notes.txt",
    ]
    remove_reports(expired)  # already gone: nothing to do, no error


def test_keep_run_id_matches_the_whole_run_id_only():
    reports = [
        StoredReport("/r/2026-01-01_run-1.parquet", NOW - timedelta(days=400)),
        StoredReport("/r/2026-01-01_run-10.parquet", NOW - timedelta(days=400)),
    ]
    expired = expired_reports(reports, NOW, keep_run_id="run-1")
    assert [report_name(r) for r in expired] == ["2026-01-01_run-10.parquet"]


def record_deletes(s3: Any) -> list[int]:
    sizes: list[int] = []

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "DeleteObjects":
            sizes.append(len(params["Delete"]["Objects"]))

    s3.meta.events.register("provide-client-params.s3.DeleteObjects", hook)
    return sizes


def keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.mark.parametrize("base", ["s3://ops-reports/cleanup", "s3://ops-reports/cleanup/"])
def test_s3_removes_only_report_files_under_the_prefix_in_batches(aws, base):
    clients, _ = aws
    s3 = clients.s3
    s3.create_bucket(Bucket="ops-reports")
    reports = [f"cleanup/2026-01-{day:02d}_run-{day}.parquet" for day in range(1, 8)]
    others = [
        "cleanup/archive/2026-01-01_run-1.parquet",  # a "subfolder": not listed
        "cleanup-old/2026-01-01_run-1.parquet",  # a neighbouring prefix
        "2026-01-01_run-1.parquet",  # the bucket's root
        *(f"cleanup/{name}" for name in OTHERS),
    ]
    for key in reports + others:
        s3.put_object(Bucket="ops-reports", Key=key, Body=b"x")
    sizes = record_deletes(s3)

    found = stored_reports(base, s3)
    assert sorted(r.location for r in found) == [f"s3://ops-reports/{k}" for k in reports]
    assert all(NOW - timedelta(minutes=5) < r.modified <= datetime.now(UTC) for r in found)
    # Written just now: nothing is older than a cutoff in the past.
    assert expired_reports(found, NOW - timedelta(days=1), keep_run_id="run-0") == []

    # A cutoff after their LastModified makes them all old; run-7 is this run's and stays.
    expired = expired_reports(found, datetime.now(UTC) + timedelta(days=1), keep_run_id="run-7")
    remove_reports(expired, s3, batch=3)

    assert sizes == [3, 3]
    assert keys(s3, "ops-reports") == sorted([*others, "cleanup/2026-01-07_run-7.parquet"])


def test_s3_root_of_a_bucket_and_default_batch(aws):
    clients, _ = aws
    s3 = clients.s3
    s3.create_bucket(Bucket="ops-reports")
    s3.put_object(Bucket="ops-reports", Key="2026-01-01_run-1.summary.md", Body=b"x")
    s3.put_object(Bucket="ops-reports", Key="sub/2026-01-01_run-1.parquet", Body=b"x")
    sizes = record_deletes(s3)
    found = stored_reports("s3://ops-reports", s3)
    assert [report_name(r) for r in found] == ["2026-01-01_run-1.summary.md"]
    remove_reports(found, s3)
    assert sizes == [1]
    assert keys(s3, "ops-reports") == ["sub/2026-01-01_run-1.parquet"]
    assert DELETE_BATCH == 1000  # the most one DeleteObjects request takes


def test_s3_needs_a_client():
    with pytest.raises(ValueError):
        stored_reports("s3://ops-reports/cleanup")
    with pytest.raises(ValueError):
        remove_reports([StoredReport("s3://ops-reports/2026-01-01_r.parquet", NOW)])

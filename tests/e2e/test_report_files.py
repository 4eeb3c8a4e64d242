"""The report files a run leaves: the Parquet report, a CSV copy anyone can open with the same
rows and only masked addresses, and the summary; on S3 the UI links to them in the console."""

import io
import os
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tests.support.jobs import execute_job
from tests.support.world import seed_world

UNMASKED = re.compile(r"[A-Za-z0-9._%+-]+@example\.com")


def _files(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dg.MetadataValue]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return dict(events[-1].materialization.metadata)


def _same_rows(csv: pd.DataFrame, parquet: pd.DataFrame) -> None:
    assert csv.columns.tolist() == parquet.columns.tolist()
    as_text = parquet.astype(object).where(parquet.notna(), "").astype(str)
    assert csv.astype(str).to_dict("records") == as_text.to_dict("records")


def test_a_local_run_writes_a_csv_copy_beside_the_report(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    result = execute_job()
    assert result.success

    for asset in ("candidate_report", "cleanup_report"):
        meta = _files(result, asset)
        assert isinstance(meta["path"], dg.PathMetadataValue)
        assert isinstance(meta["csv"], dg.PathMetadataValue)
        assert meta["csv"].value == meta["path"].value.removesuffix(".parquet") + ".csv"
    csv_path = Path(_files(result, "cleanup_report")["csv"].value)
    text = csv_path.read_text(encoding="utf-8")
    assert UNMASKED.findall(text) == []
    report = pd.read_parquet(_files(result, "cleanup_report")["path"].value)
    assert "deleted" in set(report["outcome"]) and "warned" in set(report["outcome"])
    _same_rows(pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False), report)
    assert report["email_masked"].notna().any()
    folder = Path(os.environ["CLEANUP_REPORTS_DIR"])
    assert sorted(p.suffix for p in folder.iterdir()) == [".csv", ".md", ".parquet"]


def test_an_s3_run_shows_links_a_browser_opens(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    clients, settings = aws
    clients.s3.create_bucket(Bucket="ops-reports")
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", "s3://ops-reports/cleanup")
    seed_world(clients, settings, big_folder=3)
    result = execute_job()
    assert result.success

    meta = _files(result, "cleanup_report")
    name = f"2026-06-01_{result.run_id}"
    assert isinstance(meta["path"], dg.TextMetadataValue)
    assert meta["path"].value == f"s3://ops-reports/cleanup/{name}.parquet"
    console = "https://s3.console.aws.amazon.com/s3/object/ops-reports?region=us-east-1&prefix="
    for key, suffix in (("report_link", ".parquet"), ("csv", ".csv"), ("summary", ".summary.md")):
        assert isinstance(meta[key], dg.UrlMetadataValue), key
        assert meta[key].value == f"{console}cleanup%2F{name}{suffix}"

    def body(suffix: str) -> bytes:
        answer = clients.s3.get_object(Bucket="ops-reports", Key=f"cleanup/{name}{suffix}")
        return answer["Body"].read()

    report = pd.read_parquet(io.BytesIO(body(".parquet")))
    text = body(".csv").decode("utf-8")
    assert UNMASKED.findall(text) == []
    _same_rows(pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False), report)

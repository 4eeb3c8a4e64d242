"""What an operator reviews in the UI after a run: the report assets' numeric counts, the
days-inactive histogram, the masked preview, the files' locations, and old reports removed."""

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from cleanup_pipeline.core.decisions import KEYS, LABELS
from cleanup_pipeline.core.reports import KNOWN_REASON_KEYS, OUTCOMES, reason_key
from cleanup_pipeline.orchestration.jobs import run_config_for
from cleanup_pipeline.orchestration.reports import REPORT_PREVIEW_COLUMNS, REPORT_PREVIEW_ROWS
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support.jobs import execute_job, materialization, metadata
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, seed_world

MASKED = re.compile(r"^[^@*]\*\*\*@[^@]+$")


def age(path: Path, days: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    stamp = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))


def test_report_assets_show_counts_histogram_preview_and_files(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings)
    folder = Path(os.environ["CLEANUP_REPORTS_DIR"])
    old = ["2026-01-01_old-run.parquet", "2026-01-01_old-run.csv", "2026-01-01_old-run.summary.md"]
    kept = ["2026-05-30_recent-run.parquet", "operator-notes.md"]
    for name in old:
        age(folder / name, 91)
    age(folder / kept[0], 89)
    age(folder / kept[1], 400)

    result = execute_job(policy=CleanupPolicy(send_rate_per_second=500))
    assert result.success
    users = metadata(result, "user_decisions")["users"]

    for asset in ("candidate_report", "cleanup_report"):
        meta = metadata(result, asset)
        # The final report replaced the candidate one at the same path.
        report = pd.read_parquet(meta["path"])
        assert meta["path"] == str(folder.resolve() / f"2026-06-01_{result.run_id}.parquet")
        # Every outcome and known reason as an int, zero included.
        assert set(OUTCOMES) <= {key.removeprefix("outcome/") for key in meta}
        assert sum(meta[f"outcome/{o}"] for o in OUTCOMES) == len(report) == meta["rows"]
        assert set(KNOWN_REASON_KEYS) <= set(meta)
        for reason, n in report["reason"].value_counts().items():
            assert meta[reason_key(reason)] == n
        assert sum(meta[k] for k in KNOWN_REASON_KEYS) == len(report)
        # The histogram covers every user of the run, as ints and as a table.
        assert sum(meta[f"days_inactive/{key}"] for key in KEYS) == users
        assert meta["days_inactive/invalid"] == metadata(result, "user_decisions")["invalid"]
        assert all(f"| {label} |" in meta["days_inactive"] for label in LABELS)
        # The summary sits next to the report and states the run.
        summary = Path(meta["summary"])
        assert summary == folder.resolve() / f"2026-06-01_{result.run_id}.summary.md"
        assert f"run {result.run_id}" in summary.read_text(encoding="utf-8")
        assert meta["guards_passed"] is True and meta["blocked_by"] == ""

        raw = materialization(result, asset)
        assert isinstance(raw["path"], dg.PathMetadataValue)
        preview = raw["preview"]
        assert isinstance(preview, dg.TableMetadataValue)
        assert [c.name for c in preview.schema.columns] == list(REPORT_PREVIEW_COLUMNS)
        assert 0 < len(preview.records) <= min(REPORT_PREVIEW_ROWS, len(report))
        masked = [r.data["email_masked"] for r in preview.records if r.data["email_masked"]]
        assert masked and all(MASKED.match(value) for value in masked)

    candidate, final = metadata(result, "candidate_report"), metadata(result, "cleanup_report")
    report = pd.read_parquet(final["path"])
    assert report.attrs["stage"] == "final"
    assert {o: final[f"outcome/{o}"] for o in OUTCOMES} == {
        o: int((report["outcome"] == o).sum()) for o in OUTCOMES
    }
    assert candidate["stage"] == "candidate" and final["stage"] == "final"
    assert candidate["outcome/not_attempted"] == len(NOTIFIED) + len(DELETED)
    assert (final["outcome/warned"], final["outcome/deleted"]) == (len(NOTIFIED), len(DELETED))
    assert final["outcome/not_attempted"] == 0
    # Acted-on rows come first in the preview.
    first = materialization(result, "cleanup_report")["preview"].records[0].data
    assert first["outcome"] == "deleted"

    removed = metadata(result, "removed_reports")
    assert (removed["retention_days"], removed["expired"], removed["removed"]) == (90, 3, 3)
    assert all(name in removed["files"] for name in old)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            *kept,
            *(
                f"2026-06-01_{result.run_id}{suffix}"
                for suffix in (".csv", ".parquet", ".summary.md")
            ),
        ]
    )


def test_dry_run_counts_expired_reports_but_keeps_them_and_zero_keeps_all(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    folder = Path(os.environ["CLEANUP_REPORTS_DIR"])
    age(folder / "2026-01-01_old-run.parquet", 30)

    dry = execute_job(
        run_config_for(AS_OF_ISO, dry_run=True),
        policy=CleanupPolicy(report_retention_days=7, send_rate_per_second=500),
    )
    assert dry.success
    assert (
        metadata(dry, "removed_reports")["expired"],
        metadata(dry, "removed_reports")["removed"],
    ) == (1, 0)
    assert (folder / "2026-01-01_old-run.parquet").exists()
    assert metadata(dry, "candidate_report")["actions"].startswith("Dry run")

"""Coverage of the data map: with `coverage`, a table or bucket of the app that no store and no
`unmapped` pattern names stops the deletions of the run, and only them; the real job against
moto."""

from pathlib import Path

import dagster as dg
import pytest

from cleanup_pipeline.core.data_map import MAP_VARIABLE, Coverage, coverage_of, load_data_map
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.orchestration.guards import refuse_unless_covered
from cleanup_pipeline.orchestration.jobs import run_config_for
from tests.support import recording
from tests.support.aws_state import scan_all, sent_to
from tests.support.data_maps import APP_MAP, create_table
from tests.support.jobs import evaluation, execute_job, metadata
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, seed_world

pytestmark = pytest.mark.usefixtures("fresh_recording")

CHECK = "every_app_store_is_mapped"
LISTINGS = {"ListTables", "ListBuckets"}


@pytest.fixture
def covered_map(monkeypatch, tmp_path: Path) -> Path:
    """The app's own map, with every table and bucket of the account covered."""
    path = tmp_path / "map.yaml"
    path.write_text(APP_MAP.read_text() + '\nunmapped: ["increaser-static-*"]\ncoverage: ["*"]\n')
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    return path


def _deleted(clients, settings) -> set[str]:
    return set(DELETED) - set(scan_all(clients.dynamodb, settings.users_table))


def test_every_table_and_bucket_known_passes_and_the_run_deletes(aws, covered_map) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_table(clients.dynamodb, "increaser-static-pages", "id")  # declared unmapped
    clients.s3.create_bucket(Bucket="increaser-static-site")

    result = execute_job()

    assert result.success
    check = evaluation(result, CHECK)
    assert check.passed
    assert check.description.startswith("every table and bucket matching * is")
    assert check.metadata["unmapped_tables"].value == "(none)"
    found = metadata(result, "app_stores")
    # users, features, scoreboards, emails, holds, requests and the static pages.
    assert found["tables_listed"] == 7 and found["buckets_listed"] == 2
    assert _deleted(clients, settings) == set(DELETED)
    assert {name for name, _ in recording.CALLS} >= LISTINGS


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_unmapped_table_or_bucket_stops_the_deletions_and_not_the_warnings(
    aws, covered_map, dry_run
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_table(clients.dynamodb, "invoices", "id")
    clients.s3.create_bucket(Bucket="increaser-uploads")

    result = execute_job(run_config_for(AS_OF_ISO, dry_run=dry_run))

    assert not result.success
    check = evaluation(result, CHECK)
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "table invoices, bucket increaser-uploads" in str(check.description)
    assert check.metadata["unmapped_tables"].value == "invoices"
    assert check.metadata["unmapped_buckets"].value == "increaser-uploads"
    assert not result.is_node_success("deleted_accounts")
    assert _deleted(clients, settings) == set()
    if dry_run:
        assert sent_to() == []
    else:
        assert sorted(sent_to()) == sorted(f"{uid}@example.com" for uid in NOTIFIED)


def test_without_coverage_the_check_passes_saying_so_and_lists_nothing(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    create_table(clients.dynamodb, "invoices", "id")

    result = execute_job()

    assert result.success
    check = evaluation(result, CHECK)
    assert check.passed and "coverage is off" in str(check.description)
    assert not LISTINGS & {name for name, _ in recording.CALLS}
    assert _deleted(clients, settings) == set(DELETED)


def test_the_job_tables_and_the_archive_and_reports_buckets_are_known(monkeypatch) -> None:
    monkeypatch.setenv("CLEANUP_ARCHIVE_DIR", "s3://ops-archive/cleanup")
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", "s3://ops-reports/cleanup")
    settings = load_settings()
    data_map = load_data_map(settings, {MAP_VARIABLE: str(APP_MAP)})
    data_map = type(data_map)(data_map.stores, ("tmp-*",), ("*",), data_map.source)
    tables = [
        "users",
        "emails",
        "holds",
        "requests",
        "features",
        "scoreboards",
        "tmp-1",
        "invoices",
    ]
    buckets = ["increaser-public", "ops-archive", "ops-reports", "ops-steps"]
    coverage = coverage_of(data_map, settings, tables, buckets)
    assert (coverage.tables, coverage.buckets) == (("invoices",), ("ops-steps",))
    narrower = type(data_map)(data_map.stores, (), ("inv*",), data_map.source)
    assert coverage_of(narrower, settings, tables, buckets) == Coverage(
        ("inv*",), ("invoices",), (), 8, 4
    )


def test_the_deletions_refuse_unmapped_stores_when_materialized_alone() -> None:
    refuse_unless_covered(Coverage(("*",)))
    refuse_unless_covered(Coverage(None))
    with pytest.raises(dg.Failure, match="every_app_store_is_mapped: not in the data map: table"):
        refuse_unless_covered(Coverage(("*",), ("invoices",)))

"""What a run removed from each store of the data map, by the store's name: a `store_<name>`
column of the report per deleted user, a total in the UI metadata of `deleted_accounts` and of
the report, and in the run's JSON counts; the same numbers as the ledger's `deleted` events. The
real job against moto, with the built-in map and with a map adding a table of composite key."""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.actions.ledger import read_ledger
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.core.data_map import MAP_VARIABLE
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.jobs import run_config_for, summarize
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.data_maps import APP_MAP, create_table
from tests.support.jobs import execute_job, metadata, read_report
from tests.support.world import AS_OF_ISO, DELETED, seed_world

pytestmark = pytest.mark.usefixtures("fresh_recording")

APP_STORES = ("files", "features", "scoreboards")
COLUMNS = tuple(f"store_{name}" for name in (*APP_STORES, "sessions"))
# With `seed_world(big_folder=3)`: what each deleted user has in each store; sessions are
# seeded by `_sessions_map`. Every other deleted user has nothing anywhere.
HELD = {
    "u1": {"files": 3, "features": 2, "scoreboards": 3, "sessions": 4},
    "delete-30d-1ms": {"files": 3, "features": 0, "scoreboards": 1, "sessions": 1},
}
SESSIONS = {"u1": 4, "delete-30d-1ms": 1, "someone-active": 2}


def _sessions_map(clients: Any, tmp_path: Path) -> Path:
    """The app's map plus `sessions`, keyed by user and session, with `SESSIONS` in it."""
    create_table(clients.dynamodb, "sessions", "userId", "sessionId")
    batch_write(
        clients.dynamodb,
        "sessions",
        [
            {"userId": {"S": user}, "sessionId": {"S": f"s{n}"}}
            for user, count in SESSIONS.items()
            for n in range(count)
        ],
    )
    path = tmp_path / "map.yaml"
    path.write_text(APP_MAP.read_text() + "  sessions: {table: sessions, partition_key: userId}\n")
    return path


def _expected(stores: tuple[str, ...]) -> dict[str, dict[str, int]]:
    return {
        user: {f"store_{name}": HELD.get(user, {}).get(name, 0) for name in stores}
        for user in DELETED
    }


def _by_user(report: pd.DataFrame, stores: tuple[str, ...]) -> dict[str, dict[str, int]]:
    columns = [f"store_{name}" for name in stores]
    rows = report.set_index("id")[columns]
    return {str(user): {c: int(n) for c, n in row.items()} for user, row in rows.iterrows()}


def _run(instance: dg.DagsterInstance, **options: Any) -> tuple[dg.ExecuteInProcessResult, dict]:
    result = execute_job(run_config_for(AS_OF_ISO, **options), instance=instance)
    dry_run = bool(options.get("dry_run"))
    return result, summarize(instance, result.run_id, result.success, AS_OF_ISO, dry_run)


@pytest.mark.parametrize("with_sessions", [False, True], ids=["built-in map", "with sessions"])
def test_a_run_counts_what_it_removed_from_each_store_by_name(
    aws, monkeypatch, tmp_path, with_sessions: bool
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    stores = APP_STORES
    if with_sessions:
        monkeypatch.setenv(MAP_VARIABLE, str(_sessions_map(clients, tmp_path)))
        stores = (*APP_STORES, "sessions")
    keys = [f"store_{name}" for name in stores]
    zeros = dict.fromkeys(keys, 0)
    instance = dg.DagsterInstance.ephemeral()

    dry, dry_summary = _run(instance, dry_run=True)
    assert dry.success
    assert recording.writes() == []
    # Counting reads no store: a dry run only checks that the sessions table exists.
    asked = {name for name, params in recording.CALLS if params.get("TableName") == "sessions"}
    assert asked <= {"DescribeTable"}
    dry_report = read_report(dry)
    assert list(dry_report.columns[-len(keys) :]) == keys
    assert (dry_report[keys] == 0).all().all()
    assert {k: metadata(dry, "deleted_accounts")[k] for k in keys} == zeros
    assert {k: dry_summary["counts"][k] for k in keys} == zeros

    result, summary = _run(instance)
    assert result.success
    report = read_report(result)
    # The report's own columns first, unchanged; then one column per store, in the map's order.
    assert list(report.columns) == [*dry_report.columns]
    own = list(report.columns[: -len(keys)])
    assert list(report.columns[-len(keys) :]) == list(keys)
    assert own[own.index("outcome") :][:3] == ["outcome", "step", "error"]
    assert report[keys].dtypes.eq("int64").all()
    expected = _expected(stores)
    deleted = report["outcome"] == "deleted"
    assert _by_user(report[deleted], stores) == expected
    assert (report.loc[~deleted, keys] == 0).all().all()
    # The numbers of the ledger's `deleted` events.
    archive = open_archive(settings.archive_location, clients.s3)
    ledger = {user: read_ledger(archive, user)[0]["stores"] for user in DELETED}
    assert {u: {f"store_{n}": c for n, c in s.items()} for u, s in ledger.items()} == expected
    totals = {key: sum(counts[key] for counts in expected.values()) for key in keys}
    assert totals == {
        "store_files": 6,
        "store_features": 2,
        "store_scoreboards": 4,
        **({"store_sessions": 5} if with_sessions else {}),
    }
    assert {k: metadata(result, "deleted_accounts")[k] for k in keys} == totals
    assert {k: metadata(result, "cleanup_report")[k] for k in keys} == totals
    assert {k: summary["counts"][k] for k in keys} == totals
    assert summary["counts"]["deleted"] == len(DELETED)
    assert not [k for k in summary["counts"] if k.startswith("store_") and k not in keys]

    # Nothing left to delete: every store counts 0, not a missing key.
    again, again_summary = _run(instance)
    assert again.success
    assert {k: again_summary["counts"][k] for k in keys} == zeros
    assert {k: metadata(again, "deleted_accounts")[k] for k in keys} == zeros


def test_a_blocked_run_reports_every_store_at_zero(aws) -> None:
    """A guard stops the deletions: the JSON still carries each store, at 0, from the report
    written before any action."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    instance = dg.DagsterInstance.ephemeral()
    strict = CleanupPolicy(min_guarded_count=2, max_delete_fraction=0.0, send_rate_per_second=200)
    result = execute_job(policy=strict, instance=instance)
    summary = summarize(instance, result.run_id, result.success, AS_OF_ISO, False)
    assert "deletions_within_limit" in summary["blocked"]
    assert summary["counts"]["deleted"] == 0
    assert {k: summary["counts"][k] for k in COLUMNS[:3]} == dict.fromkeys(COLUMNS[:3], 0)

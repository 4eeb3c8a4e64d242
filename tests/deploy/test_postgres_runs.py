"""The job on an instance whose run history lives in a real PostgreSQL server
(deploy/dagster-postgres.yaml): its runs and materializations land there, and the history
guards read their baseline from there."""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.provision import provision
from cleanup_pipeline.orchestration.guards import DECISIONS_KEY
from cleanup_pipeline.orchestration.jobs import run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import sent_to
from tests.support.cli import cli
from tests.support.dagster_instances import dagster_home, load_instance
from tests.support.history_guard import OPEN, add_delete_candidates, assert_blocked_by_history
from tests.support.items import now_ms
from tests.support.jobs import execute_job
from tests.support.postgres_server import PostgresServer
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, assert_final_state, seed_world

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fresh_recording")]

ASSETS = {
    "active_holds",
    "erasure_requests",
    "app_stores",
    "users_snapshot",
    "user_decisions",
    "notify_candidates",
    "deletion_candidates",
    "erasure_candidates",
    "guard_inputs",
    "candidate_report",
    "warning_emails",
    "unfinished_deletions",
    "deleted_accounts",
    "erased_accounts",
    "cleanup_report",
    "removed_reports",
    "purged_deletions",
}


def query(server: PostgresServer, db_name: str, statement: str, *params: Any) -> list[tuple]:
    connection = server.connect(db_name)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()
    finally:
        connection.close()


def test_a_cli_run_against_the_emulator_is_recorded_in_postgres(
    server: str, postgres: PostgresServer, postgres_env: str
) -> None:
    home = dagster_home("dagster-postgres.yaml", Path(os.environ["DAGSTER_HOME"]))
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seeded = seed_world(clients, settings, big_folder=3)

    before = now_ms()
    code, summary, output = cli("run", "--as-of", AS_OF_ISO)
    after = now_ms()
    assert code == 0, output
    assert summary["counts"]["deleted"] == len(DELETED)
    assert summary["counts"]["notified"] == len(NOTIFIED)
    assert_final_state(clients, settings, seeded, sent_to(server), before, after)

    runs = query(postgres, postgres_env, "SELECT run_id, status FROM runs")
    assert runs == [(summary["run_id"], "SUCCESS")]
    materialized = query(
        postgres,
        postgres_env,
        "SELECT asset_key FROM event_logs WHERE run_id = %s "
        "AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        summary["run_id"],
    )
    assert {dg.AssetKey.from_db_string(key).path[0] for (key,) in materialized} == ASSETS
    # Nothing of the history went to the local SQLite files Dagster uses by default.
    assert not list(home.rglob("*.db"))

    with load_instance("dagster-postgres.yaml", home) as instance:
        record = instance.fetch_materializations(DECISIONS_KEY, limit=1).records[0]
        assert record.run_id == summary["run_id"]
        assert record.asset_materialization.metadata["delete"].value == len(DELETED)


def test_history_guard_reads_earlier_runs_from_postgres(
    aws, tmp_path: Path, postgres: PostgresServer, postgres_env: str
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    # One earlier run is enough to apply the guard: without it in the database there would be
    # no baseline and the jump below would pass. It decides and stops there, as the history is
    # the decisions of successful runs (every event of a run is a round trip to PostgreSQL).
    policy = CleanupPolicy(**OPEN, history_min_runs=1)

    # Each run on an instance loaded afresh from the file: the database is all they share.
    with load_instance("dagster-postgres.yaml", tmp_path) as instance:
        earlier = execute_job(
            run_config_for(AS_OF_ISO),
            policy=policy,
            instance=instance,
            selection=["active_holds", "users_snapshot", "erasure_requests", "user_decisions"],
        )
        assert earlier.success
    assert query(postgres, postgres_env, "SELECT run_id, status FROM runs") == [
        (earlier.run_id, "SUCCESS")
    ]

    add_delete_candidates(clients, settings, 26)  # 31 > 25 floor and > 5 x 5 earlier
    with load_instance("dagster-postgres.yaml", tmp_path) as instance:
        blocked = execute_job(run_config_for(AS_OF_ISO), policy=policy, instance=instance)
        assert_blocked_by_history(blocked, count=31, median=5)
        assert instance.get_run_by_id(blocked.run_id).status == dg.DagsterRunStatus.FAILURE
    assert recording.writes() == []
    assert (blocked.run_id, "FAILURE") in query(
        postgres, postgres_env, "SELECT run_id, status FROM runs"
    )

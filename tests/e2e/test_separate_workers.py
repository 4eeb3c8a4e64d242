"""Steps on separate workers: the job on the multiprocess executor with its step outputs on S3
(`CLEANUP_STEP_OUTPUTS_S3_URI`) against a moto server, every step process in an empty working
and temporary directory of its own, so no step can read what another left on disk."""

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.core.settings import STEP_OUTPUTS_VARIABLE, load_settings
from cleanup_pipeline.local.provision import provision
from tests.support.aws_state import sent_to
from tests.support.cli import multiprocess_run
from tests.support.isolated_workers import Workers, isolated
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, assert_final_state, seed_world

pytestmark = pytest.mark.e2e

STEPS_BUCKET, STEPS_PREFIX = "cleanup-step-outputs", "steps"
REPORTS_BUCKET = "cleanup-reports"
BATCH_SIZE = 2

REEXECUTE = """
import json, sys
import dagster as dg
from cleanup_pipeline.definitions import cleanup_job

instance = dg.DagsterInstance.get()
parent = instance.get_run_by_id(sys.argv[1])
result = dg.execute_job(
    dg.reconstructable(cleanup_job),
    instance=instance,
    run_config=parent.run_config,
    reexecution_options=dg.ReexecutionOptions.from_failure(parent.run_id, instance),
)
print(json.dumps({"run_id": result.run_id, "success": result.success}))
"""


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    with isolated(monkeypatch) as started:
        yield started


@pytest.fixture
def distributed(server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AwsClients:
    """Step outputs and reports on S3, every process of the run in directories of its own."""
    monkeypatch.setenv(STEP_OUTPUTS_VARIABLE, f"s3://{STEPS_BUCKET}/{STEPS_PREFIX}")
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", f"s3://{REPORTS_BUCKET}/reports")
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    clients.s3.create_bucket(Bucket=STEPS_BUCKET)
    return clients


def step_pids(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    return {r.step_key: r.dagster_event.pid for r in records if r.step_key and r.dagster_event}


def run_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    return records[0].dagster_event.pid


def assert_steps_in_own_directories(
    workers: Workers, instance: dg.DagsterInstance, run_id: str
) -> None:
    pids = step_pids(instance, run_id)
    directories = workers.directories()
    the_run = directories[run_pid(instance, run_id)]
    # Every step process moved to directories of its own: none shares a working or temporary
    # directory with another step or with the run's process.
    steps = {key: directories[pid] for key, pid in pids.items()}
    assert len(set(pids.values())) == len(pids)
    assert len({cwd for cwd, _ in steps.values()}) == len(steps)
    assert len({tmp for _, tmp in steps.values()}) == len(steps)
    assert all(cwd != the_run[0] and tmp != the_run[1] for cwd, tmp in steps.values())
    # Not a byte of what flowed between them is in any of those directories.
    left = [p for cwd, _ in steps.values() for p in Path(cwd).rglob("*") if p.is_file()]
    assert left == []


def stored_keys(clients: AwsClients) -> list[str]:
    pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=STEPS_BUCKET)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def local_step_values(home: Path) -> list[Path]:
    """Files the local I/O manager would have written under the instance's storage folder
    (Dagster's own compute logs live there too, in each run's `compute_logs`)."""
    storage = home / "storage"
    files = [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []
    return [p for p in files if "compute_logs" not in p.parts]


def report_rows(clients: AwsClients, location: str) -> pd.DataFrame:
    bucket, _, key = location.removeprefix("s3://").partition("/")
    body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pd.read_parquet(io.BytesIO(body))


def test_steps_in_separate_directories_pass_values_through_s3_only(
    server: str, distributed: AwsClients, workers: Workers
) -> None:
    clients, settings = distributed, load_settings()
    clients.s3.create_bucket(Bucket=REPORTS_BUCKET)
    seeded = seed_world(clients, settings, big_folder=3)

    before = int(time.time() * 1000)
    code, summary, output = multiprocess_run(AS_OF_ISO, BATCH_SIZE)
    after = int(time.time() * 1000)

    assert code == 0, output[-3000:]
    assert summary["counts"]["deleted"] == len(DELETED)
    assert summary["counts"]["notified"] == len(NOTIFIED)
    assert summary["counts"]["failed"] == 0
    assert_final_state(clients, settings, seeded, sent_to(server), before, after)

    instance = dg.DagsterInstance.get()
    run_id = summary["run_id"]
    batches = -(-len(DELETED) // BATCH_SIZE)
    assert batches >= 3
    succeeded = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
    assert set(step_pids(instance, run_id)) == {r.step_key for r in succeeded}
    assert len([k for k in step_pids(instance, run_id) if "[batch_" in k]) == batches
    assert_steps_in_own_directories(workers, instance, run_id)

    # Every value went to S3 under the run's own prefix, the batches' too; none to local disk.
    keys = stored_keys(clients)
    assert keys and all(k.startswith(f"{STEPS_PREFIX}/{run_id}/") for k in keys), keys
    assert f"{STEPS_PREFIX}/{run_id}/users_snapshot" in keys
    assert len([k for k in keys if "delete_account_batch--batch_" in k]) == batches
    assert local_step_values(Path(os.environ["DAGSTER_HOME"])) == []
    values = b"".join(
        clients.s3.get_object(Bucket=STEPS_BUCKET, Key=k)["Body"].read() for k in keys
    )
    assert [uid for uid in seeded.users if f"{uid}@example.com".encode() in values] == []

    report = report_rows(clients, summary["report"])
    assert sorted(report.loc[report["outcome"] == "deleted", "id"]) == DELETED


def test_reexecution_from_failure_in_a_fresh_process_reads_the_first_run_from_s3(
    server: str, distributed: AwsClients, workers: Workers
) -> None:
    clients, settings = distributed, load_settings()
    seeded = seed_world(clients, settings, big_folder=3)

    # The reports bucket does not exist yet: both report steps (and the retention step after the
    # first) fail; warnings and deletions do not depend on them and complete.
    before = int(time.time() * 1000)
    code, first, output = multiprocess_run(AS_OF_ISO, BATCH_SIZE)
    after = int(time.time() * 1000)
    assert code == 1, output[-3000:]
    assert_final_state(clients, settings, seeded, sent_to(server), before, after)
    instance = dg.DagsterInstance.get()
    failed = {
        r.step_key
        for r in instance.all_logs(first["run_id"], of_type=dg.DagsterEventType.STEP_FAILURE)
    }
    assert failed == {"candidate_report"}

    clients.s3.create_bucket(Bucket=REPORTS_BUCKET)
    process = subprocess.run(
        [sys.executable, "-c", REEXECUTE, first["run_id"]],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
        check=False,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    again = json.loads(process.stdout.strip().splitlines()[-1])
    assert again["success"], process.stderr[-3000:]

    # Only the steps that had not succeeded ran again, each in directories of its own, from the
    # values the first run's steps had stored on S3: the final report holds every outcome.
    rerun = step_pids(instance, again["run_id"])
    assert set(rerun) == {"candidate_report", "removed_reports", "cleanup_report"}
    assert_steps_in_own_directories(workers, instance, again["run_id"])
    loaded = instance.all_logs(again["run_id"], of_type=dg.DagsterEventType.LOADED_INPUT)
    upstream = {
        r.dagster_event.event_specific_data.upstream_step_key
        for r in loaded
        if r.dagster_event and r.step_key == "cleanup_report"
    }
    assert {"user_decisions", "warning_emails", "deleted_accounts"} <= {
        k.split(".")[0] for k in upstream if k
    }
    assert all(k.startswith(f"{STEPS_PREFIX}/{first['run_id']}/") for k in stored_keys(clients))

    reexecuted = instance.get_run_by_id(again["run_id"])
    assert reexecuted.root_run_id == first["run_id"]
    materialized = instance.all_logs(
        again["run_id"], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    metadata = {
        r.asset_materialization.asset_key.to_user_string(): r.asset_materialization.metadata
        for r in materialized
        if r.asset_materialization
    }
    report = report_rows(clients, metadata["cleanup_report"]["path"].value)
    assert sorted(report.loc[report["outcome"] == "deleted", "id"]) == DELETED
    assert sorted(report.loc[report["outcome"] == "warned", "id"]) == NOTIFIED
    # Nothing was done twice: the state is still exactly the first run's.
    assert_final_state(clients, settings, seeded, sent_to(server), before, after)


def test_a_malformed_location_stops_the_cli_before_any_run(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STEP_OUTPUTS_VARIABLE, "s3://cleanup-step-outputs")  # no prefix
    code, summary, output = multiprocess_run(AS_OF_ISO, BATCH_SIZE)
    assert code == 1
    assert summary["status"] == "failure" and summary["run_id"] is None
    assert STEP_OUTPUTS_VARIABLE in summary["error"]
    assert f"error: {STEP_OUTPUTS_VARIABLE} must be an S3 location" in output
    assert dg.DagsterInstance.get().get_runs() == []

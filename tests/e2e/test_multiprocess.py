"""The job on Dagster's multiprocess executor (through the console script), its deletions
fanned out in batches that run in separate processes side by side, against a moto server."""

import os
from pathlib import Path

import dagster as dg
import pytest

from cleanup_pipeline.actions.cascade import split_into_batches
from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.provision import provision
from tests.support.aws_state import sent_to
from tests.support.cli import multiprocess_run
from tests.support.items import now_ms
from tests.support.world import AS_OF_ISO, DELETED, assert_final_state, seed_world

pytestmark = pytest.mark.e2e

BATCH_SIZE = 2
CASCADE = ("delete_account_batch",)


def test_batches_run_in_parallel_processes_and_give_exactly_the_spec_outcomes(server: str) -> None:
    batches = split_into_batches(DELETED, BATCH_SIZE)
    assert len(batches) >= 3
    # The weekly board lists two deleted users of different batches: both batches prune it.
    holding = {uid: n for n, batch in enumerate(batches) for uid in batch}
    assert holding["u1"] != holding["delete-30d-1ms"]

    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seeded = seed_world(clients, settings, big_folder=3)

    before = now_ms()
    code, summary, output = multiprocess_run(AS_OF_ISO, BATCH_SIZE)
    after = now_ms()

    assert code == 0, output[-3000:]
    assert summary["counts"]["deleted"] == len(DELETED) and summary["counts"]["failed"] == 0
    assert_final_state(clients, settings, seeded, sent_to(server), before, after)

    instance = dg.DagsterInstance.get()
    records = instance.all_logs(summary["run_id"], of_type=dg.DagsterEventType.STEP_SUCCESS)
    pids = {r.step_key: r.dagster_event.pid for r in records if r.dagster_event}
    keys = [f"batch_{n:04d}" for n in range(len(batches))]
    for op in CASCADE:
        assert {k for k in pids if k.startswith(f"deleted_accounts.{op}[")} == {
            f"deleted_accounts.{op}[{key}]" for key in keys
        }, op
    # One process per step: every batch step ran in a process of its own.
    batch_pids = [pid for key, pid in pids.items() if "[batch_" in key]
    assert len(set(batch_pids)) == len(batch_pids) == len(keys) * len(CASCADE)

    # What flows between the steps (batches included) is stored: never an address in it.
    storage = [p for p in Path(os.environ["DAGSTER_HOME"], "storage").rglob("*") if p.is_file()]
    assert any("[batch_" in str(p) for p in storage)
    stored = b"".join(p.read_bytes() for p in storage)
    assert not [uid for uid in seeded.users if f"{uid}@example.com".encode() in stored]

"""Two runs at once share the SES account's send rate: the warnings step of each run takes the
one slot of the `ses_send` pool, so the second sends only once the first has finished. Checked
with two `cleanup-pipeline run` processes (they bypass the run queue) on the quick start's
instance settings, against a moto server."""

import os
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.cli.local_stack import LOCAL_INSTANCE_CONFIG
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.provision import provision
from cleanup_pipeline.orchestration.actions import SES_SEND_POOL
from tests.support.aws_state import sent_to
from tests.support.cli import finish_cli, start_cli
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, seed_world

pytestmark = pytest.mark.e2e

STEP = "warning_emails"
BLOCKED = f"Step blocked by limit for pool {SES_SEND_POOL}"


def _step_events(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogEntry]:
    return [e for e in instance.all_logs(run_id) if e.step_key == STEP]


def _blocked(instance: dg.DagsterInstance, run_id: str) -> bool:
    return any(e.user_message == BLOCKED for e in _step_events(instance, run_id))


def _span(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """When the run's warnings step started and when it succeeded."""
    times = {
        e.dagster_event_type: e.timestamp
        for e in _step_events(instance, run_id)
        if e.dagster_event_type
        in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)
    }
    return times[dg.DagsterEventType.STEP_START], times[dg.DagsterEventType.STEP_SUCCESS]


def test_two_runs_warning_steps_take_turns(server: str) -> None:
    (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text(LOCAL_INSTANCE_CONFIG)
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seed_world(clients, settings, big_folder=1)
    instance = dg.DagsterInstance.get()
    storage = instance.event_log_storage
    assert storage.supports_global_concurrency_limits

    # A third party holds the slot until both runs wait at their warnings step: when it frees
    # the slot, both are ready to send at once, and only the pool keeps them apart.
    storage.initialize_concurrency_limit_to_default(SES_SEND_POOL)
    assert storage.get_concurrency_info(SES_SEND_POOL).slot_count == 1
    assert storage.claim_concurrency_slot(SES_SEND_POOL, "holder", STEP).is_claimed
    processes = [start_cli("run", "--as-of", AS_OF_ISO) for _ in range(2)]
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in processes), "a run ended before its warnings"
            runs = instance.get_runs()
            if len(runs) == 2 and all(_blocked(instance, r.run_id) for r in runs):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the two runs did not both wait for the ses_send slot")
    finally:
        storage.free_concurrency_slots_for_run("holder")
    results = [finish_cli(p) for p in processes]

    for code, summary, output in results:
        assert code == 0, output
        assert summary["counts"]["failed"] == 0
    first, second = sorted(_span(instance, r.run_id) for r in instance.get_runs())
    assert first[1] <= second[0], (
        f"warning steps overlapped: {[datetime.fromtimestamp(t).isoformat() for t in first]} "
        f"and {[datetime.fromtimestamp(t).isoformat() for t in second]}"
    )
    # The pool only orders the steps; the claims still send each warning once.
    recipients = sent_to(server)
    assert len(recipients) == len(set(recipients)) == len(NOTIFIED)
    assert sum(s["counts"]["deleted"] for _, s, _ in results) == len(DELETED)
    assert storage.get_concurrency_info(SES_SEND_POOL).claimed_slots == []

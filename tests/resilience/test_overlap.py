"""Two runs of the job at once, as separate processes against one moto server: the conditional
writes alone keep every guarantee (one warning per person, each deletion done exactly once)."""

import dagster as dg
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.provision import provision
from tests.support.aws_state import sent_to
from tests.support.cli import finish_cli, start_cli
from tests.support.items import now_ms
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, assert_final_state, seed_world

pytestmark = pytest.mark.e2e


def test_two_overlapping_runs_warn_once_and_delete_once(server: str) -> None:
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seeded = seed_world(clients, settings, big_folder=300)
    # The instance exists before the runs overlap, as an operator's does: two processes creating
    # a brand-new instance's SQLite tables at once is not the case under test.
    with dg.DagsterInstance.get():
        pass

    before = now_ms()
    first = start_cli("run", "--as-of", AS_OF_ISO)
    second = start_cli("run", "--as-of", AS_OF_ISO)
    results = [finish_cli(first), finish_cli(second)]
    after = now_ms()

    for code, summary, output in results:
        assert code == 0, output
        assert summary["counts"]["failed"] == 0
    assert sum(s["counts"]["notified"] for _, s, _ in results) == len(NOTIFIED)
    assert sum(s["counts"]["deleted"] for _, s, _ in results) == len(DELETED)
    recipients = sent_to(server)
    assert len(recipients) == len(set(recipients)) == len(NOTIFIED)
    assert_final_state(clients, settings, seeded, recipients, before, after)

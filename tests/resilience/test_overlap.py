"""Two runs of the job at once, as separate processes against one moto server: the conditional
writes alone keep every guarantee (one warning per person, each deletion done exactly once,
recorded once, and reported by the other run as deleted by another run, never as kept)."""

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.actions.ledger import read_ledger
from cleanup_pipeline.aws.archive_store import open_archive
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
    # Each deleted user: deleted by one run; the other says so, or never got that far (or did
    # not even see the user, having scanned after the deletion).
    reports = [pd.read_parquet(s["report"]).set_index("id") for _, s, _ in results]
    store = open_archive(settings.archive_location, clients.s3)
    for uid in DELETED:
        outcomes = sorted(r.loc[uid, "outcome"] for r in reports if uid in r.index)
        assert outcomes.count("deleted") == 1, (uid, outcomes)
        assert set(outcomes) <= {"deleted", "deleted_by_other_run", "skipped"}, (uid, outcomes)
        assert [e["event"] for e in read_ledger(store, uid)] == ["deleted", "verified"], uid

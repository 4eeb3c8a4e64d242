"""The real Dagster job, executed in process against in-process moto."""

from typing import Any

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.orchestration.jobs import run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_calls import client_error
from tests.support.aws_state import scan_all, sent_to
from tests.support.items import now_ms
from tests.support.jobs import error_messages, execute_job, metadata
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, assert_final_state, seed_world

pytestmark = pytest.mark.usefixtures("fresh_recording")


def test_run_gives_exactly_the_spec_outcomes_and_a_rerun_changes_nothing(aws) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings)
    before = now_ms()
    result = execute_job()
    after = now_ms()
    assert result.success
    assert_final_state(clients, settings, seeded, sent_to(), before, after)
    decided = metadata(result, "user_decisions")
    assert (decided["notify"], decided["delete"], decided["invalid"]) == (
        len(NOTIFIED),
        len(DELETED),
        4,
    )
    report_meta = metadata(result, "cleanup_report")
    report = pd.read_parquet(report_meta["path"])
    outcome = dict(zip(report["id"], report["outcome"], strict=True))
    assert {uid for uid, o in outcome.items() if o == "deleted"} == set(DELETED)
    assert {uid for uid, o in outcome.items() if o == "warned"} == set(NOTIFIED)
    assert outcome["invalid-type"] == "no_action"
    assert not report["email_masked"].dropna().str.contains(r"^[^*]{2,}@", regex=True).any()

    state = scan_all(clients.dynamodb, settings.users_table)
    second = execute_job()
    assert second.success
    assert len(sent_to()) == len(NOTIFIED)  # nobody warned twice
    assert scan_all(clients.dynamodb, settings.users_table) == state
    assert metadata(second, "warning_emails")["notified"] == 0


def test_dry_run_makes_no_write_call(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    result = execute_job(run_config_for(AS_OF_ISO, dry_run=True))
    assert result.success
    assert recording.CALLS, "the run made no AWS call at all"
    assert recording.writes() == []
    assert sent_to() == []
    report = pd.read_parquet(metadata(result, "cleanup_report")["path"])
    assert set(report.loc[report["decision"].isin(["notify", "delete"]), "outcome"]) == {"dry_run"}


def test_missing_configuration_fails_before_any_aws_call(aws, monkeypatch) -> None:
    monkeypatch.delenv("APP_URL")
    monkeypatch.delenv("PUBLIC_BUCKET_NAME")
    result = execute_job()
    assert not result.success
    assert recording.CALLS == []
    failures = [
        error_messages(e.event_specific_data.error)
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE
    ]
    assert failures and "APP_URL, PUBLIC_BUCKET_NAME" in failures[0]
    assert "EMAIL_DOMAIN" not in failures[0]


def test_a_failing_guard_stops_every_action_and_allow_mass_action_lifts_it(aws) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=3)
    strict = CleanupPolicy(min_guarded_count=2, max_delete_fraction=0.0, send_rate_per_second=200)
    blocked = execute_job(policy=strict)
    assert not blocked.success
    assert not blocked.is_node_success("warning_emails")
    assert scan_all(clients.dynamodb, settings.users_table) == seeded.users
    assert sent_to() == []
    assert recording.writes() == []
    checks = {e.check_name: e.passed for e in blocked.get_asset_check_evaluations()}
    assert checks["deletions_within_limit"] is False
    report = pd.read_parquet(metadata(blocked, "candidate_report")["path"])
    assert set(report.loc[report["decision"] == "delete", "outcome"]) == {"not_attempted"}

    allowed = execute_job(run_config_for(AS_OF_ISO, allow_mass_action=True), policy=strict)
    assert allowed.success
    assert metadata(allowed, "deleted_accounts")["deleted"] == len(DELETED)
    assert metadata(allowed, "cleanup_report")["allow_mass_action"] is True


def test_one_users_failure_leaves_the_others_done_and_fails_the_run(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)

    def refuse_u1_listing(operation: str, params: dict[str, Any]) -> None:
        if operation == "ListObjectVersions" and params.get("Prefix") == "u1/":
            raise client_error("SlowDown", operation, "try later")

    recording.FAULTS.append(refuse_u1_listing)
    result = execute_job()
    assert not result.success
    users = scan_all(clients.dynamodb, settings.users_table)
    assert "u1" in users
    assert not set(DELETED) - {"u1"} & set(users)
    assert metadata(result, "deleted_accounts")["failed"] == 1
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["every_user_action_succeeded"] is False
    report = pd.read_parquet(metadata(result, "cleanup_report")["path"]).set_index("id")
    assert report.loc["u1", "outcome"] == "failed" and report.loc["u1", "step"] == "files"

    recording.FAULTS.clear()
    assert execute_job().success
    assert "u1" not in scan_all(clients.dynamodb, settings.users_table)


def test_hold_list_exempts_a_delete_candidate(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    held = CleanupPolicy(exempt_user_ids=["u1"], send_rate_per_second=200)
    result = execute_job(policy=held)
    assert result.success
    assert "u1" in scan_all(clients.dynamodb, settings.users_table)
    assert metadata(result, "deleted_accounts")["deleted"] == len(DELETED) - 1

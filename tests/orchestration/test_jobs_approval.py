"""Approval of a reviewed run through real Dagster runs on one instance (SPEC §10): a blocked
run says how to approve it; the approved run acts only on what that run's report listed and
still is a candidate; bad run ids, and a report changed after its run, are refused before any
side effect."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.guards import (
    APPROVED_RUN_TAG,
    candidate_digests,
    report_candidates,
)
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.local.batch_write import batch_write as put_items
from cleanup_pipeline.orchestration import jobs, reports
from cleanup_pipeline.orchestration.jobs import run_config_for
from cleanup_pipeline.orchestration.resources import RunOptions
from tests.support import recording
from tests.support.aws_state import read_state
from tests.support.items import DAY, n, s
from tests.support.items import now_ms as wall_ms
from tests.support.jobs import execute_job, metadata, read_report
from tests.support.malformed_corpus import candidate, warnable
from tests.support.moto_env import moto_world
from tests.support.run_capture import HOUR

DELETES = [f"d{i:02d}" for i in range(30)]  # over the guard's floor of 25: blocked
NOTIFIES = ["n0", "n1", "kind-changed"]
CAME_BACK, NEWCOMER = "d00", "newcomer"
BROKEN = [f"broken-{i}" for i in range(3)]  # invalid: over max_invalid_fraction (1%)


@dataclass
class World:
    clients: AwsClients
    settings: Settings
    as_of: int
    instance: dg.DagsterInstance
    runs: dict[str, dg.ExecuteInProcessResult] = field(default_factory=dict)
    users_after_bad_data: list[str] = field(default_factory=list)
    writes_of_bad_data: list[str] = field(default_factory=list)

    def run(
        self, approved_run_id: str | None = None, dry_run: bool = False
    ) -> dg.ExecuteInProcessResult:
        recording.CALLS.clear()
        run_config = run_config_for(
            str(self.as_of), dry_run=dry_run, approved_run_id=approved_run_id
        )
        return execute_job(run_config, instance=self.instance)


def _evaluation(result: dg.ExecuteInProcessResult, check: str) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == check)


def _failure(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    data = failures[0].step_failure_data
    return failures[0].step_key, data.user_failure_data.description


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    as_of = wall_ms() - HOUR
    with moto_world(tmp_path_factory.mktemp("reports")) as (clients, settings):
        ddb, table = clients.dynamodb, settings.users_table
        pads = [candidate(f"pad-{i:03d}", as_of, lastVisitAt=n(as_of - DAY)) for i in range(200)]
        users = [candidate(u, as_of) for u in DELETES] + [warnable(u, as_of) for u in NOTIFIES]
        put_items(ddb, table, users + pads)
        w = World(clients, settings, as_of, dg.DagsterInstance.ephemeral())
        w.runs["blocked"] = w.run()
        reviewed = w.runs["blocked"].run_id
        # After the review: one candidate came back, one new candidate appeared, a user who was
        # to be warned is now to be deleted; and, for one run, the data went bad.
        ddb.update_item(
            TableName=table,
            Key={"id": s(CAME_BACK)},
            UpdateExpression="SET lastVisitAt = :now",
            ExpressionAttributeValues={":now": n(wall_ms())},
        )
        put_items(ddb, table, [candidate(NEWCOMER, as_of)])
        put_items(ddb, table, [candidate("kind-changed", as_of)])
        put_items(ddb, table, [{"id": s(u), "email": s(f"{u}@example.com")} for u in BROKEN])
        w.runs["bad_data"] = w.run(approved_run_id=reviewed)
        w.users_after_bad_data = list(read_state(clients, settings).users)
        w.writes_of_bad_data = recording.writes()
        for user_id in BROKEN:
            ddb.delete_item(TableName=table, Key={"id": s(user_id)})
        w.runs["approved"] = w.run(approved_run_id=reviewed)
        yield w


def test_a_blocked_run_tells_the_operator_how_to_approve_it_with_its_own_id(world: World):
    blocked = world.runs["blocked"]
    assert not blocked.success
    check = _evaluation(blocked, "deletions_within_limit")
    assert check.passed is False
    assert f"`cleanup-pipeline run --approve {blocked.run_id}`" in check.description
    assert f"approved_run_id: {blocked.run_id}" in check.description
    assert (
        check.metadata["approve_with"].value == f"cleanup-pipeline run --approve {blocked.run_id}"
    )
    assert metadata(blocked, "candidate_report")["path"]


def test_an_approval_does_not_lift_the_data_quality_guard(world: World):
    bad = world.runs["bad_data"]
    assert not bad.success
    assert _evaluation(bad, "invalid_share_within_limit").passed is False
    assert "--approve" not in (_evaluation(bad, "invalid_share_within_limit").description or "")
    assert _evaluation(bad, "deletions_within_limit").passed is True  # the reviewed set
    assert not any(
        e.asset_key.path == ["deleted_accounts"] for e in bad.get_asset_materialization_events()
    )


def test_the_approved_run_acts_only_on_reviewed_candidates_who_still_are(world: World):
    approved = world.runs["approved"]
    assert approved.success
    users = read_state(world.clients, world.settings).users
    assert not set(DELETES[1:]) & set(users)  # the reviewed, still-candidate deletions
    for kept in (CAME_BACK, NEWCOMER, "kind-changed"):
        assert kept in users
    report = read_report(approved).set_index("id")
    assert report.loc[NEWCOMER, ["decision", "outcome"]].tolist() == ["delete", "not_approved"]
    assert report.loc["kind-changed", ["decision", "outcome"]].tolist() == [
        "delete",
        "not_approved",
    ]
    assert CAME_BACK not in report.index  # active now: not a candidate at all
    assert report.loc[["n0", "n1"], "outcome"].tolist() == ["warned", "warned"]
    assert (report.loc[DELETES[1:], "outcome"] == "deleted").all()


def test_the_guards_count_only_the_approved_and_do_not_block_them(world: World):
    approved = world.runs["approved"]
    check = _evaluation(approved, "deletions_within_limit")
    assert check.passed is True
    assert check.metadata["count"].value == len(DELETES) - 1
    assert f"reviewed in run {world.runs['blocked'].run_id}" in check.metadata["why"].value
    decided = metadata(approved, "user_decisions")
    assert (decided["delete"], decided["not_approved"], decided["not_approved_delete"]) == (
        len(DELETES) + 1,
        2,
        2,
    )


def test_the_approval_is_recorded_in_the_run_tags_and_the_report(world: World):
    approved, reviewed = world.runs["approved"], world.runs["blocked"].run_id
    run = world.instance.get_run_by_id(approved.run_id)
    assert run is not None and run.tags[APPROVED_RUN_TAG] == reviewed
    report = pd.read_parquet(metadata(approved, "cleanup_report")["path"])
    assert report.attrs["approved_run_id"] == reviewed
    summary = Path(metadata(approved, "cleanup_report")["summary"]).read_text()
    assert f"| approved run | {reviewed} |" in summary
    assert metadata(approved, "cleanup_report")["outcome/not_approved"] == 2


def _refused(world: World, run_id: str, message: str) -> dg.ExecuteInProcessResult:
    before = read_state(world.clients, world.settings)
    result = world.run(approved_run_id=run_id)
    assert not result.success
    step, description = _failure(result)
    assert step == "user_decisions" and message in description
    # The same id is refused again on a retry: the step fails at once.
    assert not [e for e in result.all_events if e.is_step_up_for_retry]
    assert recording.writes() == []
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert not materialized & {"candidate_report", "user_decisions", "cleanup_report"}
    assert read_state(world.clients, world.settings) == before
    return result


def test_an_unknown_run_and_a_reportless_run_are_refused_before_any_side_effect(world: World):
    unknown = _refused(world, "0000-no-such-run", "no such run in this Dagster instance")
    _refused(world, unknown.run_id, "has no candidate report")


def test_a_run_of_another_job_is_refused(world: World):
    other = defs.resolve_job_def("manage_hold").execute_in_process(
        run_config={"ops": {"change_hold": {"config": {"action": "remove", "user_id": "x"}}}},
        instance=world.instance,
        raise_on_error=False,
    )
    _refused(world, other.run_id, "is a run of 'manage_hold', not of 'inactive_accounts_cleanup'")


def test_a_run_older_than_approval_max_age_days_is_refused(world: World, monkeypatch):
    later = jobs.now_ms() + 7 * DAY + 60_000
    monkeypatch.setattr(jobs, "now_ms", lambda: later)
    _refused(world, world.runs["blocked"].run_id, "older than approval_max_age_days (7)")


def test_a_run_whose_report_is_gone_is_refused(world: World, tmp_path):
    reviewed = world.runs["blocked"]
    path = Path(metadata(reviewed, "candidate_report")["path"])
    moved = tmp_path / path.name
    path.rename(moved)
    try:
        _refused(world, reviewed.run_id, "cannot be read")
    finally:
        moved.rename(path)


def test_each_run_tags_the_digests_of_the_candidates_its_report_lists(world: World):
    for name in ("blocked", "approved"):
        result = world.runs[name]
        tags = world.instance.get_run_by_id(result.run_id).tags
        report = pd.read_parquet(metadata(result, "candidate_report")["path"])
        assert candidate_digests(report_candidates(report)).items() <= tags.items()


def test_a_report_with_ids_swapped_after_its_run_is_refused(world: World):
    # The reviewed report edited after the review: a reviewed delete candidate and a user the
    # review saw as a notify candidate (now a delete candidate) change places.
    reviewed = world.runs["blocked"]
    path = Path(metadata(reviewed, "candidate_report")["path"])
    original = path.read_bytes()
    report = pd.read_parquet(path)
    rows = report.index[report["id"].isin(["d05", "kind-changed"])]
    report.loc[rows, "id"] = report.loc[rows[::-1], "id"].to_numpy()
    assert set(report.loc[report["decision"] == "delete", "id"]) >= {"kind-changed"}
    report.to_parquet(path)
    try:
        _refused(world, reviewed.run_id, "the report was changed after the run")
    finally:
        path.write_bytes(original)


def test_a_run_that_recorded_no_digests_is_refused(world: World, monkeypatch):
    # As a run from before the digests, or one that died between its report and its tags.
    monkeypatch.setattr(reports, "candidate_digests", lambda _: {})
    untagged = world.run(dry_run=True)
    assert untagged.success
    monkeypatch.undo()
    _refused(world, untagged.run_id, "has no digest of its candidates")


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_approved_run_id_fails_the_launch_before_any_aws_call(aws, blank: str):
    # As the launchpad sends it: an empty field is not "no approval".
    recording.CALLS.clear()
    run_config = run_config_for(str(wall_ms()))
    run_config["resources"]["run_options"]["config"]["approved_run_id"] = blank
    result = execute_job(run_config)
    assert not result.success
    assert recording.CALLS == [] and result.get_asset_materialization_events() == []
    init = dg.DagsterEventType.RESOURCE_INIT_FAILURE
    [failure] = [e for e in result.all_events if e.event_type == init]
    started = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert failure.step_key is None and started == []
    message = failure.event_specific_data.error.message
    assert "approved_run_id" in message and "not be blank" in message


def test_an_absent_approved_run_id_is_no_approval():
    assert RunOptions().approved_run_id is None
    assert RunOptions(approved_run_id=" r1 ").approved_run_id == "r1"

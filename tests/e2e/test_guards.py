"""Guards through real Dagster execution: history from the instance, actions alone, overrides."""

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.job import JOB_NAME, inactive_accounts_cleanup, run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from tests.e2e import recording
from tests.e2e.test_job import metadata, sent_to
from tests.e2e.world import AS_OF_ISO, DAY_MS, A, put_all, scan_all, seed_world, user, warned

# Size guards opened wide so that only the history guard can stop a run.
OPEN = {"max_delete_fraction": 0.9, "max_notify_fraction": 0.9, "send_rate_per_second": 500}
# The default size limits.
SIZE = {"max_delete_fraction": 0.05, "max_notify_fraction": 0.2}


def execute(
    instance: dg.DagsterInstance,
    run_config: dict[str, Any],
    policy: CleanupPolicy,
    selection: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    resources = {
        "aws": recording.RecordingAwsEnvironment(),
        "cleanup_policy": policy,
        "run_options": RunOptions(),
        "reports_s3": S3Resource(),
    }
    # The same assets, checks and job, bound to the test's resources (a subset selection
    # refuses resources passed at execution time).
    bound = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[inactive_accounts_cleanup],
        resources=resources,
    )
    return bound.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config,
        instance=instance,
        asset_selection=[dg.AssetKey(name) for name in selection] if selection else None,
        raise_on_error=False,
    )


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def evaluation(result: dg.ExecuteInProcessResult, check: str) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == check)


def assert_blocked_by_history(blocked: dg.ExecuteInProcessResult, count: int, median: int) -> None:
    """The run failed on `deletions_match_history` alone among the deletion limits."""
    assert not blocked.success
    assert checks(blocked)["deletions_match_history"] is False
    assert checks(blocked)["deletions_within_limit"] is True
    history = evaluation(blocked, "deletions_match_history").metadata
    assert history["count"].value == count
    assert f"median ({median})" in history["why"].value


def add_delete_candidates(clients, settings, count: int) -> None:
    users = [user(f"extra-{i:03d}", **warned(A - 45 * DAY_MS)) for i in range(count)]
    put_all(clients.dynamodb, settings.users_table, users)


@pytest.fixture(autouse=True)
def fresh_recording():
    recording.CALLS.clear()
    recording.FAULTS.clear()


def test_history_guard_blocks_a_jump_and_allow_mass_action_lifts_it(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    instance = dg.DagsterInstance.ephemeral()
    policy = CleanupPolicy(**OPEN)
    dry = run_config_for(AS_OF_ISO, dry_run=True)

    for _ in range(3):  # three successful runs, 5 delete candidates each
        result = execute(instance, dry, policy)
        assert result.success
        assert checks(result)["deletions_match_history"] is True
    add_delete_candidates(clients, settings, 26)  # 31 > 25 floor and > 5 x median 5

    blocked = execute(instance, run_config_for(AS_OF_ISO), policy)
    assert_blocked_by_history(blocked, count=31, median=5)
    assert evaluation(blocked, "deletions_match_history").metadata["limit"].value == 25.0
    assert recording.writes() == [] and sent_to() == []

    allowed = execute(instance, run_config_for(AS_OF_ISO, allow_mass_action=True), policy)
    assert allowed.success
    assert metadata(allowed, "deleted_accounts")["deleted"] == 31
    tags = instance.get_run_by_id(allowed.run_id).tags
    assert tags["cleanup_pipeline/allow_mass_action"] == "true"
    report = pd.read_parquet(metadata(allowed, "cleanup_report")["path"])
    assert report.attrs["allow_mass_action"] is True
    assert report.attrs["run_id"] == allowed.run_id

    # Failed runs never count as history: the blocked run is not among the successful ones.
    later = execute(instance, run_config_for(AS_OF_ISO, dry_run=True), policy)
    assert later.success


def test_history_guard_waits_for_three_earlier_runs(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    add_delete_candidates(clients, settings, 40)
    instance = dg.DagsterInstance.ephemeral()
    result = execute(instance, run_config_for(AS_OF_ISO, dry_run=True), CleanupPolicy(**OPEN))
    assert result.success
    assert checks(result)["deletions_match_history"] is True


def test_an_action_materialized_alone_applies_the_guards_itself(aws) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=1)
    instance = dg.DagsterInstance.ephemeral()
    strict = CleanupPolicy(min_guarded_count=1, max_delete_fraction=0.0, send_rate_per_second=500)
    first = execute(instance, run_config_for(AS_OF_ISO), strict)
    assert not first.success  # the blocking check stopped the run
    recording.CALLS.clear()

    alone = execute(instance, run_config_for(AS_OF_ISO), strict, selection=["warning_emails"])
    assert not alone.success
    assert sent_to() == [] and recording.writes() == []
    failure = alone.get_step_failure_events()[0].step_failure_data.error
    assert "deletions_within_limit" in failure.message
    assert scan_all(clients.dynamodb, settings.users_table) == seeded.users

    deletions = execute(
        instance,
        run_config_for(AS_OF_ISO),
        strict,
        selection=["deleted_accounts"],
    )
    assert not deletions.success and recording.writes() == []


def test_deploy_dagster_yaml_limits_the_job_to_one_run_at_a_time(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).parents[2] / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        config = instance.get_concurrency_config().run_queue_config
        expected = {"key": "cleanup_pipeline/job", "value": "inactive_accounts_cleanup", "limit": 1}
        assert expected in config.tag_concurrency_limits
        assert config.max_concurrent_runs == 10
    finally:
        instance.dispose()
    job = defs.resolve_job_def(JOB_NAME)
    assert job.tags["cleanup_pipeline/job"] == "inactive_accounts_cleanup"


def test_a_blocked_run_shows_which_guard_failed_and_why(aws) -> None:
    """The failed check states the count, the limit and the settings behind it; the candidate
    report and its summary, written before any action, say that nothing was attempted."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    add_delete_candidates(clients, settings, 30)
    instance = dg.DagsterInstance.ephemeral()
    blocked = execute(instance, run_config_for(AS_OF_ISO), CleanupPolicy(**{**OPEN, **SIZE}))
    assert not blocked.success
    assert not blocked.is_node_success("warning_emails")
    assert recording.writes() == [] and sent_to() == []

    decided = metadata(blocked, "user_decisions")
    delete, valid = decided["delete"], decided["users"] - decided["invalid"]
    assert delete > 25
    failed = evaluation(blocked, "deletions_within_limit")
    assert failed.passed is False
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.description == (
        f"{delete} delete candidates is over the limit of 25 (the larger of min_guarded_count "
        f"25 and max_delete_fraction 5% of {valid} valid users). After reviewing this run's "
        f"candidate report, approve exactly that set with `cleanup-pipeline run --approve "
        f"{blocked.run_id}` or, in the launchpad, run_options approved_run_id: {blocked.run_id}"
    )
    values = {key: value.value for key, value in failed.metadata.items()}
    assert values["count"] == delete
    assert values["limit"] == 25.0
    assert values["over_by"] == delete - 25
    assert values["rule"] == "deletions_within_limit"

    report_meta = metadata(blocked, "candidate_report")
    assert report_meta["guards_passed"] is False
    assert report_meta["blocked_by"] == "deletions_within_limit"
    assert report_meta["actions"].startswith("**Blocked** by `deletions_within_limit`")
    assert "| deletions_within_limit | **FAILED** |" in report_meta["guards"]
    assert "| warnings_within_limit | passed |" in report_meta["guards"]
    assert report_meta["outcome/not_attempted"] == delete + decided["notify"]
    assert report_meta["outcome/warned"] == report_meta["outcome/deleted"] == 0
    report = pd.read_parquet(report_meta["path"])
    assert report.attrs["blocked_by"] == ["deletions_within_limit"]
    assert report.attrs["stage"] == "candidate"
    summary = Path(report_meta["summary"]).read_text(encoding="utf-8")
    assert "**Blocked** by `deletions_within_limit`: no action was attempted" in summary
    assert f"- `deletions_within_limit`: {values['why']}" in summary
    assert f"`cleanup-pipeline run --approve {blocked.run_id}`" in summary
    assert "cleanup_report" not in {
        e.asset_key.path[-1] for e in blocked.get_asset_materialization_events()
    }

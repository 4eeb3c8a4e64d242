"""Guards through real Dagster execution: history from the instance, actions alone, overrides."""

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.jobs import JOB_NAME, run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import scan_all, sent_to
from tests.support.history_guard import OPEN, add_delete_candidates, assert_blocked_by_history
from tests.support.jobs import check_results, evaluation, execute_job, metadata
from tests.support.world import AS_OF_ISO, seed_world

# The default size limits.
SIZE = {"max_delete_fraction": 0.05, "max_notify_fraction": 0.2}
pytestmark = pytest.mark.usefixtures("fresh_recording")


def test_history_guard_blocks_a_jump_and_allow_mass_action_lifts_it(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    instance = dg.DagsterInstance.ephemeral()
    policy = CleanupPolicy(**OPEN)
    dry = run_config_for(AS_OF_ISO, dry_run=True)

    for _ in range(3):  # three successful runs, 5 delete candidates each
        result = execute_job(dry, policy=policy, instance=instance)
        assert result.success
        assert check_results(result)["deletions_match_history"] is True
    add_delete_candidates(clients, settings, 26)  # 31 > 25 floor and > 5 x median 5

    blocked = execute_job(run_config_for(AS_OF_ISO), policy=policy, instance=instance)
    assert_blocked_by_history(blocked, count=31, median=5)
    assert evaluation(blocked, "deletions_match_history").metadata["limit"].value == 25.0
    assert recording.writes() == [] and sent_to() == []

    allowed = execute_job(
        run_config_for(AS_OF_ISO, allow_mass_action=True), policy=policy, instance=instance
    )
    assert allowed.success
    assert metadata(allowed, "deleted_accounts")["deleted"] == 31
    tags = instance.get_run_by_id(allowed.run_id).tags
    assert tags["cleanup_pipeline/allow_mass_action"] == "true"
    report = pd.read_parquet(metadata(allowed, "cleanup_report")["path"])
    assert report.attrs["allow_mass_action"] is True
    assert report.attrs["run_id"] == allowed.run_id

    # Failed runs never count as history: the blocked run is not among the successful ones.
    later = execute_job(run_config_for(AS_OF_ISO, dry_run=True), policy=policy, instance=instance)
    assert later.success


def test_history_guard_waits_for_three_earlier_runs(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    add_delete_candidates(clients, settings, 40)
    instance = dg.DagsterInstance.ephemeral()
    result = execute_job(
        run_config_for(AS_OF_ISO, dry_run=True), policy=CleanupPolicy(**OPEN), instance=instance
    )
    assert result.success
    assert check_results(result)["deletions_match_history"] is True


def test_an_action_materialized_alone_applies_the_guards_itself(aws) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=1)
    instance = dg.DagsterInstance.ephemeral()
    strict = CleanupPolicy(min_guarded_count=1, max_delete_fraction=0.0, send_rate_per_second=500)
    first = execute_job(run_config_for(AS_OF_ISO), policy=strict, instance=instance)
    assert not first.success  # the blocking check stopped the run
    recording.CALLS.clear()

    alone = execute_job(
        run_config_for(AS_OF_ISO), policy=strict, instance=instance, selection=["warning_emails"]
    )
    assert not alone.success
    assert sent_to() == [] and recording.writes() == []
    failure = alone.get_step_failure_events()[0].step_failure_data.error
    assert "deletions_within_limit" in failure.message
    assert scan_all(clients.dynamodb, settings.users_table) == seeded.users

    deletions = execute_job(
        run_config_for(AS_OF_ISO),
        policy=strict,
        instance=instance,
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
    blocked = execute_job(
        run_config_for(AS_OF_ISO), policy=CleanupPolicy(**{**OPEN, **SIZE}), instance=instance
    )
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

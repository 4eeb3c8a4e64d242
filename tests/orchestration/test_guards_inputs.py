"""A run's actions check the guards on that run's own decisions, whatever other runs did since.

Two CLI runs share one Dagster instance: the newest `user_decisions` on it may be another run's.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.guards import GuardInputs
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.guards import enforce_before_actions
from cleanup_pipeline.orchestration.jobs import JOB_NAME, inactive_accounts_cleanup, run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from tests.support import recording
from tests.support.items import user, warned
from tests.support.world import AS_OF_ISO, A, seed_world

ACTION_OPS = {"warning_emails", "split_deletion_candidates"}


class OtherRunFirst(PickledObjectFilesystemIOManager):
    """This run's own storage; right before this run's first action step loads its inputs,
    another run on the same instance is executed (once)."""

    def __init__(self, base_dir: str, other_run: Any) -> None:
        super().__init__(base_dir=base_dir)
        self.other_run = other_run

    def load_input(self, context: dg.InputContext) -> Any:
        if self.other_run is not None and context.op_def.name in ACTION_OPS:
            other_run, self.other_run = self.other_run, None
            other_run()
        return super().load_input(context)


def execute(instance: dg.DagsterInstance, as_of: str, io_manager: Any) -> dg.ExecuteInProcessResult:
    bound = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[inactive_accounts_cleanup],
        resources={
            "aws": recording.RecordingAwsEnvironment(),
            "cleanup_policy": CleanupPolicy(send_rate_per_second=500),
            "run_options": RunOptions(),
            "reports_s3": S3Resource(),
            "io_manager": io_manager,
        },
    )
    return bound.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config_for(as_of), instance=instance, raise_on_error=False
    )


def decided(result: dg.ExecuteInProcessResult, asset: str, key: str) -> Any:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return events[-1].materialization.metadata[key].value


def test_actions_recheck_this_runs_counts_not_the_newest_on_the_instance(
    aws, tmp_path: Path
) -> None:
    """Run B decides a few candidates; before its actions start, run A on the same instance
    decides many more (a month later, 40 warned users are due) and is blocked. B's actions
    still act: they check B's own counts, not A's newer `user_decisions`."""
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    due_later = [user(f"due-{i:03d}", **warned(A - 10 * DAY_MS)) for i in range(40)]
    batch_write(clients.dynamodb, settings.users_table, due_later)
    instance = dg.DagsterInstance.ephemeral()
    later = format_ms(A + 30 * DAY_MS)
    other: dict[str, dg.ExecuteInProcessResult] = {}

    def run_a() -> None:
        own_storage = dg.FilesystemIOManager(base_dir=str(tmp_path / "run_a"))
        other["a"] = execute(instance, later, own_storage)

    run_b = execute(instance, AS_OF_ISO, OtherRunFirst(str(tmp_path / "run_b"), run_a))

    run_a_result = other["a"]
    assert not run_a_result.success
    blocked = {e.check_name for e in run_a_result.get_asset_check_evaluations() if not e.passed}
    assert "deletions_within_limit" in blocked
    newest = instance.get_latest_materialization_event(dg.AssetKey("user_decisions"))
    assert newest is not None and newest.run_id == run_a_result.run_id
    assert decided(run_a_result, "user_decisions", "delete") > 40

    assert run_b.success
    assert decided(run_b, "user_decisions", "delete") < 25
    assert decided(run_b, "deleted_accounts", "deleted") == decided(
        run_b, "user_decisions", "delete"
    )
    assert decided(run_b, "warning_emails", "notified") == decided(
        run_b, "user_decisions", "notify"
    )


def test_actions_refuse_candidates_decided_with_other_guard_inputs() -> None:
    """An action materialized alone after only part of another run was stored: its candidates
    and its guard inputs disagree, and it acts on neither."""
    counts = {"users": 100, "invalid": 0, "notify": 2, "delete": 3}
    inputs = GuardInputs(counts, history=[])
    candidates = pd.DataFrame({"id": ["a", "b"]})
    with pytest.raises(dg.Failure, match="2 delete candidates, but the guard inputs count 3"):
        enforce_before_actions(inputs, candidates, Decision.DELETE, CleanupPolicy(), False, "r")
    enforce_before_actions(inputs, candidates, Decision.NOTIFY, CleanupPolicy(), False, "r")

"""Long steps log progress to the run's event log while they work (SPEC §10), here with a
short interval and slowed AWS calls standing in for a big table and a long send queue."""

import time
from typing import Any

import dagster as dg

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.jobs import JOB_NAME, run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from tests.support import recording
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, seed_world

SLOW = {"Scan": 0.1, "SendEmail": 0.2, "BatchGetItem": 0.2}


def slow_calls(operation: str, _params: dict[str, Any]) -> None:
    time.sleep(SLOW.get(operation, 0))


def test_scan_warnings_and_deletion_batches_log_progress_while_they_work(
    aws, fresh_recording: None
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    recording.FAULTS.append(slow_calls)
    instance = dg.DagsterInstance.ephemeral()
    policy = CleanupPolicy(
        send_rate_per_second=200, progress_log_seconds=0.05, scan_segments=2, send_workers=1
    )
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config_for(AS_OF_ISO),
        resources={
            "aws": recording.RecordingAwsEnvironment(),
            "cleanup_policy": policy,
            "run_options": RunOptions(),
        },
        instance=instance,
        raise_on_error=False,
    )
    assert result.success

    def lines(step: str, start: str) -> list[str]:
        return [
            r.user_message
            for r in instance.all_logs(result.run_id)
            if r.step_key == step and r.user_message.startswith(start)
        ]

    scanned = lines("users_snapshot", "users scanned: ")
    assert len(scanned) >= 3  # every 0.05 s while the slowed scan runs, and a last line
    assert "so far" in scanned[0] and scanned[-1].startswith("users scanned: 443 so far")

    warnings = lines("warning_emails", "warnings: ")
    total = len(NOTIFIED)
    assert len(warnings) >= 3
    assert any(f" of {total} users (" in w and " left;" in w for w in warnings[:-1])
    assert warnings[-1].startswith(f"warnings: {total} of {total} users (100%)")
    assert f"sent {total} at up to 200/s" in warnings[-1]

    [batch_step] = {
        r.step_key
        for r in instance.all_logs(result.run_id)
        if r.step_key and r.step_key.startswith("deleted_accounts.delete_account_batch")
    }
    deletions = lines(batch_step, "deletion batch_0000 ")
    assert len(deletions) >= 2
    assert deletions[0].startswith(f"deletion batch_0000 ({len(DELETED)} users): ")
    assert deletions[-1].startswith(f"deletion batch_0000 ({len(DELETED)} users): 7 of 7 stages")
    assert "last: user items" in deletions[-1]

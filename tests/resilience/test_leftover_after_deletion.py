"""Proof of deletion in the real job: the app writes a file into a deleted user's folder right
after the cascade deleted it and before the proof looks. That user fails with `leftover in
files`, and so does the run; the next run removes the file and records `verified`. The report,
the UI metadata and the run's JSON count the verified users; a dry run verifies nothing.

Each case is a run of the real job with deletion batches of 10, in process against moto; a
botocore hook on the job's own clients makes the write at the right moment.
"""

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.recovery import PENDING
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.jobs import run_config_for, summarize
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import keys_under
from tests.support.items import active_user, delete_candidate, now_ms
from tests.support.jobs import execute_job, metadata, read_report
from tests.support.moto_env import moto_world
from tests.support.recovery_world import archive, ledger, versions_under
from tests.support.run_capture import HOUR

TARGET = "c03"
USERS = [f"c{i:02d}" for i in range(15)]  # two batches of 10
POLICY = CleanupPolicy(send_rate_per_second=200, deletion_batch_size=10)
AS_OF = now_ms() - HOUR
ZEROS = {"files": 0, "features": 0, "scoreboards": 0}


@dataclass
class Run:
    result: dg.ExecuteInProcessResult
    summary: dict[str, Any]


def execute(dry_run: bool = False) -> Run:
    instance = dg.DagsterInstance.ephemeral()
    recording.CALLS.clear()
    result = execute_job(
        run_config_for(str(AS_OF), dry_run=dry_run), policy=POLICY, instance=instance
    )
    return Run(result, summarize(instance, result.run_id, result.success, None, dry_run))


def seed(clients: AwsClients, settings: Settings) -> None:
    db, s3 = clients.dynamodb, clients.s3
    pads = [active_user(f"pad-{i}", AS_OF) for i in range(300)]  # under the deletion guard
    batch_write(db, settings.users_table, [*(delete_candidate(u, AS_OF) for u in USERS), *pads])
    for user_id in USERS:
        s3.put_object(Bucket=settings.public_bucket_name, Key=f"{user_id}/a.txt", Body=b"x")


def write_after_deletion(clients: AwsClients, settings: Settings) -> Any:
    """Once the cascade's DeleteObjects has hidden TARGET's files, at the job's next AWS call
    (before its proof can look), the app writes a new file into TARGET's folder."""
    state: dict[str, bool] = {"deleted": False, "written": False}
    lock = threading.Lock()

    def fault(operation: str, params: dict[str, Any]) -> None:
        with lock:
            if state["written"]:
                return
            keys = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
            if operation == "DeleteObjects" and f"{TARGET}/a.txt" in keys:
                state["deleted"] = True
                return
            if state["deleted"]:
                state["written"] = True
                clients.s3.put_object(
                    Bucket=settings.public_bucket_name, Key=f"{TARGET}/late.txt", Body=b"late"
                )

    return fault, state


@dataclass
class LeftoverRuns:
    first: Run
    second: Run
    clients: AwsClients
    settings: Settings
    journals_between: list[str]
    written: bool
    events_between: list[str]


@pytest.fixture(scope="module", params=[30, 0], ids=lambda w: f"window-{w}")
def runs(request, tmp_path_factory) -> Iterator[LeftoverRuns]:
    window = request.param
    # Its own folder: the archive is kept beside the reports folder.
    reports = tmp_path_factory.mktemp(f"window-{window}") / "reports"
    with moto_world(reports) as (clients, base), pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESTORE_WINDOW_DAYS", str(window))
        settings = dataclasses.replace(base, restore_window_days=window)
        seed(clients, settings)
        fault, state = write_after_deletion(clients, settings)
        recording.FAULTS.append(fault)
        first = execute()
        recording.FAULTS.clear()
        between = archive(clients, settings).keys(PENDING)
        events = [e["event"] for e in ledger(clients, settings, TARGET)]
        second = execute()
        yield LeftoverRuns(first, second, clients, settings, between, state["written"], events)


def test_the_leftover_fails_the_user_and_the_run(runs):
    assert runs.written
    assert not runs.first.result.success
    assert runs.first.summary["status"] == "failure"
    row = read_report(runs.first.result).set_index("id").loc[TARGET]
    assert (row["outcome"], row["step"], row["error"]) == ("failed", "verify", "leftover in files")
    report = read_report(runs.first.result)
    others = report[report["id"].isin([u for u in USERS if u != TARGET])]
    assert set(others["outcome"]) == {"deleted"}


def test_the_first_run_counts_what_it_verified(runs):
    counted = metadata(runs.first.result, "deleted_accounts")
    assert (counted["deleted"], counted["failed"], counted["verified"]) == (14, 1, 14)
    report = metadata(runs.first.result, "cleanup_report")
    assert (report["verified"], report["ledger_verified"], report["ledger_deleted"]) == (14, 14, 15)
    counts = runs.first.summary["counts"]
    assert (counts["deleted"], counts["failed"], counts["verified"]) == (14, 1, 14)


def test_the_deletion_is_recorded_and_stays_journalled_unverified(runs):
    assert runs.events_between == ["deleted"]
    assert runs.journals_between != []
    for user_id in (u for u in USERS if u != TARGET):
        events = ledger(runs.clients, runs.settings, user_id)
        assert [e["event"] for e in events] == ["deleted", "verified"], user_id
        assert events[0]["stores"] == {"files": 1, "features": 0, "scoreboards": 0}
        assert events[1]["stores"] == ZEROS


def test_the_next_run_removes_the_leftover_and_records_verified(runs):
    assert runs.second.result.success
    assert keys_under(runs.clients.s3, runs.settings.public_bucket_name, f"{TARGET}/") == []
    if runs.settings.restore_window_days == 0:
        assert versions_under(runs.clients, runs.settings, f"{TARGET}/") == []
    deleted, verified = ledger(runs.clients, runs.settings, TARGET)
    assert (deleted["event"], deleted["run_id"]) == ("deleted", runs.first.result.run_id)
    assert (verified["event"], verified["run_id"]) == ("verified", runs.second.result.run_id)
    assert verified["stores"] == ZEROS
    assert archive(runs.clients, runs.settings).keys(PENDING) == []
    settled = metadata(runs.second.result, "unfinished_deletions")
    assert (settled["verified"], settled["failed"]) == (1, 0)
    report = metadata(runs.second.result, "cleanup_report")
    assert (report["ledger_verified_late"], report["verified"]) == (1, 0)
    assert runs.second.summary["counts"]["verified"] == 0


def test_a_dry_run_verifies_nothing_and_writes_nothing(tmp_path):
    with moto_world(tmp_path / "reports") as (clients, settings):
        seed(clients, settings)
        run = execute(dry_run=True)
        assert run.result.success
        assert recording.writes() == []
        assert metadata(run.result, "deleted_accounts")["verified"] == 0
        assert run.summary["counts"]["verified"] == 0
        assert ledger(clients, settings, USERS[0]) == []

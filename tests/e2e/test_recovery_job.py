"""The restore window through the real Dagster jobs and the console script, in process against
in-process moto: the versioning check, the ledger counts in the report, the `restore_account`
job, `cleanup-pipeline restore` and `ledger`, and the purge at the end of a run."""

import json
from typing import Any

import dagster as dg
import pytest

from cleanup_pipeline.actions import purge
from cleanup_pipeline.aws.clients import shared_clients
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.recovery import DAY_MS
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.orchestration.jobs import run_config_for
from tests.support import recording
from tests.support.aws_state import keys_under, scan_all
from tests.support.jobs import error_messages, metadata
from tests.support.jobs import execute_job as execute
from tests.support.jobs import execute_restore as restore_job
from tests.support.world import AS_OF_ISO, DELETED, seed_world


@pytest.fixture(autouse=True)
def fresh_recording():
    recording.CALLS.clear()
    recording.FAULTS.clear()
    yield
    recording.FAULTS.clear()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(list(args))
    lines = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(lines[-1])


def cli_refusal(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """Exit status, stdout lines and the one error line of a command that refuses."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    [error] = err.strip().splitlines()
    return code, out.strip().splitlines(), error


def test_unversioned_bucket_with_a_window_fails_before_any_side_effect(aws, monkeypatch):
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    clients.s3.put_bucket_versioning(
        Bucket=settings.public_bucket_name, VersioningConfiguration={"Status": "Suspended"}
    )
    users = scan_all(clients.dynamodb, settings.users_table)

    result = execute()

    assert not result.success
    # Nothing written and the users table never scanned: only the check that the data map's
    # stores exist, the versioning check and the holds and requests reads of the run's first
    # steps reached AWS.
    assert recording.writes() == []
    calls = [
        (name, params.get("TableName") or params.get("Bucket")) for name, params in recording.CALLS
    ]
    tables = (settings.users_table, settings.emails_table, settings.holds_table)
    tables += (settings.features_table, settings.scoreboards_table)
    assert sorted(calls) == sorted(
        [
            *(("DescribeTable", table) for table in tables),
            ("GetBucketVersioning", settings.public_bucket_name),  # the bucket exists
            ("GetBucketVersioning", settings.public_bucket_name),  # and keeps versions
            ("Scan", settings.holds_table),
            ("Scan", settings.requests_table),
        ]
    )
    errors = [
        error_messages(e.step_failure_data.error) for e in result.all_events if e.is_step_failure
    ]
    assert any("put-bucket-versioning" in m and "RESTORE_WINDOW_DAYS=0" in m for m in errors)
    assert scan_all(clients.dynamodb, settings.users_table) == users

    monkeypatch.setenv("RESTORE_WINDOW_DAYS", "0")  # no window: no versioning needed
    assert execute().success
    assert not any(
        key.startswith("u1/") for key in keys_under(clients.s3, settings.public_bucket_name)
    )


def test_run_then_restore_from_the_job_and_the_console_script(aws, capsys):
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    run = execute()
    assert run.success
    report = metadata(run, "cleanup_report")
    assert report["ledger_deleted"] == len(DELETED) and report["ledger_purged"] == 0
    assert metadata(run, "purged_deletions")["purged_users"] == 0

    restored = restore_job("u1")
    assert restored.success
    assert "u1" in scan_all(clients.dynamodb, settings.users_table)
    assert sorted(
        k for k in keys_under(clients.s3, settings.public_bucket_name) if k.startswith("u1/")
    ) == [f"u1/file-{i:04d}.txt" for i in range(3)]
    twice = restore_job("u1")
    assert not twice.success

    code, again = cli(capsys, "restore", "u1")
    assert code == 1 and again["status"] == "refused" and "already restored" in again["reason"]
    code, ledger = cli(capsys, "ledger", "u1")
    events = ledger["events"]
    assert code == 0 and [e["event"] for e in events] == ["deleted", "verified", "restored"]
    assert events[0]["run_id"] == events[1]["run_id"] == run.run_id
    assert events[1]["stores"] == {"files": 0, "features": 0, "scoreboards": 0}
    assert events[2]["run_id"] == restored.run_id

    other = next(uid for uid in DELETED if uid != "u1")
    code, dry = cli(capsys, "restore", other, "--dry-run")
    assert code == 0 and dry["status"] == "dry_run" and dry["restored"]["item"] == 1
    assert other not in scan_all(clients.dynamodb, settings.users_table)
    code, done = cli(capsys, "restore", other)
    assert code == 0 and done["status"] == "restored"
    assert set(done) == {"user_id", "status", "reason", "restored", "skipped"}
    code, never = cli(capsys, "ledger", "nobody")
    assert code == 0 and never == {"user_id": "nobody", "events": []}


def test_the_run_after_the_window_purges_and_reports_it(aws, monkeypatch):
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    monkeypatch.setenv("RESTORE_WINDOW_DAYS", "1.5")
    assert execute().success
    a_day_later = purge.now_ms() + DAY_MS
    monkeypatch.setattr(purge, "now_ms", lambda: a_day_later)
    waiting = execute()
    assert metadata(waiting, "purged_deletions")["purged_users"] == 0
    monkeypatch.setattr(purge, "now_ms", lambda: a_day_later + DAY_MS)  # the window ended

    dry = execute(run_config_dry())
    assert metadata(dry, "purged_deletions")["purged_users"] == len(DELETED)
    second = execute()

    assert second.success
    purged = metadata(second, "purged_deletions")
    assert purged["purged_users"] == len(DELETED) and purged["groups_removed"] >= 1
    assert metadata(second, "cleanup_report")["ledger_purged"] == len(DELETED)
    for uid in DELETED:
        listed = clients.s3.list_object_versions(
            Bucket=settings.public_bucket_name, Prefix=f"{uid}/"
        )
        assert not listed.get("Versions") and not listed.get("DeleteMarkers")
    assert clients.s3.list_object_versions(Bucket=settings.public_bucket_name, Prefix="u1x/")[
        "Versions"
    ]


def run_config_dry() -> dict[str, Any]:
    return run_config_for(AS_OF_ISO, dry_run=True)


def test_a_restore_killed_after_putting_the_account_back_is_finished_by_the_next(aws, capsys):
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    assert execute().success
    _, planned = cli(capsys, "restore", "u1", "--dry-run")
    dynamodb = shared_clients(load_settings()).dynamodb  # the client the console script uses

    class Killed(BaseException):
        pass

    def die(**_: Any) -> None:
        raise Killed

    dynamodb.meta.events.register("after-call.dynamodb.PutItem", die)
    try:
        with pytest.raises(Killed):
            main(["restore", "u1"])
    finally:
        dynamodb.meta.events.unregister("after-call.dynamodb.PutItem", die)
    assert "u1" in scan_all(clients.dynamodb, settings.users_table)

    code, done = cli(capsys, "restore", "u1")

    assert code == 0 and done["status"] == "restored", done
    assert "finished an interrupted restore" in done["reason"]
    assert done["restored"] == planned["restored"] and planned["restored"]["files"] == 3
    code, ledger = cli(capsys, "ledger", "u1")
    assert [e["event"] for e in ledger["events"]] == ["deleted", "verified", "restored"]
    code, again = cli(capsys, "restore", "u1")
    assert code == 1 and "already restored" in again["reason"]


@pytest.mark.parametrize("where", ["folder", "bucket"])
def test_ledger_and_restore_of_a_missing_archive_are_errors_naming_it(
    aws, capsys, monkeypatch, tmp_path, where
):
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    assert execute().success  # a real archive exists beside the misspelled one
    misspelled = str(tmp_path / "archvie") if where == "folder" else "s3://no-such-bucket/arch"
    monkeypatch.setenv("CLEANUP_ARCHIVE_DIR", misspelled)

    code, out, error = cli_refusal(capsys, "ledger", "u1")
    assert code == 2 and out == []  # never an empty list of events
    assert error.startswith("error: CLEANUP_ARCHIVE_DIR") and misspelled in error
    assert "does not exist" in error

    code, out, error = cli_refusal(capsys, "restore", "u1")
    summary = json.loads(out[-1])
    assert code == 1 and summary["status"] == "refused" and misspelled in summary["reason"]
    assert misspelled in error and "does not exist" in error
    assert "u1" not in scan_all(clients.dynamodb, settings.users_table)

    job = restore_job("u1")
    assert not job.success
    failures = [
        error_messages(e.step_failure_data.error) for e in job.all_events if e.is_step_failure
    ]
    assert any(misspelled in m and "does not exist" in m for m in failures)
    assert not (tmp_path / "archvie").exists()  # only a run creates the archive


@pytest.mark.parametrize(
    ("archive", "reports"),
    [
        ("{tmp}/reports", "{tmp}/reports"),
        ("{tmp}/reports/archive", "{tmp}/reports"),
        ("{tmp}", "{tmp}/reports"),
        ("s3://increaser-ops/cleanup/archive", "s3://increaser-ops/cleanup"),
    ],
)
def test_an_archive_overlapping_the_reports_stops_every_command_before_any_side_effect(
    aws, capsys, monkeypatch, tmp_path, archive, reports
):
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=3)
    monkeypatch.setenv("CLEANUP_ARCHIVE_DIR", archive.format(tmp=tmp_path))
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", reports.format(tmp=tmp_path))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    for command, status in (("run", 1), ("restore", 1), ("ledger", 2)):
        code, _, error = cli_refusal(capsys, command, *([] if command == "run" else ["u1"]))
        assert code == status, command
        assert "CLEANUP_ARCHIVE_DIR" in error and "CLEANUP_REPORTS_DIR" in error, command
    launched = execute()  # as from the UI's launchpad
    assert not launched.success
    failures = [
        error_messages(e.event_specific_data.error)
        for e in launched.all_events
        if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE
    ]
    assert failures and "CLEANUP_REPORTS_DIR" in failures[0]

    assert recording.CALLS == []
    assert scan_all(clients.dynamodb, settings.users_table) == seeded.users
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before

"""Requests from the people themselves in a real run of the job (SPEC §12): the deadline counts
in the requests asset, both reports and their summary; the non-blocking check an overdue
request fails; and the `request_erase`, `request_list` and `request_export` jobs of the UI."""

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from cleanup_pipeline.aws.holds_table import put_hold
from cleanup_pipeline.aws.requests_table import (
    close_request,
    new_request_id,
    open_request,
    scan_requests,
)
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.as_of import format_ms, parse_as_of
from cleanup_pipeline.core.decisions import Hold
from cleanup_pipeline.core.requests import Request, RequestKind, RequestStatus, new_request
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.requests import (
    REQUEST_ERASE_JOB,
    REQUEST_EXPORT_JOB,
    REQUEST_LIST_JOB,
)
from tests.support import recording
from tests.support.items import DAY, now_ms
from tests.support.items import user as user_item
from tests.support.jobs import check_results, evaluation, execute_job, materialized, metadata
from tests.support.recording import RecordingAwsEnvironment
from tests.support.world import seed_world

CHECK = "erasure_requests_within_deadline"
COUNTS = ("requests_open", "requests_due_soon", "requests_overdue")
# Open erase requests by how long ago they were received (the deadline is 30 days), and two
# closed ones that no count includes.
OPEN_AGO = {"late-40d": 40, "late-31d": 31, "soon-28d": 28, "open-10d": 10, "open-0d": 0}
CLOSED_AGO = {"done-50d": (50, RequestStatus.DONE), "refused-45d": (45, RequestStatus.REFUSED)}


def _open(db, table: str, user_id: str, days_ago: float, now: int) -> Request:
    received = format_ms(now - round(days_ago * DAY))
    request = new_request(
        new_request_id(), user_id, "erase", now=now, deadline_days=30, received=received
    )
    stored, opened = open_request(db, table, request)
    assert opened
    return stored


def _seed_requests(clients, settings) -> dict[str, Request]:
    db, table, now = clients.dynamodb, settings.requests_table, now_ms()
    opened = {user: _open(db, table, user, days, now) for user, days in OPEN_AGO.items()}
    for user, (days, status) in CLOSED_AGO.items():
        request = _open(db, table, user, days, now)
        assert close_request(db, table, request, status, reason="test", done_at=now, run_id="r")
    return opened


def _hold(clients, settings, user_ids) -> None:
    """The users exist and are on a legal hold: the run keeps their requests open."""
    batch_write(clients.dynamodb, settings.users_table, [user_item(u) for u in user_ids])
    for user_id in user_ids:
        put_hold(clients.dynamodb, settings.holds_table, Hold(user_id, "legal case"))


def test_a_run_counts_open_due_soon_and_overdue_requests_and_the_check_fails(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    opened = _seed_requests(clients, settings)
    _hold(clients, settings, OPEN_AGO)

    result = execute_job()

    assert result.success  # the check blocks nothing
    assert check_results(result)[CHECK] is False
    shown = metadata(result, "erasure_requests")
    assert {key: shown[key] for key in COUNTS} == {
        "requests_open": 5,
        "requests_due_soon": 1,
        "requests_overdue": 2,
    }
    assert shown["table"] == "requests"
    rows = [dict(record.data) for record in shown["open_requests"].records]
    assert [row["user_id"] for row in rows] == list(OPEN_AGO)  # earliest due first
    late = opened["late-40d"]
    assert rows[0] == {
        "id": late.id,
        "user_id": "late-40d",
        "kind": "erase",
        "received": format_ms(late.received_at),
        "due": format_ms(late.due_at),
        "days_left": rows[0]["days_left"],
    }
    assert -10.01 <= rows[0]["days_left"] <= -10.0 and 1.99 <= rows[2]["days_left"] <= 2.0
    assert "@" not in str(rows)
    failed = evaluation(result, CHECK)
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["overdue"].value == 2
    assert failed.description == (
        f"{late.id} was due {format_ms(late.due_at)}; "
        f"{opened['late-31d'].id} was due {format_ms(opened['late-31d'].due_at)}"
    )
    for report in ("candidate_report", "cleanup_report"):
        counts = metadata(result, report)
        assert (counts["requests_open"], counts["requests_due_soon"]) == (5, 1), report
        assert counts["requests_overdue"] == 2 and counts["blocked_by"] == ""
    summary = Path(metadata(result, "cleanup_report")["summary"]).read_text()
    assert "## Requests from the people themselves" in summary
    assert "| requests_open | 5 |" in summary and "| requests_due_soon | 1 |" in summary
    assert "| requests_overdue | 2 |" in summary
    assert "**2 past their due date**" in summary


def test_with_no_overdue_request_the_check_passes(aws) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    now = now_ms()
    for user, days in {"open-29d": 29.5, "open-1d": 1}.items():
        _open(clients.dynamodb, settings.requests_table, user, days, now)

    result = execute_job()

    assert result.success and check_results(result)[CHECK] is True
    shown = metadata(result, "erasure_requests")
    assert [shown[key] for key in COUNTS] == [2, 1, 0]
    assert evaluation(result, CHECK).description == "no open request is past its due date"


def test_without_a_requests_table_every_count_is_zero_and_the_check_passes(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    _seed_requests(clients, settings)  # in a table the run is not told of
    monkeypatch.delenv("REQUESTS_TABLE_NAME")
    recording.reset()

    result = execute_job()

    assert result.success and check_results(result)[CHECK] is True
    shown = metadata(result, "erasure_requests")
    assert [shown[key] for key in COUNTS] == [0, 0, 0]
    assert shown["table"] == "(none: requests are off)"
    assert [metadata(result, "cleanup_report")[key] for key in COUNTS] == [0, 0, 0]
    summary = Path(metadata(result, "cleanup_report")["summary"]).read_text()
    assert "Requests from the people themselves" not in summary
    assert not [name for name, params in recording.CALLS if params.get("TableName") == "requests"]


def test_a_missing_requests_table_stops_the_run_before_any_action(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    monkeypatch.setenv("REQUESTS_TABLE_NAME", "ops-requests")  # never created
    recording.reset()

    result = execute_job()

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "erasure_requests"
    description = failure.step_failure_data.user_failure_data.description
    assert description == (
        "REQUESTS_TABLE_NAME: table 'ops-requests' does not exist: create it (key id, string) "
        "or name an existing table"
    )
    assert recording.writes() == []
    assert not materialized(result, "user_decisions")


def _erase_job(**config: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(REQUEST_ERASE_JOB).execute_in_process(
        run_config={"ops": {"open_erase_request": {"config": config}}},
        resources={"aws": RecordingAwsEnvironment()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _output(result: dg.ExecuteInProcessResult) -> dict:
    output = next(e for e in result.all_events if e.is_successful_output)
    return {k: v.value for k, v in output.event_specific_data.metadata.items()}


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.user_failure_data.description


def test_the_request_erase_job_opens_a_request_once(aws) -> None:
    clients, settings = aws
    first = _erase_job(user_id="u1", ref="ticket 12", received="2026-11-01T00:00:00Z")
    assert first.success
    [stored] = scan_requests(clients.dynamodb, settings.requests_table)
    assert (stored.user_id, stored.kind, stored.ref) == ("u1", "erase", "ticket 12")
    assert stored.received_at == parse_as_of("2026-11-01T00:00:00Z")
    assert stored.due_at == stored.received_at + 30 * DAY
    shown = _output(first)
    assert (shown["request_id"], shown["user_id"], shown["opened"]) == (stored.id, "u1", True)
    assert (shown["received"], shown["due"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")

    again = _erase_job(user_id="u1")
    assert again.success
    assert (_output(again)["request_id"], _output(again)["opened"]) == (stored.id, False)
    assert scan_requests(clients.dynamodb, settings.requests_table) == [stored]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"user_id": ""}, "user id (USER_ID / user_id) '' is empty: not a user id"),
        ({"user_id": "x" * 2049}, "longer than 2,048 bytes"),
        ({"user_id": "u1", "received": "2999-01-01T00:00:00Z"}, "is in the future"),
        (
            {"user_id": "u1", "received": "last tuesday"},
            "received (--received / received) must be ISO 8601 or epoch milliseconds, got "
            "'last tuesday'",
        ),
        ({"user_id": "u1", "ref": "x" * 1001}, "ref (--ref / ref) is longer than 1,000"),
    ],
)
def test_the_request_erase_job_refuses_bad_config_before_any_write(
    aws, config: dict[str, str], message: str
) -> None:
    clients, settings = aws
    recording.reset()
    result = _erase_job(**config)
    assert not result.success
    error = _failure(result)
    assert message in error and "\n" not in error
    assert recording.CALLS == []  # refused before any AWS call
    assert clients.dynamodb.scan(TableName=settings.requests_table)["Items"] == []


def test_the_request_erase_job_refuses_without_a_requests_table(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_TABLE_NAME")
    result = _erase_job(user_id="u1")
    assert not result.success
    assert _failure(result).startswith("REQUESTS_TABLE_NAME is not set: requests are off.")


def test_the_request_list_job_shows_the_open_requests_with_their_due_dates(aws) -> None:
    clients, settings = aws
    opened = _seed_requests(clients, settings)
    result = defs.resolve_job_def(REQUEST_LIST_JOB).execute_in_process(
        resources={"aws": RecordingAwsEnvironment()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    shown = metadata(result, "erasure_requests")
    assert [shown[key] for key in COUNTS] == [5, 1, 2]
    assert [dict(r.data)["id"] for r in shown["open_requests"].records] == [
        opened[user].id for user in OPEN_AGO
    ]
    assert check_results(result) == {CHECK: False}


def _export_job(**config: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(REQUEST_EXPORT_JOB).execute_in_process(
        run_config={"ops": {"export_user_data": {"config": config}}},
        resources={"aws": RecordingAwsEnvironment()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _zip_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _without_time(entries: dict[str, bytes]) -> dict[str, Any]:
    """The zip's entries with the time of `export.json` left out: two exports of one user
    differ in nothing else."""
    shown: dict[str, Any] = dict(entries)
    about = json.loads(entries["export.json"])
    shown["export.json"] = {k: v for k, v in about.items() if not k.startswith("exported_at")}
    return shown


def _everything(clients) -> dict[str, Any]:
    """Every item of every table and every version of every object."""
    db, s3 = clients.dynamodb, clients.s3
    state: dict[str, Any] = {
        table: sorted(json.dumps(i, sort_keys=True) for i in db.scan(TableName=table)["Items"])
        for table in db.list_tables()["TableNames"]
    }
    for found in s3.list_buckets()["Buckets"]:
        versions = s3.list_object_versions(Bucket=found["Name"])
        state[found["Name"]] = sorted(
            (v["Key"], v["VersionId"]) for v in versions.get("Versions", [])
        )
    return state


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_request_export_job_writes_the_zip_the_command_writes(aws, tmp_path, capsys) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    out = tmp_path / "exports"

    result = _export_job(user_id="u1", out=str(out), ref="ticket 9")

    assert result.success
    shown = _output(result)
    [written] = os.listdir(out)
    path = out / written
    assert shown["export"] == str(path) and written.endswith(".zip")
    assert shown["size_bytes"] == path.stat().st_size > 0
    assert (path.stat().st_mode & 0o777, out.stat().st_mode & 0o777) == (0o600, 0o700)
    counts = json.loads(_zip_entries(path.read_bytes())["export.json"])["counts"]
    assert {k.removeprefix("count/"): v for k, v in shown.items() if k.startswith("count/")} == (
        counts
    )
    assert shown["records"] == sum(counts.values()) > 0
    assert "@" not in json.dumps(shown, default=str)  # no address, no content
    [done] = scan_requests(clients.dynamodb, settings.requests_table)
    assert (done.id, done.user_id, done.kind, done.status) == (
        shown["request_id"],
        "u1",
        RequestKind.EXPORT,
        RequestStatus.DONE,
    )
    assert (done.reason, done.ref, done.run_id) == ("exported", "ticket 9", result.run_id)

    # The command line's zip of the same user holds the same, byte for byte.
    by_command = tmp_path / "by-command"
    assert main(["request", "export", "u1", "--out", str(by_command)]) == 0
    cli_zip = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["export"]
    assert _without_time(_zip_entries(Path(cli_zip).read_bytes())) == _without_time(
        _zip_entries(path.read_bytes())
    )


def test_the_request_export_job_uploads_to_s3_and_defaults_to_the_export_location(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    clients.s3.create_bucket(Bucket="exports")
    monkeypatch.setenv("CLEANUP_EXPORT_DIR", "s3://exports/people")

    result = _export_job(user_id="u1")  # no `out`: CLEANUP_EXPORT_DIR

    assert result.success
    shown = _output(result)
    assert shown["export"].startswith("s3://exports/people/")
    key = shown["export"].removeprefix("s3://exports/")
    stored = clients.s3.get_object(Bucket="exports", Key=key)
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["ContentLength"] == shown["size_bytes"]
    assert "user.json" in _zip_entries(stored["Body"].read())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"user_id": "nobody"}, "no such user: no user item has this id; nothing was exported"),
        ({"user_id": ""}, "user id (USER_ID / user_id) '' is empty: not a user id"),
        ({"user_id": "u1", "out": "{file}"}, "exists and is not a folder"),
        ({"user_id": "u1", "out": "{reports}/exports"}, "is inside CLEANUP_REPORTS_DIR"),
        ({"user_id": "u1", "received": "2999-01-01T00:00:00Z"}, "is in the future"),
        (
            {"user_id": "u1", "out": ""},
            "give --out DIR|s3://bucket/prefix, or set CLEANUP_EXPORT_DIR",
        ),
        ({"user_id": "u1", "map": "bad"}, "stores.notes.table: table 'nope' does not exist"),
    ],
)
def test_the_request_export_job_refuses_in_one_line_and_writes_nothing(
    aws, tmp_path, monkeypatch: pytest.MonkeyPatch, config: dict[str, str], message: str
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    (tmp_path / "a-file").write_text("kept")
    if config.pop("map", None):
        data_map = tmp_path / "map.yaml"
        data_map.write_text(
            "stores:\n  files: {s3_prefix: '{id}/'}\n"
            "  notes: {table: nope, partition_key: userId}\n"
        )
        monkeypatch.setenv("CLEANUP_DATA_MAP", str(data_map))
    out = config.setdefault("out", str(tmp_path / "exports"))
    config["out"] = out.format(file=tmp_path / "a-file", reports=settings.reports_location)
    before = _everything(clients), _files(tmp_path)

    result = _export_job(**config)

    assert not result.success
    error = _failure(result)
    assert message in error and "\n" not in error
    assert (_everything(clients), _files(tmp_path)) == before
    assert (tmp_path / "a-file").read_text() == "kept"

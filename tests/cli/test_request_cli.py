"""`cleanup-pipeline request erase|list|export` against a moto server (SPEC §12): the console
script for what it opens, lists and exports, the command line in this process for what it
refuses; and the deadline counts `cleanup-pipeline run` prints."""

import json
import os
import time
import zipfile
from typing import Any

import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.requests_table import close_request, scan_requests
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.as_of import format_ms, parse_as_of
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.requests import RequestStatus
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.local.provision import provision
from tests.support.aws_calls import client_error, fail_when
from tests.support.aws_state import put_objects
from tests.support.cli import cli
from tests.support.items import user
from tests.support.world import AS_OF_ISO, seed_world

pytestmark = pytest.mark.e2e


def _provisioned():
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    return clients, settings


def _everything(clients) -> dict[str, list]:
    db = clients.dynamodb
    return {
        table: db.scan(TableName=table, ConsistentRead=True)["Items"]
        for table in db.list_tables()["TableNames"]
    }


def _refused(capsys, *args: str) -> tuple[int, dict, str]:
    """(exit status, the last stdout line's JSON, the one error line) of a refused command."""
    try:
        code = main(["request", *args])
    except SystemExit as exited:  # argparse's refusals
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    [error] = [line for line in err.splitlines() if line.strip()]
    assert error.startswith("error: ") and "Traceback" not in out + err
    return code, json.loads(out.strip().splitlines()[-1]), error


def test_erase_opens_once_and_list_shows_the_days_left_oldest_first(server: str) -> None:
    clients, settings = _provisioned()
    before = int(time.time() * 1000)
    code, opened, output = cli("request", "erase", "u1", "--ref", "ticket 12")
    after = int(time.time() * 1000)
    assert code == 0, output
    request = opened["request"]
    assert set(opened) == {"request"}
    assert {k: request[k] for k in ("user_id", "kind", "ref", "status")} == {
        "user_id": "u1",
        "kind": "erase",
        "ref": "ticket 12",
        "status": "open",
    }
    assert before <= request["received_at"] <= after
    assert request["due_at"] == request["received_at"] + 30 * DAY_MS
    assert 29.9 <= request["days_left"] <= 30

    code, again, output = cli("request", "erase", " u1 ", "--ref", "second mail")
    assert code == 0 and again["request"]["id"] == request["id"], output
    assert "already open" in output

    code, overdue, _ = cli("request", "erase", "u2", "--received", "2026-01-01T00:00:00Z")
    received = parse_as_of("2026-01-01T00:00:00Z")
    assert code == 0 and overdue["request"]["received_at"] == received
    assert overdue["request"]["due_at"] == received + 30 * DAY_MS
    code, done, _ = cli("request", "erase", "u3", "--received", "2026-02-01")
    assert code == 0
    stored = {r.id: r for r in scan_requests(clients.dynamodb, settings.requests_table)}
    close_request(
        clients.dynamodb,
        settings.requests_table,
        stored[done["request"]["id"]],
        RequestStatus.DONE,
        reason="verified",
        done_at=int(time.time() * 1000),
        run_id="run-1",
    )

    code, listed, output = cli("request", "list")
    assert code == 0, output
    assert [r["user_id"] for r in listed["requests"]] == ["u2", "u3", "u1"]  # oldest first
    overdue_row, done_row, open_row = listed["requests"]
    assert overdue_row["days_left"] < 0 and overdue_row["status"] == "open"
    assert done_row["status"] == "done" and done_row["run_id"] == "run-1"
    assert open_row == {**request, "days_left": open_row["days_left"]}
    code, only_open, _ = cli("request", "list", "--open")
    assert code == 0 and [r["user_id"] for r in only_open["requests"]] == ["u2", "u1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("forget", "u1"), "invalid choice: 'forget'"),
        (("erase", ""), "is empty"),
        (("erase", "x" * 2049), "longer than 2,048 bytes"),
        (("erase", "u1", "--received", "2999-01-01T00:00:00Z"), "is in the future"),
        (("erase", "u1", "--received", "last tuesday"), "must be ISO 8601"),
        (("erase", "u1", "--received", "99999999999999999999"), "out of range"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_changes_nothing(
    server: str, capsys, args: tuple[str, ...], message: str
) -> None:
    clients, _settings = _provisioned()
    before = _everything(clients)
    code, result, error = _refused(capsys, *args)
    assert code != 0 and result["status"] == "refused" and message in error
    assert _everything(clients) == before


def test_a_missing_requests_table_is_one_line_and_nothing_is_written(
    server: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    clients, _settings = _provisioned()
    monkeypatch.setenv("REQUESTS_TABLE_NAME", "ops-requests")  # never created
    before = _everything(clients)
    for args in (("erase", "u1"), ("list",), ("export", "u1", "--out", str(tmp_path / "out"))):
        code, result, output = cli("request", *args)
        assert code == 1 and "Traceback" not in output
        [error] = [line for line in output.splitlines() if line.startswith("error:")]
        assert "table 'ops-requests' does not exist" in error
        assert result["status"] == "refused"
    assert _everything(clients) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REQUESTS_TABLE_NAME", "", "REQUESTS_TABLE_NAME is not set: requests are off"),
        ("REQUESTS_TABLE_NAME", "my requests", "REQUESTS_TABLE_NAME must be a DynamoDB table"),
        ("REQUEST_DEADLINE_DAYS", "0", "REQUEST_DEADLINE_DAYS must be a whole number"),
    ],
)
def test_request_commands_name_a_missing_or_malformed_setting(
    server: str,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    clients, _settings = _provisioned()
    before = _everything(clients)
    monkeypatch.setenv(variable, value)
    for args in (("erase", "u1"), ("list",)):
        code, result, error = _refused(capsys, *args)
        assert code == 1 and result["status"] == "refused" and message in error
    assert _everything(clients) == before


def test_export_writes_one_zip_and_records_a_done_export_request(server: str, tmp_path) -> None:
    clients, settings = _provisioned()
    seed_world(clients, settings, big_folder=3)
    before = _everything(clients)
    out = tmp_path / "exports"

    code, result, output = cli("request", "export", "u1", "--out", str(out), "--ref", "ticket 9")

    assert code == 0, output
    assert set(result) == {"user_id", "export", "counts"}
    assert result["user_id"] == "u1"
    assert result["counts"] == {"files": 3, "features": 2, "scoreboards": 3}
    [written] = os.listdir(out)
    assert result["export"] == str(out / written) and written.endswith(".zip")
    with zipfile.ZipFile(result["export"]) as archive:
        assert archive.read("files/file-0002.txt") == b"x"
        assert json.loads(archive.read("user.json"))["id"] == "u1"
    assert seeded_email("u1") not in output  # the person's address is never printed
    after = _everything(clients)
    requests = after.pop(settings.requests_table)
    assert after == {k: v for k, v in before.items() if k != settings.requests_table}
    [request] = scan_requests(clients.dynamodb, settings.requests_table)
    assert [len(requests), request.user_id, request.kind, request.status] == [
        1,
        "u1",
        "export",
        "done",
    ]
    assert request.ref == "ticket 9" and request.done_at is not None


def seeded_email(user_id: str) -> str:
    return f"{user_id}@example.com"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "", "--out", "{out}"), "is empty"),
        (("export", "x" * 2049, "--out", "{out}"), "longer than 2,048 bytes"),
        (("export", "nobody", "--out", "{out}"), "no such user"),
        (("export", "u1", "--out", "{file}"), "exists and is not a folder"),
        (("export", "u1", "--out", "{reports}/exports"), "inside CLEANUP_REPORTS_DIR"),
        (("export", "u1", "--out", "s3://ops/cleanup/x"), "overlaps CLEANUP_REPORTS_DIR"),
        (("export", "u1", "--out", "s3://ops/archive"), "overlaps CLEANUP_ARCHIVE_DIR"),
        (("export", "u1"), "give --out DIR|s3://bucket/prefix, or set CLEANUP_EXPORT_DIR"),
    ],
)
def test_a_refused_export_is_one_line_and_writes_nothing(
    server: str,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
    args: tuple[str, ...],
    message: str,
) -> None:
    clients, settings = _provisioned()
    batch_write(clients.dynamodb, settings.users_table, [user("u1")])
    put_objects(clients.s3, settings.public_bucket_name, ["u1/a.txt"])
    if any(arg.startswith("s3://") for arg in args):
        monkeypatch.setenv("CLEANUP_REPORTS_DIR", "s3://ops/cleanup")
        monkeypatch.setenv("CLEANUP_ARCHIVE_DIR", "s3://ops/archive")
    (tmp_path / "a-file").write_text("kept")
    shown = [
        arg.format(
            out=tmp_path / "out", file=tmp_path / "a-file", reports=settings.reports_location
        )
        for arg in args
    ]
    before = _everything(clients), sorted(os.listdir(tmp_path))
    code, result, error = _refused(capsys, *shown)
    assert code == 1 and result["status"] == "refused" and message in error
    assert (_everything(clients), sorted(os.listdir(tmp_path))) == before
    assert (tmp_path / "a-file").read_text() == "kept"


def test_an_export_checks_the_data_map_before_reading_anything(
    server: str, capsys, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    clients, settings = _provisioned()
    batch_write(clients.dynamodb, settings.users_table, [user("u1")])
    path = tmp_path / "map.yaml"
    path.write_text(
        "stores:\n  files: {s3_prefix: '{id}/'}\n  notes: {table: nope, partition_key: userId}\n"
    )
    monkeypatch.setenv("CLEANUP_DATA_MAP", str(path))
    before = _everything(clients)
    code, _, error = _refused(capsys, "export", "u1", "--out", str(tmp_path / "out"))
    assert code == 1 and "stores.notes.table: table 'nope' does not exist" in error
    assert _everything(clients) == before and not (tmp_path / "out").exists()


def test_a_run_prints_the_deadline_counts_and_succeeds_with_an_overdue_request(
    server: str,
) -> None:
    clients, settings = _provisioned()
    seed_world(clients, settings, big_folder=1)
    now = int(time.time() * 1000)
    for user_id, days_ago in {"late": 31, "soon-1": 28, "soon-2": 27.5, "fresh": 0}.items():
        received = format_ms(now - round(days_ago * DAY_MS))
        code, _opened, output = cli("request", "erase", user_id, "--received", received)
        assert code == 0, output
    code, done, _ = cli("request", "erase", "closed", "--received", "2026-01-01T00:00:00Z")
    stored = {r.id: r for r in scan_requests(clients.dynamodb, settings.requests_table)}
    assert close_request(
        clients.dynamodb,
        settings.requests_table,
        stored[done["request"]["id"]],
        RequestStatus.DONE,
        reason="verified",
        done_at=now,
        run_id="run-1",
    )

    code, summary, output = cli("run", "--as-of", AS_OF_ISO, "--dry-run")

    assert code == 0 and summary["status"] == "success", output
    counts = summary["counts"]
    assert (counts["requests_open"], counts["requests_due_soon"]) == (4, 2)
    assert counts["requests_overdue"] == 1
    assert summary["blocked"] == []  # the deadline check blocks nothing


def test_an_erase_request_is_done_after_the_next_run(server: str) -> None:
    clients, settings = _provisioned()
    as_of = int(time.time() * 1000) - 3_600_000
    seen = {"id": {"S": "person"}, "email": {"S": "person@example.com"}}
    seen["lastVisitAt"] = {"N": str(as_of - DAY_MS)}
    clients.dynamodb.put_item(TableName=settings.users_table, Item=seen)
    clients.s3.put_object(Bucket=settings.public_bucket_name, Key="person/a.txt", Body=b"x")
    code, opened, output = cli("request", "erase", "person", "--ref", "mail of 3 May")
    assert code == 0, output

    code, summary, output = cli("run", "--as-of", str(as_of))
    assert code == 0, output
    assert summary["counts"]["erase"] == summary["counts"]["erased"] == 1
    assert summary["counts"]["requests_done"] == 1 and summary["counts"]["notified"] == 0

    code, listed, output = cli("request", "list")
    assert code == 0, output
    [request] = listed["requests"]
    assert (request["id"], request["status"], request["run_id"]) == (
        opened["request"]["id"],
        "done",
        summary["run_id"],
    )
    assert request["done_at"] is not None
    users = clients.dynamodb.scan(TableName=settings.users_table, ConsistentRead=True)["Items"]
    assert users == []
    assert (
        clients.s3.list_object_versions(Bucket=settings.public_bucket_name, Prefix="person/").get(
            "Versions", []
        )
        == []
    )


def test_an_export_whose_request_cannot_be_recorded_writes_no_zip_and_exits_1(
    server: str, capsys, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    clients, settings = _provisioned()
    seed_world(clients, settings, big_folder=3)

    def refusing_clients(*args: Any, **kwargs: Any) -> Any:
        made = make_clients(*args, **kwargs)
        fail_when(
            made.dynamodb,
            "PutItem",
            lambda params: params.get("TableName") == settings.requests_table,
            lambda: client_error("AccessDeniedException", "PutItem"),
        )
        return made

    monkeypatch.setattr("cleanup_pipeline.cli.requests.make_clients", refusing_clients)
    before = _everything(clients)
    out = tmp_path / "out"

    code, result, error = _refused(capsys, "export", "u1", "--out", str(out))

    assert code == 1 and result["status"] == "refused"
    assert "no export written: the export request was not recorded" in error
    assert _everything(clients) == before and not out.exists()


def test_an_export_whose_zip_cannot_be_written_exits_1_and_its_request_stays_open(
    server: str, capsys
) -> None:
    clients, settings = _provisioned()
    seed_world(clients, settings, big_folder=3)

    code, result, error = _refused(capsys, "export", "u1", "--out", "s3://no-such-bucket/x")

    assert code == 1 and result["status"] == "refused"
    assert "no export written" in error and "NoSuchBucket" in error
    code, listed, output = cli("request", "list", "--open")
    assert code == 0, output
    [request] = listed["requests"]
    assert (request["user_id"], request["kind"], request["status"]) == ("u1", "export", "open")
    assert "no export written" in request["reason"] and "NoSuchBucket" in request["reason"]

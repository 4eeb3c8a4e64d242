"""The console script end to end, against a moto server on 127.0.0.1."""

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.cli.local_stack import shell_exports
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import demo_erase_requests, demo_users
from cleanup_pipeline.local.emulator import connects_to_loopback, local_environment
from cleanup_pipeline.local.provision import provision
from tests.support.aws_state import sent_to
from tests.support.cli import cli
from tests.support.items import now_ms
from tests.support.world import (
    AS_OF_ISO,
    BIG_FOLDER,
    DELETED,
    NOTIFIED,
    assert_final_state,
    seed_world,
)

pytestmark = pytest.mark.e2e


def test_cli_run_gives_the_spec_outcomes_in_the_instance_history(server: str) -> None:
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seeded = seed_world(clients, settings)

    dry_code, dry, _ = cli("run", "--as-of", AS_OF_ISO, "--dry-run")
    assert dry_code == 0 and dry["status"] == "success" and dry["dry_run"] is True
    assert dry["counts"]["notified"] == 0 and sent_to(server) == []
    stores = ("store_files", "store_features", "store_scoreboards")
    assert {key: dry["counts"][key] for key in stores} == dict.fromkeys(stores, 0)

    before = now_ms()
    code, summary, output = cli("run", "--as-of", AS_OF_ISO)
    after = now_ms()
    assert code == 0, output
    assert summary["status"] == "success"
    assert summary["as_of"] == AS_OF_ISO
    assert summary["blocked"] == []
    counts = summary["counts"]
    assert counts["notify"] == counts["notified"] == len(NOTIFIED)
    assert counts["delete"] == counts["deleted"] == len(DELETED)
    assert counts["invalid"] == 4 and counts["failed"] == 0
    # What went from each store of the built-in map: u1's folder, 3 files of another user, u1's
    # 2 features, 3 scoreboard entries of u1 and 1 of another.
    assert {key: counts[key] for key in stores} == {
        "store_files": BIG_FOLDER + 3,
        "store_features": 2,
        "store_scoreboards": 4,
    }
    assert (
        sum(counts[k] for k in ("invalid", "exempt", "active", "waiting", "notify", "delete"))
        == (counts["users"])
    )
    assert Path(summary["report"]).is_file()
    assert f"report: {summary['report']}" in output
    assert_final_state(clients, settings, seeded, sent_to(server), before, after)

    again_code, again, _ = cli("run", "--as-of", AS_OF_ISO)
    assert again_code == 0 and again["counts"]["notified"] == again["counts"]["deleted"] == 0
    assert len(sent_to(server)) == len(NOTIFIED)

    # What flows between steps is stored under DAGSTER_HOME: never an address in it.
    stored = b"".join(
        p.read_bytes() for p in Path(os.environ["DAGSTER_HOME"]).rglob("*") if p.is_file()
    )
    assert stored and not [uid for uid in seeded.users if f"{uid}@example.com".encode() in stored]

    runs = dg.DagsterInstance.get().get_runs()
    assert {r.run_id for r in runs} >= {dry["run_id"], summary["run_id"], again["run_id"]}


def test_cli_names_every_missing_variable_and_exits_non_zero(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APP_URL")
    monkeypatch.delenv("EMAIL_DOMAIN")
    code, summary, output = cli("run")
    assert code == 1 and summary["status"] == "failure"
    assert "APP_URL, EMAIL_DOMAIN" in output
    assert dg.DagsterInstance.get().get_runs() == []  # nothing launched


@pytest.mark.parametrize("as_of", ["99999999999999999999", "9999-12-31", "-1"])
def test_cli_refuses_an_as_of_out_of_range_in_one_line_and_still_prints_the_json(
    server: str, as_of: str
) -> None:
    code, summary, output = cli("run", "--as-of", as_of)
    assert code == 1 and summary["status"] == "failure" and summary["run_id"] is None
    [error] = [line for line in output.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: --as-of '{as_of}' is out of range")
    assert "Traceback" not in output
    assert dg.DagsterInstance.get().get_runs() == []  # nothing launched


def test_cli_seed_demo_refuses_a_non_local_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://dynamodb.us-east-1.amazonaws.com")
    code, _, output = cli("seed-demo", "--users", "10")
    assert code == 2 and "local emulator" in output
    assert boto3  # the refusal happened before any client was built


def test_seed_demo_opens_the_demos_erase_requests(server: str) -> None:
    """A recent visitor, a subscriber and an id no user has, each received some days ago."""
    code, summary, output = cli("seed-demo", "--users", "40")
    assert code == 0 and summary["requests"] == 3, output
    code, listed, output = cli("request", "list")
    assert code == 0, output
    asked = demo_erase_requests(list(demo_users(40, 0)))
    assert asked[2][0] == "user-000040"  # one past the last demo user
    found = {r["user_id"]: r for r in listed["requests"]}
    assert set(found) == {user for user, _ in asked}
    for user, days in asked:
        request = found[user]
        assert (request["kind"], request["status"]) == ("erase", "open")
        assert request["received_at"] == pytest.approx(now_ms() - days * DAY_MS, abs=60_000)


def test_the_lines_for_another_shell_hold_no_secret_and_no_relative_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    shell = {"AWS_ACCESS_KEY_ID": "AKIAREAL", "AWS_SECRET_ACCESS_KEY": "real-secret"}
    for name, value in shell.items():
        monkeypatch.setenv(name, value)
    env = {
        **local_environment("http://127.0.0.1:5123"),
        "SENTRY_DSN": "https://key@sentry.example/1",
        "DAGSTER_HOME": ".dagster_home",
        "CLEANUP_REPORTS_DIR": "s3://reports/runs",
        "CLEANUP_ARCHIVE_DIR": "my archive",
        "CLEANUP_DATA_MAP": "",
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == "real-secret"  # the shell's own win in the stack
    lines = shell_exports(env)
    assert all(line.startswith("export ") for line in lines)
    exported = dict(shlex.split(line)[1].split("=", 1) for line in lines)
    assert exported == {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "APP_URL": "https://app.increaser.local",
        "EMAIL_DOMAIN": "increaser.local",
        "PUBLIC_BUCKET_NAME": "increaser-public",
        "HOLDS_TABLE_NAME": "holds",
        "REQUESTS_TABLE_NAME": "requests",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5123",
        "DAGSTER_HOME": str(tmp_path.resolve() / ".dagster_home"),
        "CLEANUP_REPORTS_DIR": "s3://reports/runs",
        "CLEANUP_ARCHIVE_DIR": str(tmp_path.resolve() / "my archive"),
        "CLEANUP_DATA_MAP": "",  # blank: the built-in map, as in the stack
    }


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://127.8.9.10:5000/", True),
        ("https://localhost:4566", True),
        ("http://LOCALHOST:4566", True),
        ("http://[::1]:5000", True),
        ("http://127.0.0.1@192.0.2.2:5057", False),  # user info: connects to 192.0.2.2
        ("http://user:secret@127.0.0.1:5057", False),
        ("http://127.0.0.1:5057@192.0.2.2", False),
        ("http://127.0.0.1%40192.0.2.2:5057", False),
        ("http://127.0.0.1\\@192.0.2.2:5057", False),
        ("http://127.0.0.1\t@192.0.2.2:5057", False),
        ("http://127.0.0.1.example.com:5000", False),
        ("http://localhost.example.com", False),
        ("http://192.0.2.2:5057#@127.0.0.1", False),
        ("http://192.0.2.2:5057/?x=@127.0.0.1", False),
        ("http://[::ffff:192.0.2.2]:5000", False),
        ("http://0x7f000001:5000", False),
        ("http://127.0.0.1:99999", False),
        ("ftp://127.0.0.1:21", False),
        ("127.0.0.1:5000", False),
        ("https://dynamodb.us-east-1.amazonaws.com", False),
    ],
)
def test_an_endpoint_is_local_by_the_host_it_connects_to(url: str, local: bool) -> None:
    assert connects_to_loopback(url) is local


@pytest.fixture
def no_traffic_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a client is given, its requests go to a closed port on loopback (a proxy that
    is not there), so that a guard that fails cannot send anything to another machine."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1@192.0.2.2:5057"}, "AWS_ENDPOINT_URL="),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1.example.com:5057"}, "AWS_ENDPOINT_URL="),
        (
            {"AWS_ENDPOINT_URL": "http://[::1]:1", "AWS_ENDPOINT_URL_S3": "http://192.0.2.2:5057"},
            "AWS_ENDPOINT_URL_S3=",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://a@b"},
            "AWS_ENDPOINT_URL_DYNAMODB=",
        ),
        (
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
            },
            "client's endpoint 'https://",
        ),
    ],
)
def test_seed_demo_refuses_an_endpoint_off_this_machine_before_any_connection(
    capsys, monkeypatch: pytest.MonkeyPatch, no_traffic_off_loopback, variables, named
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert main(["seed-demo", "--users", "5"]) == 2
    [error] = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("error: seed-demo writes only to a local emulator") and named in error


@pytest.fixture
def environment_put_back() -> Iterator[None]:
    """`local` points this process's environment at its emulator, which it stops on the way
    out: later tests in this process must not inherit that."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_local_refuses_a_service_endpoint_off_this_machine_before_seeding(
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    no_traffic_off_loopback,
    environment_put_back,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1@192.0.2.2:5057")
    assert main(["local", "--no-ui", "--users", "5"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: the demo data goes only to the emulator on this machine")
    assert "AWS_ENDPOINT_URL_DYNAMODB='http://127.0.0.1@192.0.2.2:5057'" in error


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["seed-demo", "--users", "-1"], "--users"),
        (["seed-demo", "--users", "0"], "--users"),
        (["seed-demo", "--users", "1000001"], "--users"),
        (["local", "--no-ui", "--users", "-1"], "--users"),
        (["local", "--no-ui", "--users", "ten"], "--users"),
        (["local", "--no-ui", "--port", "0"], "--port"),
        (["local", "--no-ui", "--port", "65536"], "--port"),
    ],
)
def test_cli_refuses_a_user_count_or_port_out_of_range_in_one_line(
    capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], option: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"cleanup-pipeline {args[0]}: error: argument {option}: ")
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RESTORE_WINDOW_DAYS", "1e12"),
        ("PUBLIC_BUCKET_USER_FOLDER", "{id}/{x}/"),
        ("REQUESTS_TABLE_NAME", "my requests"),
        ("REQUEST_DEADLINE_DAYS", "0"),
    ],
)
@pytest.mark.parametrize("command", [["seed-demo", "--users", "5"], ["local", "--no-ui"]])
def test_seed_demo_and_local_refuse_a_bad_setting_before_any_side_effect(
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: list[str],
    variable: str,
    value: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    # Nothing listens there: seeding anything would fail with a connection error instead.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert main(command) == 2
    [error] = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: {variable} must ")
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


@pytest.mark.parametrize("command", [["seed-demo", "--users", "5"], ["local", "--no-ui"]])
def test_seed_demo_and_local_refuse_a_data_map_that_cannot_be_used_before_any_side_effect(
    capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLEANUP_DATA_MAP", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    assert main(command) == 2
    [error] = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: CLEANUP_DATA_MAP {tmp_path / 'missing.yaml'}: cannot be read")
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written

"""The quick start, `cleanup-pipeline local`: its run follows the demo's data map, deleting the
sessions of the users it deletes and proving them gone, and answers the demo's erase requests;
while it serves the UI, another shell reaches its emulator with the lines it prints; started by
a script in the background,
as `cleanup-pipeline local &` starts it (SIGINT and SIGTERM ignored), SIGTERM or SIGHUP stops the
whole stack, the UI's webserver, daemon and code servers and the emulator, and the command
exits."""

import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.requests_table import scan_requests
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.data_map import MAP_VARIABLE
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import demo_erase_requests, demo_sessions, demo_users
from tests.support.items import now_ms
from tests.support.ui_stack import free_port, listening, wait_until_serving

pytestmark = pytest.mark.e2e


def _as_a_background_job() -> None:
    """What a non-interactive shell does for `cmd &`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stat(pid: int) -> tuple[int, str, int, int] | None:
    """(parent pid, state, session id, start time) of a live process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[3]), int(fields[19])


def _tree(root: int) -> dict[int, int]:
    """{pid: start time} of `root`, its descendants, and every process of their sessions."""
    table = {
        int(entry.name): stat
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None
    }
    tree = {root}
    while grown := {pid for pid, stat in table.items() if stat[0] in tree} - tree:
        tree |= grown
    sessions = {table[pid][2] for pid in tree if pid in table} - {table[os.getpid()][2]}
    tree |= {pid for pid, stat in table.items() if stat[2] in sessions}
    return {pid: table[pid][3] for pid in tree if pid in table}


def _alive(processes: dict[int, int]) -> list[int]:
    """Those still running (a zombie has ended; a reused pid is another process)."""
    return [
        pid
        for pid, started in processes.items()
        if (stat := _stat(pid)) is not None and stat[1] != "Z" and stat[3] == started
    ]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_local_in_the_background_stops_its_whole_stack_on_a_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    command = [sys.executable, "-m", "cleanup_pipeline.cli.main", "local", "--users", "20"]
    with (tmp_path / "local.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_as_a_background_job,
        )
    stack: dict[int, int] = {}
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, timeout=240)
        stack = _tree(process.pid)
        assert len(stack) >= 4, stack  # this command, dg dev, its webserver and daemon at least

        process.send_signal(stop)
        code = process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _alive(stack) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        # Whatever the outcome, nothing this test started outlives it.
        for pid in _alive(stack or _tree(process.pid)):
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
    output = (tmp_path / "local.log").read_text()
    assert code == 0, output[-3000:]
    assert _alive(stack) == [], output[-3000:]
    assert not listening(port)


DEMO_USERS = 300


def test_the_quick_starts_run_deletes_sessions_proves_it_and_answers_the_erase_requests(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The quick start in this process: its emulator shares moto's state with the test's
    server, so what the run left is read back after it stopped. Of the demo's erase requests,
    a recent visitor's is answered at once (erased, proven, done), a subscriber's stays open
    (`active subscription`) and one for an id no user has is done (`no such user`)."""
    monkeypatch.delenv(MAP_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    with patch.dict(os.environ):  # the stack sets its variables in the process it runs in
        code = main(["local", "--no-ui", "--users", str(DEMO_USERS)])
    output = capsys.readouterr().out
    assert code == 0, output[-3000:]
    summary = json.loads(output.strip().splitlines()[-1])
    demo = list(demo_users(DEMO_USERS, now_ms()))
    seeded = [item["id"]["S"] for _, item in demo]
    deleted = {item["id"]["S"] for p, item in demo if p == "delete"}
    [erased, subscriber, unknown] = [user for user, _ in demo_erase_requests(demo)]
    assert [p for p, item in demo if item["id"]["S"] == erased] == ["active"]
    sessions = [(s["userId"]["S"], s["sessionId"]["S"]) for s in demo_sessions(seeded, "userId", 0)]
    assert f"{len(sessions)} sessions, 3 erase requests" in output
    counts = summary["counts"]
    assert counts["deleted"] == len(deleted) > 0 and counts["erased"] == 1
    assert counts["verified"] == len(deleted) + 1  # the erasure is proved too
    assert (counts["requests_done"], counts["requests_open"]) == (2, 1)  # once the run acted

    dynamodb = make_clients(load_settings()).dynamodb
    pages = dynamodb.get_paginator("scan").paginate(TableName="sessions", ConsistentRead=True)
    left = {(i["userId"]["S"], i["sessionId"]["S"]) for page in pages for i in page["Items"]}
    gone = deleted | {erased}  # the erased user asked: a recent visitor, not an inactive one
    assert {user for user, _ in left} & gone == set()
    assert left == {(user, session) for user, session in sessions if user not in gone}

    user = min(deleted)
    assert main(["ledger", user]) == 0
    events = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["events"]
    assert [event["event"] for event in events] == ["deleted", "verified"]
    assert events[0]["stores"]["sessions"] == sum(1 for u, _ in sessions if u == user) > 0
    assert events[1]["stores"] == {"files": 0, "features": 0, "scoreboards": 0, "sessions": 0}

    counts = summary["counts"]
    assert (counts["erase"], counts["erased"], counts["requests_done"]) == (1, 1, 2)
    assert counts["requests_due_soon"] == 1  # the subscriber's, received 28 days ago

    requests = {r.user_id: r for r in scan_requests(dynamodb, "requests")}
    assert set(requests) == {erased, subscriber, unknown}
    assert (requests[erased].status, requests[erased].run_id) == ("done", summary["run_id"])
    assert "verified" in str(requests[erased].reason)
    assert (requests[unknown].status, requests[unknown].reason) == ("done", "no such user")
    assert requests[subscriber].status == "open"
    report = pd.read_parquet(summary["report"]).set_index("id")
    assert report.loc[subscriber, "request_reason"] == "active subscription"
    assert report.loc[erased, "decision"] == "erase"
    found = dynamodb.get_item(TableName="users", Key={"id": {"S": erased}}, ConsistentRead=True)
    assert "Item" not in found

    assert main(["ledger", erased]) == 0
    events = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["events"]
    assert [(e["event"], e["request"]) for e in events] == [
        ("deleted", requests[erased].id),
        ("verified", requests[erased].id),
    ]


SHELL_SECRET = "secret-of-the-shell-that-started-the-stack"
HEADER = "While the UI is served, commands in another shell reach this stack after:"


def _printed_exports(output: str) -> list[str]:
    lines = output.splitlines()
    after = lines[lines.index(HEADER) + 1 :]
    return list(itertools.takewhile(lambda line: line.startswith("export "), after))


def _other_shell(exports: list[str], command: str, cwd: Path) -> tuple[int, dict, str]:
    """`command` run by bash after `exports` and nothing else of this process's environment:
    (exit status, its last line as JSON, its output)."""
    bin_dir = Path(sys.executable).parent  # where the console script is installed
    done = subprocess.run(
        ["bash", "-c", "\n".join([*exports, command])],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else {}, done.stdout + done.stderr


def test_another_shell_reaches_the_quick_start_with_the_lines_it_prints(tmp_path: Path) -> None:
    """The lines `local` prints give another shell, started in another folder with none of
    the stack's environment, the same emulator, tables, instance and archive: an erase request
    it opens is listed with the demo's, the ledger shows the quick start's erasure, and a run
    it starts erases the user. The credentials printed are the emulator's dummy ones, never
    the shell's. Ctrl-C (SIGINT) then stops the stack and frees the UI's port."""
    port = free_port()
    started_in, elsewhere = tmp_path / "stack", tmp_path / "elsewhere"
    started_in.mkdir()
    elsewhere.mkdir()
    places = ("DAGSTER_HOME", "CLEANUP_REPORTS_DIR", "CLEANUP_ARCHIVE_DIR", MAP_VARIABLE)
    env = {k: v for k, v in os.environ.items() if k not in places}
    env |= {"AWS_ACCESS_KEY_ID": "AKIASHELL", "AWS_SECRET_ACCESS_KEY": SHELL_SECRET}
    command = [sys.executable, "-m", "cleanup_pipeline.cli.main", "local", "--users", "60"]
    log_path = tmp_path / "local.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=started_in,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack: dict[int, int] = {}
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, timeout=240)
        stack = _tree(process.pid)
        exports = _printed_exports(log_path.read_text())
        demo = list(demo_users(60, now_ms()))
        [erased, subscriber, unknown] = [user for user, _ in demo_erase_requests(demo)]
        asker = next(item["id"]["S"] for p, item in demo if p == "notify")

        code, opened, out = _other_shell(
            exports, f"cleanup-pipeline request erase {asker} --ref 'from another shell'", elsewhere
        )
        assert code == 0 and opened["request"]["status"] == "open", out
        code, listed, out = _other_shell(exports, "cleanup-pipeline request list", elsewhere)
        assert code == 0, out
        statuses = {r["user_id"]: r["status"] for r in listed["requests"]}
        assert statuses == {erased: "done", subscriber: "open", unknown: "done", asker: "open"}
        code, ledger, out = _other_shell(exports, f"cleanup-pipeline ledger {erased}", elsewhere)
        assert code == 0 and [e["event"] for e in ledger["events"]] == ["deleted", "verified"]

        code, run, out = _other_shell(exports, "cleanup-pipeline run", elsewhere)
        assert code == 0 and run["counts"]["erased"] == 1, out[-3000:]
        code, listed, out = _other_shell(exports, "cleanup-pipeline request list", elsewhere)
        [asked] = [r for r in listed["requests"] if r["user_id"] == asker]
        assert (asked["status"], asked["run_id"]) == ("done", run["run_id"])

        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _alive(stack) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for pid in _alive(stack or _tree(process.pid)):
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert _alive(stack) == [] and not listening(port)

    assert SHELL_SECRET not in output and "AKIASHELL" not in output
    exported = dict(shlex.split(line)[1].split("=", 1) for line in exports)
    assert (exported["AWS_ACCESS_KEY_ID"], exported["AWS_SECRET_ACCESS_KEY"]) == ("testing",) * 2
    assert exported["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert f"AWS emulated by moto at {exported['AWS_ENDPOINT_URL']}" in output
    assert exported["DAGSTER_HOME"] == str(started_in.resolve() / ".dagster_home")
    assert exported["CLEANUP_ARCHIVE_DIR"] == str(started_in.resolve() / "archive")
    assert exported["REQUESTS_TABLE_NAME"] == "requests"

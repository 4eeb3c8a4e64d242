"""The quick start, `cleanup-pipeline local`: its run follows the demo's data map, deleting the
sessions of the users it deletes and proving them gone; started by a script in the background,
as `cleanup-pipeline local &` starts it (SIGINT and SIGTERM ignored), SIGTERM or SIGHUP stops the
whole stack, the UI's webserver, daemon and code servers and the emulator, and the command
exits."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import patch

import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.data_map import MAP_VARIABLE
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import demo_sessions, demo_users
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


def test_the_quick_starts_run_deletes_the_sessions_of_those_it_deletes_and_proves_it(
    server: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The quick start in this process: its emulator shares moto's state with the test's
    server, so what the run left is read back after it stopped."""
    monkeypatch.delenv(MAP_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    with patch.dict(os.environ):  # the stack sets its variables in the process it runs in
        code = main(["local", "--no-ui", "--users", str(DEMO_USERS)])
    output = capsys.readouterr().out
    assert code == 0, output[-3000:]
    summary = json.loads(output.strip().splitlines()[-1])
    seeded = [item["id"]["S"] for _, item in demo_users(DEMO_USERS, now_ms())]
    deleted = {item["id"]["S"] for p, item in demo_users(DEMO_USERS, now_ms()) if p == "delete"}
    sessions = [(s["userId"]["S"], s["sessionId"]["S"]) for s in demo_sessions(seeded, "userId", 0)]
    assert f"{len(sessions)} sessions" in output
    assert summary["counts"]["deleted"] == summary["counts"]["verified"] == len(deleted) > 0

    dynamodb = make_clients(load_settings()).dynamodb
    pages = dynamodb.get_paginator("scan").paginate(TableName="sessions", ConsistentRead=True)
    left = {(i["userId"]["S"], i["sessionId"]["S"]) for page in pages for i in page["Items"]}
    assert {user for user, _ in left} & deleted == set()
    assert left == {(user, session) for user, session in sessions if user not in deleted}

    user = min(deleted)
    assert main(["ledger", user]) == 0
    events = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["events"]
    assert [event["event"] for event in events] == ["deleted", "verified"]
    assert events[0]["stores"]["sessions"] == sum(1 for u, _ in sessions if u == user) > 0
    assert events[1]["stores"] == {"files": 0, "features": 0, "scoreboards": 0, "sessions": 0}

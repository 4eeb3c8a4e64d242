"""The quick start: AWS emulated on 127.0.0.1, demo data, one run, then the Dagster UI."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from dagster import DagsterExecutionInterruptedError

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.cli.extras import dg_command
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import MAP_VARIABLE, load_data_map
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import seed_demo, sessions_store, with_demo_map
from cleanup_pipeline.local.emulator import (
    LOCAL_ENV,
    local_environment,
    moto_server,
    refuse_off_this_machine,
)
from cleanup_pipeline.local.provision import provision

# One run of the cleanup job at a time on the local instance, and one warnings step at a time
# across runs (see deploy/dagster.yaml).
LOCAL_INSTANCE_CONFIG = """concurrency:
  pools:
    granularity: op
    default_limit: 1
  runs:
    tag_concurrency_limits:
      - key: "cleanup_pipeline/job"
        value: "inactive_accounts_cleanup"
        limit: 1
telemetry:
  enabled: false
nux:
  enabled: false
"""


# The emulator takes any credentials: another shell is given its dummy ones, never those the
# shell that started the stack may hold.
DUMMY_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# Folders and files the stack's runs use; a relative one is read from where the stack started.
_PLACES = ("DAGSTER_HOME", "CLEANUP_REPORTS_DIR", "CLEANUP_ARCHIVE_DIR", MAP_VARIABLE)


def shell_exports(env: Mapping[str, str]) -> list[str]:
    """The `export` lines with which another shell's commands (`request`, `run`, `ledger`...)
    reach the emulator, tables and bucket, instance, reports, archive and data map of the stack
    whose environment is `env`: places made absolute, so they hold from any folder."""
    lines = []
    for name in (*LOCAL_ENV, "AWS_ENDPOINT_URL", *_PLACES):
        value = LOCAL_ENV[name] if name in DUMMY_CREDENTIALS else env.get(name)
        if value is None:
            continue
        if name in _PLACES and value.strip() and "://" not in value:
            value = str(Path(value).resolve())
        lines.append(f"export {name}={shlex.quote(value)}")
    return lines


def start_ui(port: int) -> subprocess.Popen:
    """`dg dev` on 127.0.0.1:`port`, in the environment of this process (runs launched from
    the UI execute with it)."""
    # `-m` names the definitions as `workspace.yaml` does, so the UI starts from any directory,
    # with the project installed from a clone or from a wheel.
    # A new session so that the whole process group (webserver, daemon, code servers) can be
    # stopped together; `dg dev` ignores signals sent to it alone from a script.
    return subprocess.Popen(
        [
            dg_command(),
            "dev",
            "-m",
            "cleanup_pipeline.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=os.environ.copy(),
        start_new_session=True,
    )


def _wait_group(process: subprocess.Popen, timeout: float) -> bool:
    """Whether every process of the group led by `process` ended within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        process.poll()  # reaps the leader; the others are reaped by init once orphaned
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def stop_ui(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop `dg dev` and every process of its group (webserver, daemon, code server, run
    workers): SIGTERM, then SIGKILL for whatever is still there after `timeout` seconds."""
    if _wait_group(process, 0):
        return
    os.killpg(process.pid, signal.SIGTERM)
    # Started from a shell that ignores SIGINT, `dg dev` ignores SIGTERM as well.
    if not _wait_group(process, timeout):
        os.killpg(process.pid, signal.SIGKILL)
        _wait_group(process, timeout)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Handlers of our own for SIGINT, SIGTERM and SIGHUP, whatever this process inherited: a
    script that starts `cleanup-pipeline local &` leaves SIGINT and SIGTERM ignored, and only
    SIGKILL would stop it, leaving the UI's processes behind. The first of them interrupts what
    is running, so that everything started is stopped on the way out; later ones are ignored
    while that happens.

    During a run of the job in this process, Dagster handles SIGINT and SIGTERM itself: it ends
    the run at its next safe point, then forgets the signal. Every signal also reaches a pipe
    (the wakeup fd), so that a stop asked for during the run is still seen after it."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._deferring = False
        self._pending = False
        self._wakeup = -1

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return
        self.received.append(signum)
        if self._deferring:
            self._pending = True
            return
        current = signal.getsignal(signal.SIGINT)
        if current != self._handle and callable(current):
            current(signal.SIGINT, frame)  # Dagster's, during a run: the run stops safely
            return
        raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator["StopSignals"]:
        previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        self._wakeup, write = os.pipe()
        for end in (self._wakeup, write):
            os.set_blocking(end, False)
        earlier_wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        try:
            yield self
        finally:
            signal.set_wakeup_fd(earlier_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._wakeup)
            os.close(write)

    def stop_if_received(self) -> None:
        """Raises `KeyboardInterrupt` if a stop signal arrived, whoever handled it."""
        try:
            arrived = [s for s in os.read(self._wakeup, 512) if s in STOP_SIGNALS]
        except BlockingIOError:
            arrived = []
        if arrived and not self.received:
            self.received.append(arrived[0])
        if self.received:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A signal received in this block takes effect at its end: a process it starts is
        known to whoever must stop it, and a stop under way is not cut short."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt


def run_local(users: int, ui: bool, ui_port: int) -> int:
    """Exit status 0 when the UI was served and then stopped by a signal (or the run succeeded,
    without the UI); 128 + the signal's number when one stopped it earlier."""
    with StopSignals().installed() as stops:
        try:
            return _run_local(users, ui, ui_port, stops)
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):
            signum = stops.received[0] if stops.received else signal.SIGINT
            print(f"stopped by {signal.Signals(signum).name}", file=sys.stderr, flush=True)
            return 128 + signum


def _run_local(users: int, ui: bool, ui_port: int, stops: StopSignals) -> int:
    # Late: keeps `--help` fast.
    from cleanup_pipeline.definitions import cleanup_job
    from cleanup_pipeline.orchestration.jobs import run_job

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(LOCAL_INSTANCE_CONFIG)
    os.environ.setdefault("CLEANUP_REPORTS_DIR", str(Path("reports").resolve()))
    os.environ.setdefault("CLEANUP_ARCHIVE_DIR", str(Path("archive").resolve()))
    # The run, and those launched from the UI, follow the demo's map (which declares the
    # sessions it seeds) unless the shell names one.
    os.environ.update(with_demo_map(os.environ))
    with moto_server() as endpoint:
        os.environ.update(local_environment(endpoint))
        print(f"AWS emulated by moto at {endpoint}", flush=True)
        settings = load_settings()
        clients = make_clients(settings)
        # A service's own endpoint variable set in the shell would still win over the emulator.
        refused = refuse_off_this_machine(
            clients, os.environ, "the demo data goes only to the emulator"
        )
        if refused:
            print(refused, file=sys.stderr)
            return 2
        if ui:
            print(
                "While the UI is served, commands in another shell reach this stack after:",
                *shell_exports(os.environ),
                sep="\n",
                flush=True,
            )
        provision(clients, settings)
        started = time.monotonic()
        sessions = sessions_store(load_data_map(settings))
        demo = seed_demo(clients, settings, users, now_ms(), sessions=sessions, erase_requests=True)
        print(
            f"seeded {demo.users} users, {demo.files} files, {demo.features} features, "
            f"{demo.sessions} sessions, {demo.requests} erase requests in "
            f"{time.monotonic() - started:.1f} s: "
            f"{json.dumps(demo.profiles)}",
            flush=True,
        )
        started = time.monotonic()
        summary = run_job(as_of=None, dry_run=False, allow_mass_action=False, job=cleanup_job)
        stops.stop_if_received()
        print(f"job run took {time.monotonic() - started:.1f} s", flush=True)
        print(f"report: {summary['report']}")
        print(json.dumps(summary), flush=True)
        if not ui:
            return 0 if summary["status"] == "success" else 1
        process: subprocess.Popen | None = None
        try:
            with stops.deferred():
                process = start_ui(ui_port)
            print(
                f"Dagster UI: http://127.0.0.1:{ui_port} (run {summary['run_id']} is in its "
                "history, the daily schedule is on). Press Ctrl-C to stop the UI and the "
                "emulator.",
                flush=True,
            )
            process.wait()
        except KeyboardInterrupt:
            pass  # the way to stop the UI: still a success
        finally:
            if process is not None:
                with stops.deferred():
                    stop_ui(process)
    return 0

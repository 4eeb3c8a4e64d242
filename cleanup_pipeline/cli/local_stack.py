"""The quick start: AWS emulated on 127.0.0.1, demo data, one run, then the Dagster UI."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.cli.extras import dg_command
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import seed_demo
from cleanup_pipeline.local.emulator import local_environment, moto_server
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


def run_local(users: int, ui: bool, ui_port: int) -> int:
    from cleanup_pipeline.cli.main import run_job  # late: keeps `--help` fast

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(LOCAL_INSTANCE_CONFIG)
    os.environ.setdefault("CLEANUP_REPORTS_DIR", str(Path("reports").resolve()))
    with moto_server() as endpoint:
        os.environ.update(local_environment(endpoint))
        print(f"AWS emulated by moto at {endpoint}", flush=True)
        settings = load_settings()
        clients = make_clients(settings)
        provision(clients, settings)
        started = time.monotonic()
        demo = seed_demo(clients, settings, users, int(time.time() * 1000))
        print(
            f"seeded {demo.users} users, {demo.files} files, {demo.features} features "
            f"in {time.monotonic() - started:.1f} s: {json.dumps(demo.profiles)}",
            flush=True,
        )
        started = time.monotonic()
        summary = run_job(as_of=None, dry_run=False, allow_mass_action=False)
        print(f"job run took {time.monotonic() - started:.1f} s", flush=True)
        print(f"report: {summary['report']}")
        print(json.dumps(summary), flush=True)
        if not ui:
            return 0 if summary["status"] == "success" else 1
        process = start_ui(ui_port)
        print(
            f"Dagster UI: http://127.0.0.1:{ui_port} (run {summary['run_id']} is in its "
            "history, the daily schedule is on). Press Ctrl-C to stop the UI and the "
            "emulator.",
            flush=True,
        )
        try:
            process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop_ui(process)
    return 0

"""Section 6: a launch from the UI with the default config against `cleanup-pipeline run`.

A launch from the launchpad (or the schedule) starts a fresh process that loads the code and
executes the run with the job's default executor: here `dg.execute_job` of the reconstructable
job, with no `execution:` config, in a fresh interpreter. `cleanup-pipeline run` executes every
step in its one process. Both are timed as whole processes, from start to exit, on the same
400-user demo world, re-seeded into a fresh moto server state before every run. For reference,
the same launch with one process per step: forked from a server that preloaded the job, and
Dagster's stock default (a fresh interpreter per step, `spawn`).

    .venv/bin/python -m bench.launch [--repeats N] [--kinds cli,ui_default,...]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.output import Report, ratio
from cleanup_pipeline.aws.clients import clear_shared_clients, make_clients
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import seed_demo
from cleanup_pipeline.local.emulator import local_environment, moto_server
from cleanup_pipeline.local.provision import provision

DEMO_USERS = 400

# What the UI's run launcher does in its run process, minus the gRPC code server round trip.
LAUNCH = """
import json, sys
import dagster as dg
from cleanup_pipeline.cli.job_target import cleanup_job
from cleanup_pipeline.orchestration.job import run_config_for

from cleanup_pipeline.orchestration.executors import FORKED_STEPS

run_config = run_config_for(sys.argv[1])
if sys.argv[2] == "forkserver":  # one process per step, forked from preloaded modules
    run_config["execution"] = {"config": FORKED_STEPS}
if sys.argv[2] == "spawn":  # Dagster's stock default: a fresh interpreter per step
    run_config["execution"] = {"config": {"multiprocess": {}}}
instance = dg.DagsterInstance.get()
result = dg.execute_job(dg.reconstructable(cleanup_job), instance=instance, run_config=run_config)
steps = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
pids = {r.dagster_event.pid for r in steps}
print(json.dumps({"success": result.success, "steps": len(steps), "processes": len(pids)}))
"""

KINDS = {
    "cli": "cleanup-pipeline run (in process)",
    "ui_default": "UI launch, default config (in process)",
    "ui_forkserver": "UI launch, a process per step (forkserver, preloaded)",
    "ui_spawn": "UI launch, Dagster's stock default (spawn)",
}


def _fresh_world(endpoint: str, now: int) -> None:
    """Everything the previous run changed is gone: the same demo world for every run."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
    clear_shared_clients()
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seed_demo(clients, settings, DEMO_USERS, now)


def _command(kind: str, as_of: str) -> list[str]:
    if kind == "cli":
        return [sys.executable, "-m", "cleanup_pipeline.cli.main", "run", "--as-of", as_of]
    return [sys.executable, "-c", LAUNCH, as_of, kind.removeprefix("ui_")]


def _timed_run(kind: str, as_of: str, workdir: Path) -> tuple[float, dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLEANUP_REPORTS_DIR": str(home / "reports")}
    started = time.perf_counter()
    done = subprocess.run(
        _command(kind, as_of), env=env, capture_output=True, text=True, timeout=900, check=False
    )
    wall = time.perf_counter() - started
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    outcome = json.loads(last)
    if done.returncode != 0 or not (outcome.get("success") or outcome.get("status") == "success"):
        print(done.stderr[-3000:], file=sys.stderr)
    return wall, outcome


def run(report: Report, repeats: int = 2, kinds: tuple[str, ...] = tuple(KINDS)) -> None:
    section = report.section(
        "launch", f"6. Launch from the UI vs cleanup-pipeline run ({DEMO_USERS}-user demo world)"
    )
    saved = dict(os.environ)
    walls: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="launch-") as tmp:
            os.environ.update(local_environment(endpoint))
            now = int(time.time() * 1000)
            as_of = format_ms(now)
            # Alternating kinds, so that a change in the machine's load hits each alike.
            for _ in range(repeats):
                for kind in kinds:
                    _fresh_world(endpoint, now)
                    wall, outcome = _timed_run(kind, as_of, Path(tmp))
                    walls[kind].append(wall)
                    report.note(f"{kind}: {wall:.1f} s, {outcome}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    best = {kind: min(values) for kind, values in walls.items()}
    for kind in kinds:
        report.figure(section, f"{kind}_s", f"{KINDS[kind]}, best of {repeats}", best[kind], "s")
    section["runs_s"] = {kind: [round(w, 2) for w in values] for kind, values in walls.items()}
    for kind in set(kinds) - {"cli"}:
        report.figure(
            section,
            f"{kind}_over_cli",
            f"{KINDS[kind].split(',')[0]} ({kind}) / cleanup-pipeline run",
            ratio(best.get("cli"), best[kind]),
            "x",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.launch", description=__doc__)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind (best kept)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"subset of {','.join(KINDS)}")
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    report = Report()
    run(report, args.repeats, kinds)
    print(json.dumps(report.sections, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

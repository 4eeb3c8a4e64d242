"""Section 2: the real job (`cleanup_pipeline.cli.main.run_job`), in process, on the moto server.

Calls are attributed to the job's steps by time: with the in-process executor the steps run one
after another, so each call falls inside exactly one step's start and end.
"""

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from bench import cpu
from bench.calls import CallRecorder
from cleanup_pipeline.aws import clients as aws_clients
from cleanup_pipeline.cli.main import run_job

CASCADE_PREFIX = "deleted_accounts"
WARNING_STEP = "warning_emails"
INSTANCE_YAML = "telemetry:\n  enabled: false\n"


@dataclass
class JobRun:
    summary: dict[str, Any]
    wall_s: float
    steps: dict[str, tuple[float, float]]  # step key -> (start, end), epoch seconds
    calls_by_step: dict[str, Counter[str]]
    attempts: int
    log: Path
    client_builds: int
    client_build_s: float
    cpu: cpu.CpuSamples

    def step_cpu_s(self, predicate: Callable[[str], bool]) -> float:
        """CPU time the whole process got during the matching steps (moto's share included)."""
        return sum(
            self.cpu.between(start, end)
            for key, (start, end) in self.steps.items()
            if predicate(key)
        )

    @property
    def outside_steps_s(self) -> float:
        """Run start and end: launching, planning, reading and writing run storage."""
        return self.wall_s - sum(end - start for start, end in self.steps.values())

    def step_s(self, predicate: Callable[[str], bool]) -> float:
        return sum(end - start for key, (start, end) in self.steps.items() if predicate(key))

    def calls(self, predicate: Callable[[str], bool]) -> Counter[str]:
        total: Counter[str] = Counter()
        for key, counter in self.calls_by_step.items():
            if predicate(key):
                total.update(counter)
        return total


def run(recorder: CallRecorder, workdir: Path, as_of_ms: int, name: str) -> JobRun:
    home = workdir / f"dagster_home_{name}"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["CLEANUP_REPORTS_DIR"] = str(workdir / f"reports_{name}")
    log = workdir / f"job_{name}.log"
    instance = dg.DagsterInstance.get()
    recorder.reset()
    builds: list[float] = []
    make_clients = aws_clients.make_clients
    aws_clients.clear_shared_clients()  # count what this run builds, as a fresh process would

    def timed_make_clients(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return make_clients(*args, **kwargs)
        finally:
            builds.append(time.perf_counter() - started)

    aws_clients.make_clients = timed_make_clients  # type: ignore[assignment]
    try:
        with log.open("w") as sink, contextlib.redirect_stderr(sink):
            started = time.perf_counter()
            with cpu.sampling() as cpu_samples:
                summary = run_job(
                    as_of=str(as_of_ms), dry_run=False, allow_mass_action=False, instance=instance
                )
            wall = time.perf_counter() - started
        stats = instance.get_run_step_stats(summary["run_id"])
    finally:
        aws_clients.make_clients = make_clients  # type: ignore[assignment]
        instance.dispose()
    steps = {
        s.step_key: (float(s.start_time), float(s.end_time))
        for s in stats
        if s.start_time is not None and s.end_time is not None
    }
    calls_by_step: dict[str, Counter[str]] = {}
    for call in recorder.calls:
        key = next(
            (k for k, (start, end) in steps.items() if start <= call.at <= end), "(outside steps)"
        )
        calls_by_step.setdefault(key, Counter())[call.name] += 1
    return JobRun(
        summary,
        wall,
        steps,
        calls_by_step,
        recorder.attempts,
        log,
        len(builds),
        sum(builds),
        cpu_samples,
    )

"""The real job on the emulator: in process for time and calls, as its own command for memory.

In process (`run_job`, the CLI's own path) every step runs in the benchmark's process, one after
another, so each AWS call falls inside exactly one step's start and end and is attributed to it.
The calls of the proof of deletion (inside the cascade's steps) are labelled apart as well.
"""

import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from bench.measure import CallRecorder, TreeRun, run_sampled
from cleanup_pipeline.actions import cascade
from cleanup_pipeline.actions.proof import Proof
from cleanup_pipeline.actions.store_kinds import ProofContext
from cleanup_pipeline.aws import clients as aws_clients
from cleanup_pipeline.definitions import cleanup_job
from cleanup_pipeline.orchestration.jobs import run_job

CASCADE_PREFIX = "deleted_accounts"
WARNING_STEP = "warning_emails"
SCAN_STEP = "users_snapshot"
INSTANCE_YAML = "telemetry:\n  enabled: false\n"
PROOF_LABEL = "proof"


def is_cascade(step: str) -> bool:
    return step.startswith(CASCADE_PREFIX)


@dataclass
class JobRun:
    summary: dict[str, Any]
    wall_s: float
    steps: dict[str, tuple[float, float]]  # step key -> (start, end), epoch seconds
    calls_by_step: dict[str, Counter[str]]
    log: Path
    proof_calls: Counter[str]  # the proof of deletion's, wherever it ran

    def step_s(self, predicate: Callable[[str], bool]) -> float:
        return sum(end - start for key, (start, end) in self.steps.items() if predicate(key))

    def calls(self, predicate: Callable[[str], bool]) -> Counter[str]:
        total: Counter[str] = Counter()
        for key, counter in self.calls_by_step.items():
            if predicate(key):
                total.update(counter)
        return total


def _instance_home(workdir: Path, name: str) -> dict[str, str]:
    """A fresh DAGSTER_HOME and report folder for one run, as environment variables."""
    home = workdir / f"dagster_home_{name}"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    return {"DAGSTER_HOME": str(home), "CLEANUP_REPORTS_DIR": str(workdir / f"reports_{name}")}


@contextlib.contextmanager
def proof_labelled(recorder: CallRecorder) -> Iterator[None]:
    """The calls the cascade's proof of deletion makes, labelled `PROOF_LABEL`."""
    original = cascade.prove_deleted

    def labelled(*args: Any, **kwargs: Any) -> Any:
        before, recorder.label = recorder.label, PROOF_LABEL
        try:
            return original(*args, **kwargs)
        finally:
            recorder.label = before

    cascade.prove_deleted = labelled  # type: ignore[assignment]
    try:
        yield
    finally:
        cascade.prove_deleted = original  # type: ignore[assignment]


@contextlib.contextmanager
def without_proof() -> Iterator[None]:
    """The cascade as it ran before it proved its deletions: every deleted user counts as
    proved without a lookup (the benchmark's comparison only; the job always proves)."""
    original = cascade.prove_deleted

    def unproved(ctx: ProofContext, user_ids: list[str], acted: Any) -> Proof:
        return Proof(list(user_ids), tuple(store.name for store in ctx.data_map.stores))

    cascade.prove_deleted = unproved  # type: ignore[assignment]
    try:
        yield
    finally:
        cascade.prove_deleted = original  # type: ignore[assignment]


def run_in_process(recorder: CallRecorder, workdir: Path, as_of_ms: int, name: str) -> JobRun:
    os.environ.update(_instance_home(workdir, name))
    log = workdir / f"job_{name}.log"
    instance = dg.DagsterInstance.get()
    recorder.reset()
    aws_clients.clear_shared_clients()  # the run builds its own, as a fresh process would
    try:
        with (
            log.open("w") as sink,
            contextlib.redirect_stderr(sink),
            proof_labelled(recorder),
        ):
            started = time.perf_counter()
            summary = run_job(
                str(as_of_ms),
                dry_run=False,
                allow_mass_action=False,
                instance=instance,
                job=cleanup_job,
            )
            wall = time.perf_counter() - started
        stats = instance.get_run_step_stats(summary["run_id"])
    finally:
        instance.dispose()
    steps = {
        s.step_key: (float(s.start_time), float(s.end_time))
        for s in stats
        if s.start_time is not None and s.end_time is not None
    }
    by_step: dict[str, Counter[str]] = {}
    for call in recorder.calls:
        key = next((k for k, (a, b) in steps.items() if a <= call.at <= b), "(outside steps)")
        by_step.setdefault(key, Counter())[call.name] += 1
    proof = recorder.count(lambda call: call.label == PROOF_LABEL)
    return JobRun(summary, wall, steps, by_step, log, proof)


def run_as_command(workdir: Path, name: str, as_of_ms: int) -> tuple[TreeRun, dict[str, Any]]:
    """`cleanup-pipeline run` as its own process, as production runs it, its process tree's RSS
    sampled (the benchmark's process, holding the emulator, is not part of it); with the
    summary the command printed."""
    env = {**os.environ, **_instance_home(workdir, name)}
    command = [str(Path(sys.executable).with_name("cleanup-pipeline")), "run"]
    log = workdir / f"job_{name}.log"
    run = run_sampled([*command, "--as-of", str(as_of_ms)], env, log)
    if run.returncode != 0:
        print(log.read_text()[-4000:], file=sys.stderr)
    return run, last_json(log)


def last_json(log: Path) -> dict[str, Any]:
    """The run summary a command prints (its last JSON line), or nothing."""
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                return json.loads(line)
            return {}
    return {}

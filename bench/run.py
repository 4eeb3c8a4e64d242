"""Performance benchmark of the cleanup job, with the original design as baseline.

Each section prints its figures as it measures them and each target as MET or MISSED; the last
line is one JSON object holding everything. Method: bench/README.md; figures: docs/performance.md.
"""

import argparse
import gc
import json
import operator
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest.mock import patch

from moto import mock_aws

from bench import baseline, emails, export, ours, recovery, stores, world
from bench.measure import MB, MIB, CallRecorder, TreeRun, peak_growth, recording, run_sampled
from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.core.data_map import MAP_VARIABLE, load_data_map
from cleanup_pipeline.core.decisions import Policy, classify
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.core.wire import decode_items
from cleanup_pipeline.local import emulator
from cleanup_pipeline.local.provision import provision

SECTIONS = ("decode", "e2e", "stores", "memory", "emails", "recovery", "export")
MILLION = 1_000_000
CALLS_PER_DELETED_USER_TARGET = 2.1  # the cascade, its proof of deletion aside
PROOF_CALLS_PER_DELETED_USER_TARGET = 1.05
CALLS_WITH_PROOF_PER_DELETED_USER_TARGET = 3.2
SPEEDUP_TARGET = 8.0
GROWTH_PER_1000_USERS_TARGET_MB = 1.0
# A run process's memory settings as deploy/ sets them (docs/production.md).
DEPLOYED_MEMORY_SETTINGS = {
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_TRIM_THRESHOLD_": "131072",
}
IMPORTS_ONLY = "import cleanup_pipeline.cli.main, cleanup_pipeline.definitions"


def sizes(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(","))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes, a few minutes")
    add("--users", type=int, help="users of the end-to-end world (20,000; quick 2,000)")
    add("--memory-users", type=sizes, help="two sizes of the memory runs (20000,100000)")
    add("--decode-items", type=int, help="items decoded and classified (1,000,000; quick 100,000)")
    add("--emails", type=int, help="emails sent by each sender (300; quick 50)")
    add("--rate", type=float, default=14.0, help="allowed email send rate per second")
    add("--delete-share", type=float, default=0.01, help="share of users that are deleted")
    add("--notify", type=int, default=20, help="notify candidates seeded")
    add("--features", type=int, help="size of the features table (users / 500, at least 20)")
    add("--addresses-stored", action="store_true", help="seed the deleted users' addresses")
    add("--recovery-users", type=int, default=200, help="deletions of the recovery section")
    add("--stores", default=",".join(stores.EXTRA_STORES), help="the stores section's extra stores")
    add("--export-objects", type=int, help="objects of the exported user (10,000; quick 1,000)")
    add("--export-object-kib", type=int, default=100, help="size of each exported object")
    add("--sections", default=",".join(SECTIONS), help=f"a subset of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    args.sections = tuple(s for s in args.sections.split(",") if s)
    args.stores = tuple(s for s in args.stores.split(",") if s)
    if unknown := set(args.stores) - set(stores.EXTRA_STORES):
        parser.error(f"unknown stores: {', '.join(sorted(unknown))}")
    if unknown := set(args.sections) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    quick = args.quick
    args.memory_users = args.memory_users or ((2_000, 10_000) if quick else (20_000, 100_000))
    if len(args.memory_users) != 2 or not 0 < args.memory_users[0] < args.memory_users[1]:
        parser.error("--memory-users takes two sizes, the smaller first: e.g. 20000,100000")
    args.users = args.users or (2_000 if quick else 20_000)
    args.decode_items = args.decode_items or (100_000 if quick else MILLION)
    args.emails = args.emails or (50 if quick else 300)
    args.export_objects = args.export_objects or (1_000 if quick else 10_000)
    return args


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def describe_machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])  # MemTotal comes first
    packages = ("boto3", "moto", "pandas", "pyarrow", "dagster")
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_model": models[0] if models else platform.processor(),
        "memory_gib": round(memory_kib / 1024**2, 1),
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in packages},
        "load_average_at_start": load_average(),
    }


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    kind: str  # "below", "at_most" or "at_least" the limit
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or self.value != self.value:  # not measured, or NaN
            return None
        return {"below": operator.lt, "at_most": operator.le}.get(self.kind, operator.ge)(
            self.value, self.limit
        )


@dataclass
class Report:
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    current: dict[str, Any] = field(default_factory=dict)

    def section(self, key: str, title: str) -> None:
        load = load_average()[0]
        print(f"\n== {title} [load average {load:.2f}]", flush=True)
        self.current = self.sections.setdefault(key, {"load_average_at_start": load})

    def figure(self, key: str, label: str, value: Any, unit: str = "") -> None:
        self.current[key] = value
        print(f"  {label:<58} {fmt(value)}{' ' + unit if unit else ''}", flush=True)

    def memory(self, key: str, label: str, run: TreeRun) -> float:
        """A process tree's peak in MB (10^6 bytes, the target's unit) and MiB (what `ps`
        shows), the anonymous memory in it (which, unlike the pages of installed files, does
        not depend on the page cache), and each process's share at that moment. Returns MB."""
        size = run.peak_bytes / MB if run.returncode == 0 else float("nan")
        self.figure(f"{key}_mb", label, size, f"MB = {size * MB / MIB:,.1f} MiB")
        tree = [[p.name, round(p.rss / MIB, 1), round(p.anon / MIB, 1)] for p in run.peak_tree]
        self.current[f"{key}_processes_mib"] = tree
        anon = sum(p.anon for p in run.peak_tree) / MIB
        self.note(f"  anonymous {anon:.1f} MiB; processes (name, MiB, anonymous MiB): {tree}")
        return size

    def note(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def target(self, target: Target) -> None:
        self.targets.append(target)
        verdict = {True: "MET", False: "MISSED", None: "n/a"}[target.met]
        sign = {"below": "<", "at_most": "<="}.get(target.kind, ">=")
        value = f"{fmt(target.value)} {sign} {fmt(target.limit)}"
        note = f" ({target.note})" if target.note else ""
        print(f"  target {target.name}: {value} -> {verdict}{note}", flush=True)


@dataclass
class Emulated:
    clients: AwsClients
    settings: Settings
    workdir: Path
    recorder: CallRecorder
    seeded: world.World


@contextmanager
def emulated(options: argparse.Namespace, users: int = 0) -> Iterator[Emulated]:
    """A provisioned moto server (stopped on exit), the job's environment pointing at it, every
    AWS call of this process counted, and a world of `users` seeded into it."""
    with (
        emulator.moto_server() as endpoint,
        patch.dict(os.environ, emulator.local_environment(endpoint)),
        tempfile.TemporaryDirectory(prefix="cleanup-bench-") as tmp,
        recording() as recorder,
    ):
        settings = load_settings()
        clients = make_clients(settings)
        provision(clients, settings)
        now = int(time.time() * 1000)
        items, profiles = world.build_users(users, now, options.delete_share, options.notify)
        features = options.features or max(20, users // 500)
        seeded = world.seed(
            clients, settings, items, profiles, features, now, options.addresses_stored
        )
        yield Emulated(clients, settings, Path(tmp), recorder, seeded)


def timed_runs(repeats: int, work: Callable[[], Any]) -> tuple[list[float], list[float]]:
    """Wall and process CPU seconds of each run of `work`, garbage collected in between."""
    walls, cpus = [], []
    for _ in range(repeats):
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        work()
        walls.append(round(time.perf_counter() - wall, 3))
        cpus.append(round(time.process_time() - cpu, 3))
    return walls, cpus


def decode_section(report: Report, options: argparse.Namespace) -> None:
    """Decoding the scanned items and classifying them, without AWS: the items are built as the
    low-level client returns them for the job's projected Scan, from every rule's profile."""
    count = options.decode_items
    report.section("decode", f"Decoding and classification of {count:,} items (no AWS)")
    now = int(time.time() * 1000)
    items, profiles = world.generate_users(count, now, world.REALISTIC_MIX, seed=1)
    walls, cpus = timed_runs(3, lambda: decode_items(items))
    report.figure("decode_wall_runs_s", "decode_items, wall, 3 runs", walls, "s")
    report.figure("decode_cpu_runs_s", "decode_items, process CPU, 3 runs", cpus, "s")
    snapshot, policy = decode_items(items), Policy()
    _, classify_cpus = timed_runs(3, lambda: classify(snapshot, now, now, policy))
    report.figure("classify_cpu_runs_s", "classify, process CPU, 3 runs", classify_cpus, "s")
    gc.collect()
    with peak_growth() as sampled:
        classify(snapshot, now, now, policy)
    gc.collect()
    with peak_growth(traced=True) as traced:
        decisions = classify(snapshot, now, now, policy)
    peak = max(traced.traced + sampled.arrow, sampled.rss)
    report.figure("classify_traced_mib", "classify peak, tracemalloc", traced.traced / MIB, "MiB")
    report.figure("classify_arrow_mib", "  Arrow's pool, sampled", sampled.arrow / MIB, "MiB")
    report.figure("classify_rss_mib", "  RSS above its start, sampled", sampled.rss / MIB, "MiB")
    got = decisions["decision"].astype(str)
    wrong = sum(world.EXPECTED[p] != found for p, found in zip(profiles, got, strict=True))
    report.figure("decisions_unexpected", "decisions differing from their profile", wrong)
    scale, note = MILLION / count, "" if count == MILLION else f"scaled from {count:,} items"
    report.target(Target("decode_1M_wall_s", min(walls) * scale, 3.0, "below", note))
    # On a shared machine wall time includes waiting for a core; CPU time does not.
    report.target(Target("decode_1M_cpu_s", min(cpus) * scale, 3.0, "below", note))
    report.target(Target("classify_1M_cpu_s", min(classify_cpus) * scale, 1.0, "below", note))
    note = "; ".join(x for x in (note, "the larger of tracemalloc + Arrow and RSS") if x)
    report.target(Target("classify_1M_peak_mib", peak * scale / MIB, 1024.0, "below", note))


@dataclass
class Side:
    """One pipeline's end-to-end figures, emails excluded."""

    e2e_s: float
    scan_s: float
    cascade_s: float
    deleted: int
    calls: Counter[str]  # of the cascade

    @classmethod
    def of(cls, run: ours.JobRun) -> "Side":
        """The real job's figures, its warning emails left out."""
        return cls(
            e2e_s=run.wall_s - run.step_s(lambda k: k == ours.WARNING_STEP),
            scan_s=run.step_s(lambda k: k == ours.SCAN_STEP),
            cascade_s=run.step_s(ours.is_cascade),
            deleted=int(run.summary.get("counts", {}).get("deleted", 0)),
            calls=run.calls(ours.is_cascade),
        )

    @property
    def calls_per_user(self) -> float:
        return sum(self.calls.values()) / max(self.deleted, 1)

    @property
    def cascade_ms_per_user(self) -> float:
        return 1000 * self.cascade_s / max(self.deleted, 1)

    def print(self, report: Report, scan: str, here: Emulated) -> None:
        report.figure("e2e_s", "end to end, emails excluded", self.e2e_s, "s")
        report.figure("scan_s", f"  {scan}", self.scan_s, "s")
        report.figure("cascade_s", "  deletion cascade", self.cascade_s, "s")
        report.figure("deleted", "users deleted", self.deleted)
        report.figure("calls_per_deleted_user", "AWS calls per deleted user", self.calls_per_user)
        per_user = {name: round(n / max(self.deleted, 1), 3) for name, n in self.calls.items()}
        report.note(f"per deleted user, by operation: {per_user}")
        left = world.state(here.clients, here.settings, here.seeded)
        report.figure("left_after", "delete candidates' data left afterwards", left)


def e2e_section(report: Report, options: argparse.Namespace) -> None:
    """The real job and the original design on the same seeded world, one after the other."""
    with emulated(options, options.users) as here:
        report.section("seed", f"The benchmark world on moto ({options.users:,} users)")
        report.figure("expected", "decisions the seeded data calls for", dict(here.seeded.expected))
        report.figure("files", "S3 objects of delete candidates", len(here.seeded.files))
        report.figure("features", "features proposed by them", here.seeded.affected_features)
        mine = ours_e2e(report, here)
        world.restore(here.clients, here.settings, here.seeded)
        unproved = unproved_e2e(report, here)
        world.restore(here.clients, here.settings, here.seeded)
        theirs = baseline_e2e(report, here)
    compare(report, mine, theirs)
    proof_cost(report, mine, unproved)


def ours_e2e(report: Report, here: Emulated) -> Side:
    report.section("e2e_ours", "End to end, the real job (run_job, in process)")
    run = ours.run_in_process(here.recorder, here.workdir, here.seeded.now, "ours")
    report.figure("status", "job status", run.summary.get("status"))
    if run.summary.get("status") != "success":
        print(run.log.read_text()[-4000:], file=sys.stderr)
    report.figure("wall_s", "job wall time", run.wall_s, "s")
    side = Side.of(run)
    side.print(report, "users_snapshot step (4-segment scan)", here)
    rest = side.e2e_s - side.scan_s - side.cascade_s
    report.figure("other_s", "everything else (Dagster, decisions, reports)", rest, "s")
    # The batch steps' UpdateItems: one per feature a deleted user proposed, a few per batch
    # for the scoreboards.
    batches = run.calls(lambda k: k.startswith(f"{ours.CASCADE_PREFIX}.delete_account_batch"))
    features = batches["dynamodb:UpdateItem"]
    proof = sum(run.proof_calls.values())
    with_proof = sum(side.calls.values()) - features
    net = (with_proof - proof) / side.deleted if side.deleted else None
    proved = proof / side.deleted if side.deleted else None
    note = f"plus {features} feature UpdateItems for {side.deleted} users"
    report.figure("proof_calls_per_deleted_user", "  of which the proof of deletion", proved)
    by_operation = {name: round(n / max(side.deleted, 1), 3) for name, n in run.proof_calls.items()}
    report.note(f"proof of deletion per deleted user, by operation: {by_operation}")
    limit = CALLS_PER_DELETED_USER_TARGET
    report.target(
        Target(
            "calls_per_deleted_user_excl_feature_updates",
            net,
            limit,
            "at_most",
            f"{note}; the proof of deletion aside",
        )
    )
    report.target(
        Target(
            "proof_calls_per_deleted_user", proved, PROOF_CALLS_PER_DELETED_USER_TARGET, "at_most"
        )
    )
    total = with_proof / side.deleted if side.deleted else None
    report.target(
        Target(
            "calls_with_proof_per_deleted_user_excl_feature_updates",
            total,
            CALLS_WITH_PROOF_PER_DELETED_USER_TARGET,
            "at_most",
            note,
        )
    )
    return side


def unproved_e2e(report: Report, here: Emulated) -> Side:
    """The same job on the same world with its proof of deletion switched off: the cascade as
    it ran before it proved anything, run after the proved one so that any warming up favours
    it."""
    report.section("e2e_unproved", "End to end, the real job without its proof of deletion")
    with ours.without_proof():
        run = ours.run_in_process(here.recorder, here.workdir, here.seeded.now, "unproved")
    report.figure("status", "job status", run.summary.get("status"))
    side = Side.of(run)
    side.print(report, "users_snapshot step (4-segment scan)", here)
    return side


def proof_cost(report: Report, proved: Side, unproved: Side) -> None:
    report.section("proof_cost", "What proving each deletion costs (proved / unproved)")
    report.figure("e2e", "end to end, emails excluded", proved.e2e_s / unproved.e2e_s, "x")
    report.figure("cascade", "deletion cascade", proved.cascade_s / unproved.cascade_s, "x")
    extra = proved.calls_per_user - unproved.calls_per_user
    report.figure("calls_per_deleted_user", "AWS calls added per deleted user", extra)
    report.target(
        Target("e2e_with_proof_vs_without", proved.e2e_s / unproved.e2e_s, 1.2, "at_most")
    )


def baseline_e2e(report: Report, here: Emulated) -> Side:
    report.section("e2e_baseline", "The original design, same world")
    here.recorder.reset()

    def phase(label: str) -> None:
        here.recorder.label = label

    result = baseline.OriginalDesign(here.settings, phase).run(here.seeded.now)
    report.figure("decisions", "decisions (skip: exempt, active or waiting)", result.decisions)
    side = Side(
        e2e_s=result.wall_s - result.notify_s,
        scan_s=result.scan_s,
        cascade_s=result.delete_s,
        deleted=result.deleted,
        calls=here.recorder.count(lambda c: c.label == "delete"),
    )
    side.print(report, "scan (1 segment, document-client unmarshalling)", here)
    return side


def compare(report: Report, mine: Side, theirs: Side) -> None:
    report.section("ratios", "Ours against the original design (baseline / ours)")
    speedup = theirs.e2e_s / mine.e2e_s
    report.figure("e2e", "end to end, emails excluded", speedup, "x")
    without_scan = (theirs.e2e_s - theirs.scan_s) / (mine.e2e_s - mine.scan_s)
    report.figure("e2e_without_scan", "  without the users-table scan", without_scan, "x")
    report.figure("cascade", "deletion cascade", theirs.cascade_s / mine.cascade_s, "x")
    report.figure("cascade_ms_ours", "  per deleted user, ours", mine.cascade_ms_per_user, "ms")
    theirs_ms = theirs.cascade_ms_per_user
    report.figure("cascade_ms_baseline", "  per deleted user, original design", theirs_ms, "ms")
    report.figure("scan", "users-table scan", theirs.scan_s / mine.scan_s, "x")
    # What the ratio could reach if our scan and cascade took no time: the rest bounds it.
    ceiling = theirs.e2e_s / (mine.e2e_s - mine.scan_s - mine.cascade_s)
    report.figure("e2e_ceiling", "  ceiling if our scan and cascade took no time", ceiling, "x")
    report.figure(
        "calls", "AWS calls per deleted user", theirs.calls_per_user / mine.calls_per_user
    )
    report.target(Target("e2e_speedup_vs_baseline", speedup, SPEEDUP_TARGET, "at_least"))


def stores_section(report: Report, options: argparse.Namespace) -> None:
    """The real job on the end-to-end world with the example map's other stores: AWS calls per
    deleted user by store, and by kind of call."""
    chosen = options.stores
    with emulated(options, options.users) as here:
        title = f"The data map's stores: the app's own and {', '.join(chosen)}"
        report.section("stores", f"{title} ({options.users:,} users)")
        seeded = stores.seed(here.clients, here.seeded, here.seeded.active_ids, chosen)
        report.figure("seeded_candidates", "held by delete candidates, by store", seeded.candidates)
        report.figure("seeded_others", "held by other users, by store", seeded.others)
        path = stores.data_map(here.workdir, chosen)
        with patch.dict(os.environ, {MAP_VARIABLE: str(path)}):
            names = {
                store.table or store.bucket: store.name
                for store in load_data_map(here.settings).stores
            }
            run = ours.run_in_process(here.recorder, here.workdir, here.seeded.now, "stores")
        report.figure("status", "job status", run.summary.get("status"))
        if run.summary.get("status") != "success":
            print(run.log.read_text()[-4000:], file=sys.stderr)
    counts = run.summary.get("counts", {})
    deleted = int(counts.get("deleted", 0))
    report.figure("deleted", "users deleted", deleted)
    report.figure("verified", "deletions verified", counts.get("verified"))
    side = Side.of(run)
    report.figure("e2e_s", "end to end, emails excluded", side.e2e_s, "s")
    report.figure("cascade_s", "  deletion cascade", side.cascade_s, "s")
    per_user = side.calls_per_user
    report.figure("calls_per_deleted_user", "AWS calls per deleted user, all stores", per_user)
    found = stores.by_store(here.recorder, names)
    for name, calls in found.items():
        proof = calls.pop("proof", 0)
        total = sum(calls.values())
        report.figure(f"{name}_calls_per_deleted_user", f"  {name}", total / max(deleted, 1))
        per_user = {op: round(n / max(deleted, 1), 3) for op, n in calls.items()}
        proved = proof / max(deleted, 1)
        report.note(f"    by operation: {per_user}; of which the proof {proved:.3f}")


def memory_section(report: Report, options: argparse.Namespace) -> None:
    """Peak RSS of `cleanup-pipeline run`'s process tree at two sizes of the world, against a
    process that only imports the job."""
    report.section("memory", "Peak memory of `cleanup-pipeline run` as the users grow")
    with (
        patch.dict(os.environ, DEPLOYED_MEMORY_SETTINGS),
        tempfile.TemporaryDirectory(prefix="cleanup-bench-") as tmp,
    ):
        command = [sys.executable, "-c", IMPORTS_ONLY]
        imports = run_sampled(command, dict(os.environ), Path(tmp) / "imports.log")
    base = report.memory("imports_only", "a process importing the job, nothing run", imports)
    peaks = []
    for users in options.memory_users:
        with patch.dict(os.environ, DEPLOYED_MEMORY_SETTINGS), emulated(options, users) as here:
            run, summary = ours.run_as_command(here.workdir, "memory", here.seeded.now)
        deleted = summary.get("counts", {}).get("deleted")
        label = f"{users:,} users ({deleted} deleted; {run.wall_s:.0f} s)"
        peaks.append(report.memory(f"peak_{users}", label, run))
        above = (peaks[-1] - base) / users * 1000
        report.figure(f"above_imports_{users}", "  above the imports, per 1,000 users", above, "MB")
    small, large = options.memory_users
    growth = (peaks[1] - peaks[0]) / (large - small) * 1000
    label = f"growth per 1,000 users, {small:,} to {large:,}"
    report.figure("growth_per_1000_users_mb", label, growth, "MB")
    fixed = peaks[0] - growth * small / 1000 - base  # where the line through both sizes starts
    report.figure("fixed_above_imports_mb", "  a run's fixed cost above the imports", fixed, "MB")
    limit, note = GROWTH_PER_1000_USERS_TARGET_MB, "process tree RSS; MB = 10^6 bytes"
    report.target(Target("memory_growth_per_1000_users_mb", growth, limit, "at_most", note))


def emails_section(report: Report, options: argparse.Namespace) -> None:
    count, rate = options.emails, options.rate
    report.section("emails", f"Email throughput: {count} emails, allowed {rate:g}/s")
    with emulated(options) as here:
        mine, theirs = emails.measure(here.settings, count, rate, here.recorder)
    for who, figures in (("ours", mine), ("baseline", theirs)):
        report.note(who)
        for key, label, unit in emails.FIGURES:
            report.figure(f"{who}_{key}", f"  {label}", figures[key], unit)
    report.target(Target("email_pct_of_allowed", mine["pct_of_allowed"], 98.0, "at_least"))
    busiest = float(mine["max_in_any_1s_window"])
    report.target(Target("email_max_in_1s_window", busiest, rate, "at_most"))


def recovery_section(report: Report, options: argparse.Namespace) -> None:
    users = options.recovery_users
    report.section("recovery", f"Restore window: a batch of {users} deletions, in-process moto")
    emulator.list_versions_by_prefix()  # as the emulator lists versions: by prefix, as S3 does
    archive = f"s3://{recovery.ARCHIVE_BUCKET}/archive"
    with tempfile.TemporaryDirectory() as tmp, mock_aws():
        env = {**emulator.LOCAL_ENV, "CLEANUP_REPORTS_DIR": tmp, "CLEANUP_ARCHIVE_DIR": archive}
        with patch.dict(os.environ, env):
            found = recovery.measure(users)
    for key, label in recovery.FIGURES:
        report.figure(key, label, found[key])
    per_user = found["archive_calls_per_deleted_user"]
    report.target(Target("archive_calls_per_deleted_user", per_user, 0.05, "at_most"))


def export_section(report: Report, options: argparse.Namespace) -> None:
    objects, size = options.export_objects, options.export_object_kib * 1024
    report.section("export", f"Access export: one user with {objects:,} objects, in-process moto")
    found = export.measure(objects, size)
    for key, label, unit in export.FIGURES:
        report.figure(key, label, found[key], unit)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.perf_counter()
    machine = describe_machine()
    print(f"machine: {machine}\noptions: {vars(options)}", flush=True)
    report, walls = Report(), {}
    sections = {
        "decode": decode_section,
        "e2e": e2e_section,
        "stores": stores_section,
        "memory": memory_section,
        "emails": emails_section,
        "recovery": recovery_section,
        "export": export_section,
    }
    for name in options.sections:
        since = time.perf_counter()
        sections[name](report, options)
        walls[name] = round(time.perf_counter() - since, 1)
    total = time.perf_counter() - started
    met = sum(bool(t.met) for t in report.targets)
    print(f"\n== Targets: {met} of {len(report.targets)} met; {total:.0f} s", flush=True)
    summary = {
        "benchmark": "cleanup_pipeline",
        "machine": {**machine, "load_average_at_end": load_average()},
        "options": vars(options),
        "sections": report.sections,
        "targets": {t.name: {**asdict(t), "met": t.met} for t in report.targets},
        "section_wall_s": walls,
        "total_wall_s": round(total, 1),
    }
    print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every server and temporary directory is closed by now; the interpreter's teardown would
    # free the emulator's tables object by object, for a minute at the larger sizes.
    os._exit(status)

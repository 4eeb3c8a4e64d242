"""Performance benchmark of the cleanup job against SPEC §8, with the original design as baseline.

    .venv/bin/python -m bench.run [--quick] [--users N] [--decode-items N] [--emails N]
                                  [--segments 1,2,4,8]

Prints each figure as it is measured and ends with one JSON line holding all of them.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import (
    decode_bench,
    emails,
    launch,
    machine,
    ours,
    recovery_bench,
    scan_bench,
    tree_memory,
    without_extra,
    world,
)
from bench.baseline import OriginalDesign
from bench.calls import CallRecorder, recording
from bench.memory import MB, MIB
from bench.output import Report, Target, ratio
from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.local.emulator import local_environment, moto_server
from cleanup_pipeline.local.provision import provision

SECTIONS = ("decode", "client", "e2e", "scan", "emails", "launch", "recovery")
CALLS_PER_DELETED_USER_TARGET = 2.1
SPEEDUP_TARGET = 8.0
PEAK_MEMORY_TARGET_MB = 300.0


@dataclass(frozen=True)
class Options:
    quick: bool
    users: int
    decode_items: int
    emails: int
    segments: list[int]
    client_items: int
    rate: float
    delete_share: float
    notify: int
    features: int
    sections: tuple[str, ...]
    addresses_stored: bool


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about 2 minutes")
    parser.add_argument("--users", type=int, help="users seeded into moto (100,000; quick 10,000)")
    parser.add_argument(
        "--decode-items", type=int, help="items decoded and classified (1,000,000; quick 100,000)"
    )
    parser.add_argument("--emails", type=int, help="emails sent per sender (300; quick 50)")
    parser.add_argument("--segments", default="1,2,4,8", help="scan segment counts to compare")
    parser.add_argument(
        "--client-items",
        type=int,
        help="items in the client-side scan test (users, within 30,000..40,000)",
    )
    parser.add_argument("--rate", type=float, default=14.0, help="allowed email send rate per s")
    parser.add_argument(
        "--delete-share", type=float, default=0.01, help="share of users that are delete candidates"
    )
    parser.add_argument("--notify", type=int, default=20, help="notify candidates seeded")
    parser.add_argument("--features", type=int, help="features table size (users / 500, min 20)")
    parser.add_argument(
        "--addresses-stored",
        action="store_true",
        help="seed the delete candidates' addresses in the emails table (default: none there)",
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}"
    )
    args = parser.parse_args(argv)
    users = args.users or (10_000 if args.quick else 100_000)
    sections = tuple(s for s in args.sections.split(",") if s)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return Options(
        quick=args.quick,
        users=users,
        decode_items=args.decode_items or (100_000 if args.quick else 1_000_000),
        emails=args.emails or (50 if args.quick else 300),
        segments=[int(s) for s in args.segments.split(",") if s],
        client_items=args.client_items or min(max(users, 30_000), 40_000),
        rate=args.rate,
        delete_share=args.delete_share,
        notify=args.notify,
        features=args.features or max(20, users // 500),
        sections=sections,
        addresses_stored=args.addresses_stored,
    )


def _steps_line(run: ours.JobRun) -> str:
    parts = [f"{key} {end - start:.2f}" for key, (start, end) in run.steps.items()]
    return ", ".join(parts)


def _per_user(counter: Counter[str], users: int) -> dict[str, float]:
    return {name: round(n / users, 4) for name, n in counter.most_common()} if users else {}


NO_COMPUTE_LOGS_YAML = (
    ours.INSTANCE_YAML
    + "compute_logs:\n"
    + "  module: dagster._core.storage.noop_compute_log_manager\n"
    + "  class: NoOpComputeLogManager\n"
)


def _sampled_job(
    workdir: Path, name: str, instance_yaml: str, as_of: int, command: list[str] | None = None
) -> tree_memory.TreeRun:
    """`cleanup-pipeline run` (or `command` given those arguments) as its own process, in a
    fresh instance, its tree's RSS sampled."""
    home = workdir / f"dagster_home_{name}"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml)
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLEANUP_REPORTS_DIR": str(workdir / name)}
    command = command or [str(Path(sys.executable).with_name("cleanup-pipeline"))]
    log = workdir / f"job_{name}.log"
    run = tree_memory.run_sampled([*command, "run", "--as-of", str(as_of)], env, log)
    if run.returncode != 0:
        print(log.read_text()[-4000:], file=sys.stderr)
    summary = _last_json(log) or {}
    run.deleted = int(summary.get("counts", {}).get("deleted", 0))
    return run


def _peak(report: Report, section: dict, key: str, label: str, run: tree_memory.TreeRun) -> None:
    """The run's peak in MB and MiB, and each process's share at that moment (MiB): resident,
    and of that the anonymous memory, which unlike the pages of installed files does not depend
    on what the machine's page cache holds."""
    report.memory(section, key, label, run.peak_bytes if run.returncode == 0 else None)
    section[f"{key}_tree_mib"] = [
        [p.name, round(p.rss / MIB, 1), round(p.anon / MIB, 1)] for p in run.peak_tree
    ]
    anon = sum(p.anon for p in run.peak_tree) / MIB
    report.note(f"    of which anonymous memory: {anon:.1f} MiB")
    shares = section[f"{key}_tree_mib"]
    report.note(f"    processes at that peak (name, MiB, anonymous MiB): {shares}")


def memory_run(
    report: Report,
    workdir: Path,
    the_world: world.World,
    deleted: int,
    clients: AwsClients,
    settings: Settings,
) -> float | None:
    """The same job run again (on the restored data) as its own console command, as in
    production, with the peak RSS of its whole process tree sampled; its figures besides memory
    are not used (the in-process run above is the timed one). Then once more with Dagster's
    compute-log capture off, to show what its helper processes add, and once as an install
    without the `k8s` extra runs it. Returns the first run's peak in MB, the target's unit."""
    section = report.section(
        "memory", "2b. Peak memory: `cleanup-pipeline run` as its own process tree"
    )
    run = _sampled_job(workdir, "memory", ours.INSTANCE_YAML, the_world.now)
    report.figure(section, "returncode", "exit status", run.returncode)
    report.figure(section, "deleted", f"users deleted (timed run: {deleted})", run.deleted)
    report.figure(section, "wall_s", "wall time (process start to exit)", run.wall_s, "s")
    report.figure(section, "samples", "RSS samples (every 50 ms)", run.samples)
    _peak(report, section, "peak_rss", "peak RSS of the process tree", run)
    report.figure(section, "peak_at_s", "  reached after", run.peak_at_s, "s")

    world.restore(clients, settings, the_world)
    quiet = _sampled_job(workdir, "memory_no_compute_logs", NO_COMPUTE_LOGS_YAML, the_world.now)
    label = "  the same with compute_logs: NoOpComputeLogManager"
    _peak(report, section, "peak_rss_no_compute_logs", label, quiet)

    world.restore(clients, settings, the_world)
    command = without_extra.cli_without(without_extra.K8S_EXTRA)
    lean = _sampled_job(workdir, "memory_no_k8s", ours.INSTANCE_YAML, the_world.now, command)
    label = "  the same without the `k8s` extra (dagster-k8s hidden)"
    _peak(report, section, "peak_rss_no_k8s_extra", label, lean)

    # The floor: the same interpreter importing the job's command and definitions, nothing run.
    code = "import cleanup_pipeline.cli.main, cleanup_pipeline.definitions"
    for key, label, command in (
        ("imports_only_rss", "  importing the job's modules alone", [sys.executable, "-c", code]),
        (
            "imports_only_no_k8s_extra_rss",
            "    the same without the `k8s` extra",
            without_extra.python_without(without_extra.K8S_EXTRA, code),
        ),
    ):
        imports = tree_memory.run_sampled(command, {**os.environ}, workdir / f"{key}.log")
        report.memory(section, key, label, imports.peak_bytes if imports.returncode == 0 else None)
    return run.peak_bytes / MB if run.returncode == 0 else None


def _last_json(log: Path) -> dict | None:
    """The run summary the command prints (its last JSON line), if any."""
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def end_to_end(
    report: Report,
    recorder: CallRecorder,
    clients: AwsClients,
    settings: Settings,
    the_world: world.World,
    options: Options,
    workdir: Path,
) -> None:
    section = report.section(
        "e2e_ours", f"2. End to end, the real job on moto ({options.users:,} users)"
    )
    report.figure(section, "expected", "decisions in the seeded data", dict(the_world.expected))
    report.figure(section, "files", "S3 objects of delete candidates", len(the_world.files))
    report.figure(section, "features", "features in the table", len(the_world.features))
    report.figure(
        section,
        "affected_features",
        "  of which proposed by a delete candidate",
        the_world.affected_features,
    )
    report.figure(
        section,
        "scoreboard_entries",
        "scoreboard entries of delete candidates",
        the_world.scoreboard_entries_of_deleted,
    )
    run = ours.run(recorder, workdir, the_world.now, "ours")
    counts = run.summary.get("counts", {})
    report.figure(section, "status", "job status", run.summary.get("status"))
    report.figure(section, "counts", "job counts", {str(k): v for k, v in counts.items()})
    if run.summary.get("status") != "success":
        report.note(f"job log: {run.log}")
        print(run.log.read_text()[-4000:], file=sys.stderr)
    deleted = int(counts.get("deleted", 0))
    warning_s = run.step_s(lambda k: k == ours.WARNING_STEP)
    cascade_s = run.step_s(lambda k: k.startswith(ours.CASCADE_PREFIX))
    scan_s = run.step_s(lambda k: k == "users_snapshot")
    e2e_s = run.wall_s - warning_s
    report.figure(section, "wall_s", "job wall time (run_job, in process)", run.wall_s, "s")
    report.figure(
        section, "warning_step_s", "  warning_emails step (excluded below)", warning_s, "s"
    )
    report.figure(section, "e2e_excl_emails_s", "end to end, emails excluded", e2e_s, "s")
    report.figure(section, "scan_step_s", "  users_snapshot step (4-segment scan)", scan_s, "s")
    report.figure(section, "cascade_s", "  deletion cascade steps", cascade_s, "s")
    cascade_cpu_s = run.step_cpu_s(lambda k: k.startswith(ours.CASCADE_PREFIX))
    report.figure(
        section,
        "cascade_cpu_s",
        "    process CPU time meanwhile (job and moto server)",
        cascade_cpu_s,
        "s",
    )
    report.figure(
        section,
        "scan_cpu_s",
        "    scan step: process CPU time",
        run.step_cpu_s(lambda k: k == "users_snapshot"),
        "s",
    )
    report.figure(
        section,
        "other_s",
        "  everything else (Dagster, decisions, reports, checks)",
        e2e_s - scan_s - cascade_s,
        "s",
    )
    report.figure(
        section,
        "outside_steps_s",
        "  of the wall time, outside any step (run start/end)",
        run.outside_steps_s,
        "s",
    )
    report.figure(
        section, "client_builds", "boto3 client sets built (make_clients calls)", run.client_builds
    )
    report.figure(section, "client_build_s", "  time spent building them", run.client_build_s, "s")
    section["steps_s"] = {k: round(e - s, 3) for k, (s, e) in run.steps.items()}
    report.note(f"steps (s): {_steps_line(run)}")
    all_calls = run.calls(lambda _: True)
    cascade_calls = run.calls(lambda k: k.startswith(ours.CASCADE_PREFIX))
    # Feature and scoreboard updates happen in the batch steps; scoreboard updates are a few
    # per batch, so nearly all of these are the one UpdateItem per affected feature.
    feature_updates = run.calls(
        lambda k: k.startswith(f"{ours.CASCADE_PREFIX}.delete_account_batch")
    )["dynamodb:UpdateItem"]
    report.figure(section, "calls_total", "AWS calls, whole run", sum(all_calls.values()))
    report.figure(section, "http_attempts", "  HTTP attempts (calls + retries)", run.attempts)
    section["calls_by_step"] = {k: dict(v) for k, v in run.calls_by_step.items()}
    for key, counter in sorted(run.calls_by_step.items()):
        report.note(f"calls in {key}: {dict(counter)}")
    report.figure(section, "deleted", "users deleted", deleted)
    report.figure(section, "cascade_calls", "AWS calls in the cascade", sum(cascade_calls.values()))
    report.figure(
        section, "feature_updates", "  of which UpdateItem (features, scoreboards)", feature_updates
    )
    per_user = sum(cascade_calls.values()) / deleted if deleted else None
    per_user_net = (sum(cascade_calls.values()) - feature_updates) / deleted if deleted else None
    report.figure(section, "calls_per_deleted_user", "AWS calls per deleted user", per_user)
    report.figure(
        section, "calls_per_deleted_user_net", "  without feature UpdateItems", per_user_net
    )
    section["calls_per_deleted_user_by_operation"] = _per_user(cascade_calls, deleted)
    report.note(f"per deleted user, by operation: {section['calls_per_deleted_user_by_operation']}")
    left = world.state(clients, settings, the_world)
    report.figure(section, "left_after", "delete candidates' data left afterwards", left)

    started = time.perf_counter()
    world.restore(clients, settings, the_world)
    report.figure(
        section,
        "restore_s",
        "restoring the seeded data for the next runs",
        time.perf_counter() - started,
        "s",
    )
    peak_mb = memory_run(report, workdir, the_world, deleted, clients, settings)
    world.restore(clients, settings, the_world)

    if "scan" in options.sections:
        scan_bench.moto_segments(
            report, settings.aws_region, settings.users_table, options.users, options.segments
        )

    base = report.section("e2e_baseline", "3. Baseline: the original design, same data")
    recorder.reset()

    def phase(label: str) -> None:
        recorder.label = label

    result = OriginalDesign(settings, phase=phase).run(the_world.now)
    base_e2e = result.wall_s - result.notify_s
    report.figure(
        base, "decisions", "decisions taken (skip: exempt, active or waiting)", result.decisions
    )
    report.figure(base, "deleted", "users deleted", result.deleted)
    report.figure(
        base, "notified", "users warned (incl. invalid ones the design misreads)", result.notified
    )
    report.figure(base, "failed", "users failed", result.failed)
    report.figure(base, "wall_s", "wall time", result.wall_s, "s")
    report.figure(base, "notify_s", "  warning branch (excluded below)", result.notify_s, "s")
    report.figure(base, "e2e_excl_emails_s", "end to end, emails excluded", base_e2e, "s")
    report.figure(
        base, "scan_s", "  scan (1 segment, document-client unmarshalling)", result.scan_s, "s"
    )
    report.figure(base, "cascade_s", "  deletion cascade", result.delete_s, "s")
    report.figure(
        base,
        "cascade_cpu_s",
        "    process CPU time meanwhile (design and moto server)",
        result.delete_cpu_s,
        "s",
    )
    delete_calls = recorder.count(lambda c: c.label == "delete")
    base_per_user = sum(delete_calls.values()) / result.deleted if result.deleted else None
    base["calls"] = {
        label: dict(recorder.count(lambda c, label=label: c.label == label))
        for label in ("scan", "delete", "notify")
    }
    for label, counter in base["calls"].items():
        report.note(f"calls in {label}: {counter}")
    report.figure(base, "calls_per_deleted_user", "AWS calls per deleted user", base_per_user)
    base["calls_per_deleted_user_by_operation"] = _per_user(delete_calls, result.deleted)
    report.note(f"per deleted user, by operation: {base['calls_per_deleted_user_by_operation']}")
    left = world.state(clients, settings, the_world)
    report.figure(base, "left_after", "delete candidates' data left afterwards", left)

    compare = report.section("ratios", "Ours vs baseline (baseline / ours)")
    speedup = ratio(e2e_s, base_e2e)
    report.figure(compare, "e2e_speedup", "end to end, emails excluded", speedup, "x")
    report.figure(
        compare,
        "e2e_speedup_without_scan",
        "end to end, emails and the users-table scan excluded",
        ratio(e2e_s - scan_s, base_e2e - result.scan_s),
        "x",
    )
    report.figure(
        compare, "cascade_speedup", "deletion cascade", ratio(cascade_s, result.delete_s), "x"
    )
    report.figure(
        compare,
        "cascade_cpu_ratio",
        "  deletion cascade, process CPU time (work done, waiting for a core left out)",
        ratio(cascade_cpu_s, result.delete_cpu_s),
        "x",
    )
    report.figure(
        compare,
        "cascade_s_per_user_ours_ms",
        "  cascade per deleted user, ours",
        1000 * cascade_s / deleted if deleted else None,
        "ms",
    )
    report.figure(
        compare,
        "cascade_s_per_user_base_ms",
        "  cascade per deleted user, baseline",
        1000 * result.delete_s / result.deleted if result.deleted else None,
        "ms",
    )
    report.figure(
        compare,
        "scan_speedup",
        "scan + decode (users_snapshot vs full scan)",
        ratio(scan_s, result.scan_s),
        "x",
    )
    # What the ratio could reach if ours spent no time at all scanning and deleting: the rest
    # of ours (Dagster's steps and run start/end, decisions, reports, checks) bounds it.
    report.figure(
        compare,
        "e2e_speedup_ceiling_free_scan_and_cascade",
        "  ceiling if our scan and cascade took no time (baseline / everything else)",
        ratio(e2e_s - scan_s - cascade_s, base_e2e),
        "x",
    )
    report.figure(
        compare,
        "calls_per_deleted_user_ratio",
        "AWS calls per deleted user",
        ratio(per_user, base_per_user),
        "x",
    )
    report.target(
        Target(
            "calls_per_deleted_user_excl_feature_updates",
            per_user_net,
            CALLS_PER_DELETED_USER_TARGET,
            "at_most",
            f"plus {feature_updates} feature UpdateItems for {deleted} users",
        )
    )
    report.target(Target("e2e_speedup_vs_baseline", speedup, SPEEDUP_TARGET, "min"))
    report.target(
        Target(
            "peak_memory_process_tree_mb",
            peak_mb,
            PEAK_MEMORY_TARGET_MB,
            "at_most",
            "RSS of `cleanup-pipeline run` and its children, summed; MB = 10^6 bytes, "
            f"{PEAK_MEMORY_TARGET_MB:.0f} MB = {PEAK_MEMORY_TARGET_MB * MB / MIB:.1f} MiB",
        )
    )


def recovery_section(report: Report, users: int) -> None:
    """The restore window's costs (bench/recovery_bench.py), in-process moto."""
    found = recovery_bench.measure(users)
    section = report.section("recovery", f"Restore window, one batch of {users} deletions")
    per_user = found["archive_calls_per_deleted_user"]
    report.figure(section, "archive_calls_per_user", "archive calls per deleted user", per_user)
    report.figure(
        section,
        "ledger_calls_per_user",
        "ledger events per deleted user (one PutObject each)",
        found["ledger_calls_per_deleted_user"],
    )
    report.figure(
        section,
        "purge_calls_per_user",
        "purge calls per purged user",
        found["purge_calls_per_purged_user"],
    )
    report.figure(
        section,
        "restore_s",
        f"restore of a user with {found['restore_files']} files",
        found["restore_s"],
        "s",
    )
    report.target(Target("archive_calls_per_deleted_user", per_user, 0.05, "at_most"))


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.perf_counter()
    host = machine.describe()
    print(f"machine: {machine.one_line(host)}", flush=True)
    print(f"options: {options}", flush=True)
    report = Report()
    timings: dict[str, float] = {}

    def timed(name: str, since: float) -> None:
        timings[name] = round(time.perf_counter() - since, 1)

    if "decode" in options.sections:
        since = time.perf_counter()
        decode_bench.run(report, options.decode_items)
        timed("decode", since)

    now = int(time.time() * 1000)
    needs_users = {"client", "e2e", "scan"} & set(options.sections)
    items, profiles = (
        world.build_users(options.users, now, options.delete_share, options.notify)
        if needs_users
        else ([], [])
    )
    if "client" in options.sections:
        since = time.perf_counter()
        client_items = (
            items[: options.client_items]
            if options.client_items <= len(items)
            else world.build_users(options.client_items, now, options.delete_share, 0)[0]
        )
        scan_bench.client_side(report, client_items, options.segments)
        timed("client", since)

    needs_moto = {"e2e", "scan", "emails"} & set(options.sections)
    saved_env = dict(os.environ)
    try:
        if needs_moto:
            with (
                moto_server() as endpoint,
                tempfile.TemporaryDirectory(prefix="cleanup-bench-") as tmp,
                recording() as recorder,
            ):
                os.environ.update(local_environment(endpoint))
                settings = load_settings()
                clients = make_clients(settings)
                provision(clients, settings)
                if {"e2e", "scan"} & set(options.sections):
                    since = time.perf_counter()
                    the_world = world.seed(
                        clients,
                        settings,
                        items,
                        profiles,
                        options.features,
                        now,
                        addresses_stored=options.addresses_stored,
                    )
                    timed("seed", since)
                    seeded = report.section("seed", f"Seeding moto ({options.users:,} users)")
                    report.figure(
                        seeded, "seed_s", "seeding time (batch writes)", timings["seed"], "s"
                    )
                    report.figure(seeded, "profiles", "profiles", dict(the_world.profiles))
                    since = time.perf_counter()
                    if "e2e" in options.sections:
                        end_to_end(
                            report, recorder, clients, settings, the_world, options, Path(tmp)
                        )
                    else:
                        scan_bench.moto_segments(
                            report,
                            settings.aws_region,
                            settings.users_table,
                            options.users,
                            options.segments,
                        )
                    timed("e2e_and_scan", since)
                if "emails" in options.sections:
                    since = time.perf_counter()
                    emails.run(report, settings, options.emails, options.rate)
                    timed("emails", since)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)

    if "launch" in options.sections:
        since = time.perf_counter()
        launch.run(report)
        timed("launch", since)
    if "recovery" in options.sections:
        since = time.perf_counter()
        recovery_section(report, 200)
        timed("recovery", since)

    total = machine.process_age_s() or time.perf_counter() - started
    summary = {
        "benchmark": "cleanup_pipeline",
        "machine": {**host, "load_average_at_end": machine.load_average()},
        "options": options.__dict__,
        "sections": report.sections,
        "targets": {t.name: t.as_dict() for t in report.targets},
        "section_wall_s": timings,
        "total_wall_s": round(total, 1),
    }
    print(
        f"\n== Targets: {sum(bool(t.met) for t in report.targets)} of "
        f"{len(report.targets)} met; total {total:.0f} s; load average now "
        f"{'/'.join(str(x) for x in machine.load_average())}",
        flush=True,
    )
    print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every server, pool and temporary directory is closed by now. Skipping the interpreter's
    # teardown saves about a minute at 100,000 users: it frees the emulator's in-memory tables
    # object by object.
    os._exit(status)

"""Section 1: decoding and classifying a large scan without any emulator.

The items are built exactly as the low-level client returns them for the job's projected Scan;
they are decoded once as one list (`decode_items`) and once page by page through the job's own
`scan_snapshot` (1 MB pages, then concatenated), then classified by `classify`.
"""

import gc
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pandas as pd
from botocore.hooks import HierarchicalEmitter

from bench.memory import MIB, max_rss_bytes, sampled_peak, traced_peak
from bench.output import Report, Target
from bench.wire_items import (
    EXPECTED,
    EXTRA_ATTRIBUTES,
    REALISTIC_MIX,
    Item,
    generate_users,
    item_size,
    pages_of,
)
from cleanup_pipeline.aws.users_table import scan_snapshot
from cleanup_pipeline.core.decisions import classify
from cleanup_pipeline.core.policy import Policy
from cleanup_pipeline.core.wire_decode import decode_items

MILLION = 1_000_000
# Bytes the attributes outside the projection add to each item (name, timeZone, country, ...).
EXTRA_ITEM_BYTES = 52


class PagesClient:
    """Stands in for the DynamoDB client inside `scan_snapshot`: segment s of n gets every
    n-th page, as produced by `page_source`."""

    def __init__(self, pages: list[Any], parse: Any = None) -> None:
        self.pages = pages
        self.parse = parse
        # The events botocore emits around a parse, so that the job's parse gate applies.
        self.meta = SimpleNamespace(events=HierarchicalEmitter())

    def get_paginator(self, operation: str) -> "PagesClient":
        assert operation == "scan"
        return self

    def paginate(self, *, Segment: int, TotalSegments: int, **_: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages[Segment::TotalSegments]:
            if self.parse is None:
                yield page
                continue
            self.meta.events.emit("before-parse.dynamodb.Scan")
            parsed = self.parse(page)
            self.meta.events.emit("response-received.dynamodb.Scan")
            yield parsed


def build_items(count: int, now: int) -> tuple[list[Item], list[str]]:
    users = generate_users(count, now, REALISTIC_MIX, seed=1)
    items: list[Item] = []
    profiles: list[str] = []
    for user in users:
        items.append(user.item)
        profiles.append(user.profile)
    return items, profiles


def run(report: Report, count: int, repeats: int = 3) -> dict[str, Any]:
    section = report.section("decode", f"1. Decoding + classification of {count:,} items (no AWS)")
    now = int(time.time() * 1000)
    started = time.perf_counter()
    items, profiles = build_items(count, now)
    sizes = [item_size(item) + EXTRA_ITEM_BYTES for item in items]
    pages = [{"Items": page, "Count": len(page)} for page in pages_of(items, sizes)]
    report.figure(section, "items", "items generated (wire format, projected)", count)
    report.figure(
        section,
        "generate_s",
        "time to generate them (not measured below)",
        time.perf_counter() - started,
        "s",
    )
    report.figure(section, "profiles", "distinct rule profiles in the mix", len(set(profiles)))
    report.figure(section, "scan_pages", "1 MB scan pages they fill", len(pages))
    report.note(f"attributes outside the projection, counted in page size: {EXTRA_ATTRIBUTES}")

    decode_runs, decode_cpu_runs = [], []
    snapshot = pd.DataFrame()
    for _ in range(repeats):
        del snapshot
        gc.collect()
        cpu, started = time.process_time(), time.perf_counter()
        snapshot = decode_items(items)
        decode_runs.append(time.perf_counter() - started)
        decode_cpu_runs.append(time.process_time() - cpu)
    decode_s = min(decode_runs)
    decode_cpu_s = min(decode_cpu_runs)
    report.figure(section, "decode_wall_s", "decode_items(all items), wall, best", decode_s, "s")
    report.figure(section, "decode_wall_runs_s", "  all runs", [round(x, 3) for x in decode_runs])
    report.figure(
        section, "decode_cpu_s", "decode_items(all items), process CPU, best", decode_cpu_s, "s"
    )
    report.figure(
        section, "decode_cpu_runs_s", "  all runs", [round(x, 3) for x in decode_cpu_runs]
    )
    report.figure(section, "decode_items_per_s", "  items/s", count / decode_s)
    del snapshot
    gc.collect()
    with sampled_peak() as decode_memory:  # an extra, untimed run: the sampler takes the GIL
        snapshot = decode_items(items)
    report.figure(
        section,
        "decode_rss_peak_mib",
        "  decode_items RSS peak above start (sampled every 2 ms)",
        decode_memory.rss_peak_delta / MIB,
        "MiB",
    )
    snapshot_bytes = int(snapshot.memory_usage(deep=True).sum())
    report.figure(section, "snapshot_mib", "snapshot DataFrame size", snapshot_bytes / MIB, "MiB")

    gc.collect()
    with sampled_peak() as paged_memory:
        cpu, started = time.process_time(), time.perf_counter()
        paged = scan_snapshot(PagesClient(pages), "users", segments=1)
        paged_s = time.perf_counter() - started
        paged_cpu_s = time.process_time() - cpu
    report.figure(
        section,
        "paged_decode_wall_s",
        "scan_snapshot page by page (1 segment, in-memory pages)",
        paged_s,
        "s",
    )
    report.figure(section, "paged_decode_cpu_s", "  same, process CPU", paged_cpu_s, "s")
    report.figure(
        section,
        "paged_decode_rss_peak_mib",
        "  RSS peak above start (sampled every 2 ms)",
        paged_memory.rss_peak_delta / MIB,
        "MiB",
    )
    assert len(paged) == count
    del paged

    classify_cpu, classify_wall = [], []
    decisions = pd.DataFrame()
    policy = Policy()
    for _ in range(3):
        del decisions
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        decisions = classify(snapshot, now, now, policy)
        classify_cpu.append(time.process_time() - cpu)
        classify_wall.append(time.perf_counter() - wall)
    cpu_s = min(classify_cpu)
    report.figure(section, "classify_cpu_s", "classify, process CPU time, best of 3", cpu_s, "s")
    report.figure(section, "classify_cpu_runs_s", "  all runs", [round(x, 3) for x in classify_cpu])
    report.figure(
        section,
        "classify_wall_s",
        "classify, wall, median of 3",
        statistics.median(classify_wall),
        "s",
    )

    del decisions
    gc.collect()
    with sampled_peak() as sampled:
        decisions = classify(snapshot, now, now, policy)
    del decisions
    gc.collect()
    with traced_peak() as traced:
        decisions = classify(snapshot, now, now, policy)
    combined = traced.peak + sampled.arrow_peak_delta
    report.figure(
        section,
        "classify_tracemalloc_peak_mib",
        "classify peak, tracemalloc (Python + numpy)",
        traced.peak / MIB,
        "MiB",
    )
    report.figure(
        section,
        "classify_arrow_peak_mib",
        "classify peak, Arrow pool above start (sampled)",
        sampled.arrow_peak_delta / MIB,
        "MiB",
    )
    report.figure(
        section,
        "classify_rss_peak_mib",
        "classify peak, RSS above start (sampled every 2 ms)",
        sampled.rss_peak_delta / MIB,
        "MiB",
    )
    peak = max(combined, sampled.rss_peak_delta)
    report.figure(
        section,
        "classify_peak_mib",
        "classify peak = max(tracemalloc + Arrow, RSS delta)",
        peak / MIB,
        "MiB",
    )
    report.figure(
        section,
        "process_max_rss_mib",
        "process peak RSS so far (getrusage; holds all raw items)",
        max_rss_bytes() / MIB,
        "MiB",
    )

    wrong = Counter(
        (profile, decision)
        for profile, decision in zip(profiles, decisions["decision"].astype(str), strict=True)
        if EXPECTED[profile] != decision
    )
    counts = decisions["decision"].value_counts().to_dict()
    report.figure(section, "decisions", "decisions", {k: int(v) for k, v in counts.items()})
    report.figure(
        section, "decisions_unexpected", "decisions differing from the profile", sum(wrong.values())
    )

    scale = MILLION / count
    note = "" if count == MILLION else f"scaled linearly from {count:,} items"
    report.target(Target("decode_1M_wall_s", decode_s * scale, 3.0, "max", note))
    # On a shared machine wall time includes waiting for a core; CPU time does not.
    report.target(Target("decode_1M_cpu_s", decode_cpu_s * scale, 3.0, "max", note))
    report.target(Target("classify_1M_cpu_s", cpu_s * scale, 1.0, "max", note))
    report.target(
        Target(
            "classify_1M_peak_mib",
            peak * scale / MIB,
            1024.0,
            "max",
            "; ".join(x for x in (note, "max of tracemalloc+Arrow and sampled RSS delta") if x),
        )
    )
    del items, pages, snapshot, decisions
    gc.collect()
    return section

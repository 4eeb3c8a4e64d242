"""Section 5: scan throughput by number of parallel scan segments.

5a runs the job's `scan_snapshot` against the moto server. moto serves every segment by walking
the whole table, and runs in this very process (same interpreter lock as the client), so it
cannot show what segments buy on DynamoDB. 5b therefore measures the client side alone: the
same pages as HTTP bodies, parsed by botocore's own response parser and decoded by the job's
decoder, in 1..n segment threads (the job's way), and in processes for comparison.
"""

import json
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.parsers import create_parser

from bench.decode_bench import PagesClient
from bench.output import Report
from bench.wire_items import Item, item_size, pages_of, project
from cleanup_pipeline.aws.clients import RETRY_CONFIG
from cleanup_pipeline.aws.users_table import scan_snapshot
from cleanup_pipeline.core.wire_decode import decode_items

JOB_READ_TIMEOUT_S = float(RETRY_CONFIG.read_timeout)
_BODIES: list[bytes] = []
_PARSERS: dict[str, Any] = {}


def _scan_parser() -> Any:
    if "scan" in _PARSERS:
        return _PARSERS["scan"]
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )
    shape = client.meta.service_model.operation_model("Scan").output_shape
    parser = create_parser("json")

    def parse(body: bytes) -> dict[str, Any]:
        return parser.parse({"body": body, "headers": {}, "status_code": 200}, shape)

    _PARSERS["scan"] = parse
    return parse


def _segment_rows(segment: int, total: int) -> tuple[int, float]:
    """Rows decoded by one segment's worker process, and the CPU time it took."""
    parse = _scan_parser()
    started = time.process_time()
    rows = sum(len(decode_items(parse(body)["Items"])) for body in _BODIES[segment::total])
    return rows, time.process_time() - started


def _warm_up(_: int) -> None:
    _scan_parser()
    time.sleep(0.2)  # keeps each worker busy, so that every worker gets one warm-up task


def _timed(fn: Any) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def client_side(
    report: Report, full_items: list[Item], segments: list[int], repeats: int = 2
) -> dict[str, Any]:
    """5b: parse + decode of the seeded table's pages, without the emulator."""
    section = report.section(
        "scan_client_side",
        f"5b. Client side of the scan ({len(full_items):,} items): botocore parse + decode_items",
    )
    report.note(f"each figure: best of {repeats} runs; CPU/wall = cores actually kept busy")
    count = len(full_items)
    pages = pages_of([project(i) for i in full_items], [item_size(i) for i in full_items])
    bodies = [
        json.dumps({"Items": p, "Count": len(p), "ScannedCount": len(p)}).encode() for p in pages
    ]
    _BODIES[:] = bodies
    parse = _scan_parser()
    report.figure(section, "pages", "1 MB pages (HTTP response bodies)", len(bodies))
    report.figure(section, "body_mib", "bytes on the wire", sum(map(len, bodies)) / 2**20, "MiB")

    parsed, parse_s, _ = _timed(lambda: [parse(b) for b in bodies])
    _, decode_s, _ = _timed(lambda: [decode_items(p["Items"]) for p in parsed])
    parsed.clear()
    report.figure(
        section, "parse_us_per_item", "botocore parse, 1 thread", parse_s / count * 1e6, "µs/item"
    )
    report.figure(
        section, "decode_us_per_item", "decode_items, 1 thread", decode_s / count * 1e6, "µs/item"
    )
    report.figure(
        section, "parse_share", "parse share of client-side time", parse_s / (parse_s + decode_s)
    )

    threads: dict[str, Any] = {}
    base = None
    for n in segments:
        runs = [
            _timed(lambda n=n: len(scan_snapshot(PagesClient(bodies, parse), "t", n)))
            for _ in range(repeats)
        ]
        rows, wall, cpu = min(runs, key=lambda r: r[1])
        assert rows == count
        base = base or count / wall
        threads[str(n)] = {
            "items_per_s": count / wall,
            "speedup": count / wall / base,
            "cpu_per_wall": cpu / wall,
        }
        report.note(
            f"threads, {n} segment(s): {count / wall:>9,.0f} items/s, "
            f"x{count / wall / base:.2f} vs 1, CPU/wall {cpu / wall:.2f}"
        )
    section["threads"] = threads

    processes: dict[str, Any] = {}
    context = multiprocessing.get_context("fork")
    for n in segments:
        with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
            list(pool.map(_warm_up, range(n)))  # workers started, parser built, before timing
            runs = []
            for _ in range(repeats):
                started = time.perf_counter()
                parts = list(pool.map(_segment_rows, range(n), [n] * n))
                runs.append((time.perf_counter() - started, sum(cpu for _, cpu in parts)))
                assert sum(rows for rows, _ in parts) == count
            wall, cpu = min(runs)
        processes[str(n)] = {
            "items_per_s": count / wall,
            "speedup": count / wall / base,
            "cpu_per_wall": cpu / wall,
        }
        report.note(
            f"processes, {n} segment(s): {count / wall:>9,.0f} items/s, "
            f"x{count / wall / base:.2f} vs 1 thread, CPU/wall {cpu / wall:.2f}"
        )
    section["processes"] = processes
    _BODIES.clear()
    best_thread = max(v["speedup"] for v in threads.values())
    best_process = max(v["speedup"] for v in processes.values())
    report.figure(section, "best_thread_speedup", "best speed-up with threads", best_thread)
    report.figure(section, "best_process_speedup", "best speed-up with processes", best_process)
    return section


def moto_segments(
    report: Report, region: str | None, table: str, users: int, segments: list[int]
) -> dict[str, Any]:
    """5a: the job's parallel scan against the moto server, per number of segments.

    The client has the job's retry settings but a 10-minute read timeout: moto answers a page
    of one of n concurrent segments n times slower, and the job's read timeout is measured
    separately (`read_timeouts`)."""
    section = report.section("scan_moto", f"5a. scan_snapshot against moto ({users:,} items)")
    report.note("moto serves each page by walking the table from its start (every segment too);")
    report.note("it runs in this process: client and server share one interpreter lock;")
    report.note(
        f"the job's client gives up on a page after {JOB_READ_TIMEOUT_S:g} s (read timeout)"
    )
    counts = {"pages": 0, "attempts": 0}
    slowest = [0.0]
    local = threading.local()

    def count(key: str) -> Any:
        def handler(**_: Any) -> None:
            counts[key] += 1
            local.started = time.perf_counter()

        return handler

    def answered(**_: Any) -> None:
        slowest[0] = max(slowest[0], time.perf_counter() - local.started)

    client = boto3.Session().client(
        "dynamodb", region_name=region, config=RETRY_CONFIG.merge(Config(read_timeout=600))
    )
    client.meta.events.register("before-call.dynamodb.Scan", count("pages"))
    client.meta.events.register("before-send.dynamodb.Scan", count("attempts"))
    client.meta.events.register("after-call.dynamodb.Scan", answered)
    results: dict[str, Any] = {}
    base = None
    for n in segments:
        counts.update(pages=0, attempts=0)
        slowest[0] = 0.0
        try:
            rows, wall, cpu = _timed(lambda n=n: len(scan_snapshot(client, table, segments=n)))
        except Exception as error:  # a failed point is a figure too; the others still run
            results[str(n)] = {"error": f"{type(error).__name__}: {error}", **counts}
            report.note(f"{n} segment(s): failed, {type(error).__name__}: {error}")
            continue
        assert rows == users, (rows, users)
        base = base or users / wall
        results[str(n)] = {
            "items_per_s": users / wall,
            "speedup": users / wall / base,
            "wall_s": wall,
            "cpu_per_wall": cpu / wall,
            "pages": counts["pages"],
            "retries": counts["attempts"] - counts["pages"],
            "slowest_page_s": slowest[0],
        }
        report.note(
            f"{n} segment(s): {users / wall:>8,.0f} items/s, x{users / wall / base:.2f} vs 1, "
            f"{wall:.1f} s, {counts['pages']} pages, slowest page {slowest[0]:.1f} s"
            + (" (over the job's timeout)" if slowest[0] > JOB_READ_TIMEOUT_S else "")
            + f", CPU/wall {cpu / wall:.2f}"
        )
    section["segments"] = results
    return section

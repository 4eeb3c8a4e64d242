"""Peak memory of a whole process tree: the job's process and every process it starts.

The job is run as its own console command (`cleanup-pipeline run`), as in production, so that
the benchmark's process (the moto server, the seeded world) is not counted. A thread samples the
resident set size of the command's process and all its descendants from `/proc` (psutil is not
a dependency) and keeps the largest sum.
"""

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process visible in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) may hold spaces: the parent pid is 2nd after the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def tree_rss(root: int) -> dict[int, tuple[str, int]]:
    """pid -> (command name, resident set size) of `root` and all its descendants."""
    tree = _children()
    found: dict[int, tuple[str, int]] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        found[pid] = (name, rss)
        pending.extend(tree.get(pid, []))
    return found


@dataclass
class TreeRun:
    returncode: int
    wall_s: float
    peak_bytes: int  # largest sum over the tree (shared pages counted in each process)
    peak_at_s: float  # when, from the start
    peak_tree: list[tuple[str, int]]  # (command name, RSS) of each process at that moment
    samples: int
    deleted: int = 0  # filled in by the caller from the command's output


def run_sampled(
    command: list[str], env: dict[str, str], log: Path, interval: float = 0.05
) -> TreeRun:
    """Run `command` to its end, sampling its process tree's RSS every `interval` seconds."""
    peak, peak_at, peak_tree, samples = 0, 0.0, [], 0
    with log.open("w") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak, peak_at, peak_tree, samples
            while not stop.is_set():
                tree = tree_rss(process.pid)
                total = sum(rss for _, rss in tree.values())
                if total > peak:
                    peak, peak_at = total, time.perf_counter() - started
                    peak_tree = sorted(tree.values(), key=lambda p: -p[1])
                samples += 1
                stop.wait(interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        returncode = process.wait()
        wall = time.perf_counter() - started
        stop.set()
        thread.join()
    return TreeRun(returncode, wall, peak, peak_at, peak_tree, samples)

"""Peak memory of a whole process tree: the job's process and every process it starts.

The job is run as its own console command (`cleanup-pipeline run`), as in production, so that
the benchmark's process (the moto server, the seeded world) is not counted. A thread samples the
resident set size of the command's process and all its descendants from `/proc` (psutil is not
a dependency) and keeps the largest sum.
"""

import ctypes
import functools
import os
import platform
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


@dataclass(frozen=True)
class Process:
    name: str  # command name
    rss: int  # resident set size, bytes
    anon: int  # of which anonymous memory (not pages of files), bytes


# kcmp(2), which tells whether two processes share one address space; its number by machine.
_SYS_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine())
_KCMP_VM = 1


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _same_address_space(pid: int, other: int) -> bool:
    """Whether two processes run in one address space: a child between `vfork` and `exec`, as
    Python's subprocess starts a command, runs in its parent's. False where kcmp is unknown."""
    return _SYS_KCMP is not None and _libc().syscall(_SYS_KCMP, pid, other, _KCMP_VM, 0, 0) == 0


def tree_rss(root: int) -> dict[int, Process]:
    """pid -> its process, for `root` and all its descendants; a child that still runs in its
    parent's address space (see above) reports its parent's memory and is left out."""
    tree = _children()
    found: dict[int, Process] = {}
    pending = [(root, root)]
    while pending:
        pid, parent = pending.pop()
        if pid != parent and _same_address_space(pid, parent):
            continue
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            statm = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:
            continue  # gone meanwhile
        # statm: size resident shared ..., in pages; shared = pages backed by files.
        resident, shared = int(statm[1]) * _PAGE, int(statm[2]) * _PAGE
        found[pid] = Process(name, resident, resident - shared)
        pending.extend((child, pid) for child in tree.get(pid, []))
    return found


@dataclass
class TreeRun:
    returncode: int
    wall_s: float
    peak_bytes: int  # largest sum over the tree (shared pages counted in each process)
    peak_at_s: float  # when, from the start
    peak_tree: list[Process]  # each process at that moment, largest first
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
                total = sum(member.rss for member in tree.values())
                if total > peak:
                    peak, peak_at = total, time.perf_counter() - started
                    peak_tree = sorted(tree.values(), key=lambda member: -member.rss)
                samples += 1
                stop.wait(interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        returncode = process.wait()
        wall = time.perf_counter() - started
        stop.set()
        thread.join()
    return TreeRun(returncode, wall, peak, peak_at, peak_tree, samples)

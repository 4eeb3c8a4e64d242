"""What the benchmark counts: AWS calls, and the memory of a block or of a process tree.

Calls are counted by a botocore `before-parameter-build` hook on every client created in this
process: once per API call (each page of a paginator is one), retries not counted, each with the
table(s) or bucket it names. Memory of a process tree is
read from `/proc` (psutil is not a dependency).
"""

import ctypes
import functools
import os
import platform
import subprocess
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3.session
import pyarrow as pa

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
MB = 1000 * 1000  # the unit of the targets


@dataclass(frozen=True)
class Call:
    at: float  # time.time()
    name: str  # service:Operation
    label: str
    target: str = ""  # the table(s) or bucket the call names


def _target(params: dict[str, Any]) -> str:
    if "TableName" in params:
        return str(params["TableName"])
    if "Bucket" in params:
        return str(params["Bucket"])
    many = params.get("RequestItems") or params.get("TransactItems")
    if isinstance(many, dict):
        return "+".join(sorted(many))
    return ""


@dataclass
class CallRecorder:
    calls: list[Call] = field(default_factory=list)
    label: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _on_call(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        call = Call(time.time(), f"{service}:{operation}", self.label, _target(params))
        with self._lock:
            self.calls.append(call)

    def hook(self, client: Any) -> None:
        # Built once per API call (each page of a paginator is one); a retry is not built again.
        client.meta.events.register(
            "before-parameter-build", self._on_call, unique_id=f"bench-{id(self)}"
        )

    def reset(self) -> None:
        with self._lock:
            self.calls = []

    def count(self, predicate: Callable[[Call], bool] = lambda _: True) -> Counter[str]:
        return Counter(c.name for c in self.calls if predicate(c))


@contextmanager
def recording() -> Iterator[CallRecorder]:
    """Hook every boto3 client created while the block runs: the job's (`boto3.Session().client`)
    and the original design's (`boto3.client`, and `boto3.resource`, which builds its client
    through `Session.client`)."""
    recorder, original = CallRecorder(), boto3.session.Session.client

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        created = original(self, *args, **kwargs)
        recorder.hook(created)
        return created

    boto3.session.Session.client = client  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        boto3.session.Session.client = original  # type: ignore[method-assign]


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


@dataclass
class PeakGrowth:
    rss: int = 0  # largest increase of this process's resident set size
    arrow: int = 0  # of Arrow's allocated bytes, which tracemalloc does not see
    traced: int = 0  # tracemalloc's peak: Python objects and numpy buffers


@contextmanager
def peak_growth(traced: bool = False, interval: float = 0.002) -> Iterator[PeakGrowth]:
    """Peaks above their values at entry: RSS and Arrow's pool, sampled by a thread (which takes
    the interpreter lock: time nothing inside); or, `traced`, tracemalloc's alone, whose own
    memory would count in RSS."""
    found, stop = PeakGrowth(), threading.Event()
    rss0, arrow0 = rss_bytes(), pa.total_allocated_bytes()

    def sample() -> None:
        while not traced:
            found.rss = max(found.rss, rss_bytes() - rss0)
            found.arrow = max(found.arrow, pa.total_allocated_bytes() - arrow0)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=sample, daemon=True)
    if traced:
        tracemalloc.start()
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join()
        if traced:
            found.traced = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()


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
        resident, shared = int(statm[1]) * PAGE, int(statm[2]) * PAGE
        found[pid] = Process(name, resident, resident - shared)
        pending.extend((child, pid) for child in tree.get(pid, []))
    return found


@dataclass
class TreeRun:
    returncode: int
    wall_s: float
    peak_bytes: int  # largest sum over the tree (shared pages counted in each process)
    peak_tree: list[Process]  # each process at that moment, largest first


def run_sampled(
    command: list[str], env: dict[str, str], log: Path, interval: float = 0.05
) -> TreeRun:
    """Run `command` to its end, sampling its process tree's RSS every `interval` seconds."""
    peak, peak_tree = 0, []
    with log.open("w") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak, peak_tree
            while not stop.is_set():
                tree = tree_rss(process.pid)
                total = sum(member.rss for member in tree.values())
                if total > peak:
                    peak, peak_tree = total, sorted(tree.values(), key=lambda p: -p.rss)
                stop.wait(interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        returncode = process.wait()
        wall = time.perf_counter() - started
        stop.set()
        thread.join()
    return TreeRun(returncode, wall, peak, peak_tree)

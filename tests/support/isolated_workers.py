"""Step processes that share nothing on disk: each starts in an empty working and temporary
directory of its own, as a step in a container of its own would.

`isolated(monkeypatch)` writes a `sitecustomize.py` on a PYTHONPATH given only to the processes
of the run: when `CLEANUP_TEST_ISOLATION_LOG` is set, every interpreter that starts, and every
process forked from one (the multiprocess executor's forkserver forks each step), moves to a
fresh directory under a root of its own, points `TMPDIR` at an empty folder inside it and
records (pid, cwd, tmp) in the log.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ISOLATION_LOG = "CLEANUP_TEST_ISOLATION_LOG"

SITECUSTOMIZE = """
import json
import os
import tempfile


def _own_directories() -> None:
    home = tempfile.mkdtemp(prefix="w", dir=os.environ["ISOLATION_ROOT"])
    os.chdir(home)
    os.mkdir("tmp")
    os.environ["TMPDIR"] = os.path.join(home, "tmp")
    tempfile.tempdir = None  # read TMPDIR again
    record = {"pid": os.getpid(), "cwd": os.getcwd(), "tmp": tempfile.gettempdir()}
    with open(os.environ["ISOLATION_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\\n")


if os.environ.get("ISOLATION_LOG"):
    _own_directories()
    os.register_at_fork(after_in_child=_own_directories)
""".replace("ISOLATION_LOG", ISOLATION_LOG).replace("ISOLATION_ROOT", "CLEANUP_TEST_ISOLATION_ROOT")


@dataclass(frozen=True)
class Workers:
    log: Path

    def directories(self) -> dict[int, tuple[str, str]]:
        """pid -> (working directory, temporary directory) of every process that started."""
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        records = [json.loads(line) for line in lines]
        return {r["pid"]: (r["cwd"], r["tmp"]) for r in records}


@contextmanager
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    """Every process started with this environment in directories of its own, under a short
    root: the forkserver's socket lives in the temporary directory, and a socket path may not
    exceed 107 bytes."""
    root = Path(tempfile.mkdtemp(prefix="iso", dir="/tmp"))
    try:
        yield _isolate(monkeypatch, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _isolate(monkeypatch: pytest.MonkeyPatch, root: Path) -> Workers:
    site, workers = root / "site", root / "w"
    site.mkdir()
    workers.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("CLEANUP_TEST_ISOLATION_ROOT", str(workers))
    monkeypatch.setenv(ISOLATION_LOG, str(root / "workers.jsonl"))
    return Workers(root / "workers.jsonl")

"""The operator's local stack for the browser test: `dagster dev` as the quick start runs it,
on a free loopback port, stopped with its whole process group."""

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.cli.local_stack import start_ui, stop_ui
from cleanup_pipeline.local.demo_data import DemoSummary


@dataclass(frozen=True)
class Stack:
    """The UI's address, the emulated AWS behind it, what was seeded and where reports go."""

    url: str
    clients: AwsClients
    demo: DemoSummary
    reports: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Until the webserver answers; fails early if `dagster dev` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode} before serving")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/server_info", timeout=5).ok:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the Dagster UI did not answer at {url} within {timeout:.0f} s")


@contextlib.contextmanager
def dagster_ui(start_timeout: float = 240) -> Iterator[str]:
    """Serve the UI of `DAGSTER_HOME` (in this process's environment) and yield its URL; on
    exit every process of the stack is gone and the port is free again."""
    port = free_port()
    process = start_ui(port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, start_timeout)
        yield url
    finally:
        stop_ui(process)
        assert process.poll() is not None
        with pytest.raises(ProcessLookupError):  # nothing left of its process group
            os.killpg(process.pid, 0)
        assert not listening(port), f"port {port} still answers after the UI was stopped"

"""The operator's local stack for the browser test: `dg dev` as the quick start runs it,
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


LOCATIONS_QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename } } } } }"
)


def _locations_loaded(url: str) -> bool:
    """Whether the webserver answers and every code location has loaded without error."""
    with contextlib.suppress(requests.RequestException, ValueError):
        answer = requests.post(f"{url}/graphql", json={"query": LOCATIONS_QUERY}, timeout=10)
        entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            errors = [
                e for e in entries if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
            ]
            if errors:
                raise RuntimeError(f"code location failed to load: {errors}")
            return True
    return False


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Until the UI answers with the job's code loaded; fails early if `dg dev` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dg dev exited with {process.returncode} before serving")
        if _locations_loaded(url):
            return
        time.sleep(0.5)
    raise TimeoutError(f"the Dagster UI did not serve the job at {url} within {timeout:.0f} s")


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

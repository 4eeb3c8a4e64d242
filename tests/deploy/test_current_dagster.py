"""The definitions use only current Dagster APIs and commands: loaded in a fresh interpreter
with Dagster's deprecation, supersession, preview and beta warnings raised as errors, checked
by `dg check defs`, and served by `dg dev` as the quick start starts it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cleanup_pipeline.cli.extras import dg_command
from cleanup_pipeline.cli.local_stack import start_ui, stop_ui
from tests.support.ui_stack import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter: the decorators warn once, when the modules are first imported.
LOAD_WITH_WARNINGS_AS_ERRORS = """
import warnings

import dagster as dg
from pydantic.warnings import PydanticDeprecatedSince20

for category in (DeprecationWarning, dg.SupersessionWarning, dg.PreviewWarning, dg.BetaWarning):
    warnings.simplefilter("error", category)
# Dagster's own model layer reads pydantic's `__fields__`: not an API this project calls.
warnings.filterwarnings("ignore", category=PydanticDeprecatedSince20, module="dagster_shared")

from cleanup_pipeline.definitions import defs

dg.Definitions.validate_loadable(defs)
job = defs.resolve_job_def("inactive_accounts_cleanup")
schedule = defs.resolve_schedule_def("daily_cleanup_schedule")
graph = defs.resolve_asset_graph()
assets = [defs.resolve_assets_def(key) for key in graph.get_all_asset_keys()]
checks = sorted(key.name for key in graph.asset_check_keys)
# `compute_kind` is superseded by `kinds` without any runtime warning: it shows as this tag.
legacy = sorted(
    node.name for node in job.all_node_defs if "dagster/compute_kind" in (node.tags or {})
)
print(job.name, schedule.name, len(assets), len(checks), "legacy:", legacy)
"""


def _dagster_home(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "DAGSTER_HOME": str(home)}


def test_definitions_load_with_dagster_warnings_as_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITH_WARNINGS_AS_ERRORS],
        capture_output=True,
        text=True,
        timeout=300,
        env=_dagster_home(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "inactive_accounts_cleanup",
        "daily_cleanup_schedule",
        "10",
        "9",
        "legacy:",
        "[]",
    ]


def test_dg_check_defs_loads_the_project(tmp_path: Path) -> None:
    done = subprocess.run(
        [dg_command(), "check", "defs"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=_dagster_home(tmp_path),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully." in done.stdout


def test_the_quick_start_serves_the_ui_with_dg_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _dagster_home(tmp_path).items():
        monkeypatch.setenv(key, value)
    port = free_port()
    process = start_ui(port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process, timeout=240)
        info = requests.get(f"{url}/server_info", timeout=10).json()
        assert info["dagster_version"] == "1.13.27"
        jobs = requests.post(
            f"{url}/graphql",
            json={
                "query": "{ repositoriesOrError { ... on RepositoryConnection "
                "{ nodes { jobs { name } } } } }"
            },
            timeout=10,
        ).json()["data"]["repositoriesOrError"]["nodes"]
        assert "inactive_accounts_cleanup" in {job["name"] for repo in jobs for job in repo["jobs"]}
    finally:
        stop_ui(process)
    with pytest.raises(ProcessLookupError):  # nothing left of its process group
        os.killpg(process.pid, 0)

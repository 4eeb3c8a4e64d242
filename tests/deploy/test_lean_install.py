"""A production install has no moto: the definitions and `cleanup-pipeline run` never import
it, and the commands that need it name the extra to install. Each case runs in a fresh
interpreter where importing moto fails as it does when moto is not installed."""

import json
import os
import subprocess
import sys

import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.provision import provision
from tests.support.world import AS_OF_ISO, DELETED, NOTIFIED, seed_world

WITHOUT_MOTO = """
import runpy
import sys


class NoMoto:
    \"\"\"Finds moto nowhere, like an environment that never installed it.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "moto" or name.startswith("moto."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoMoto())
"""

CLI = "runpy.run_module('cleanup_pipeline.cli.main', run_name='__main__')"


def without_moto(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_MOTO + code, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )


def test_the_blocker_hides_moto() -> None:
    done = without_moto("import moto")
    assert done.returncode == 1 and "No module named 'moto'" in done.stderr


def test_definitions_load_without_moto() -> None:
    done = without_moto(
        "from cleanup_pipeline.definitions import defs\n"
        "job = defs.resolve_job_def('inactive_accounts_cleanup')\n"
        "print(job.name, 'moto' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["inactive_accounts_cleanup", "False"]


@pytest.mark.parametrize("args", [["local", "--no-ui"], ["local", "--users", "10"]])
def test_local_without_moto_names_the_extra(args: list[str]) -> None:
    done = without_moto(CLI, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: `cleanup-pipeline local` needs the local AWS emulator (no module named "
        "'moto'): pip install 'cleanup_pipeline[local]'"
    ]


def test_seed_demo_without_an_emulator_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    done = without_moto(CLI, "seed-demo", "--users", "10")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: seed-demo writes only to a local emulator: set AWS_ENDPOINT_URL to "
        "http://127.0.0.1:<port>; to run one here: pip install 'cleanup_pipeline[local]'"
    ]


@pytest.mark.e2e
def test_run_without_moto_against_an_emulator_elsewhere(server: str) -> None:
    """The emulator runs in the test's process; the run, in one that cannot import moto."""
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seed_world(clients, settings)

    done = without_moto(CLI, "run", "--as-of", AS_OF_ISO, "--dry-run")

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "success" and summary["dry_run"] is True
    assert summary["counts"]["notify"] == len(NOTIFIED)
    assert summary["counts"]["delete"] == len(DELETED)

"""Loading the instance files of deploy/ the way the daemon and the webserver load them."""

import shutil
from pathlib import Path

import dagster as dg

DEPLOY = Path(__file__).parents[2] / "deploy"
ONE_RUN_OF_THE_JOB = {
    "key": "cleanup_pipeline/job",
    "value": "inactive_accounts_cleanup",
    "limit": 1,
}


def dagster_home(name: str, home: Path) -> Path:
    """`home` as a DAGSTER_HOME holding deploy/<name> as its dagster.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEPLOY / name, home / "dagster.yaml")
    return home


def load_instance(name: str, home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(dagster_home(name, home)))

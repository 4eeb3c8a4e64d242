"""Loading the instance files of deploy/ the way the daemon and the webserver load them."""

import shutil
from pathlib import Path

import dagster as dg
from dagster._core.instance.config import PoolGranularity

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


def assert_one_run_and_one_send_slot(instance: dg.DagsterInstance) -> None:
    """The queue runs one run of the job at a time (ten runs in all), and the warnings step of
    every run shares one pool slot, claimed by the step itself."""
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.tag_concurrency_limits == [ONE_RUN_OF_THE_JOB]
    assert queue.max_concurrent_runs == 10
    pools = instance.get_concurrency_config().pool_config
    assert (pools.pool_granularity, pools.default_pool_limit) == (PoolGranularity.OP, 1)

"""The I/O manager of the values that flow between steps: a folder of the machine running the
run, or, with `CLEANUP_STEP_OUTPUTS_S3_URI`, S3, where steps on other workers find them."""

import dagster as dg
from dagster._utils.cached_method import cached_method
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from pydantic import PrivateAttr

from cleanup_pipeline.core.step_storage import step_storage_from_env


class RunScopedS3PickleIOManager(S3PickleIOManager):
    """dagster-aws's S3 pickle I/O manager, with every key under `<prefix>/<root run id>/`.

    The plain one stores an asset's value at `<prefix>/<asset key>` for every run, so two runs
    at once (CLI runs bypass the run queue) would overwrite each other's values. Keyed by the
    root run, each run has its own, and a re-execution (same root) reads those of the run it
    re-executes; op outputs (the deletion batches) also carry the producing run's id.
    """

    _run_prefix: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.run
        if run is not None:
            self._run_prefix = f"{self.s3_prefix}/{run.root_run_id or run.run_id}"

    @cached_method
    def inner_io_manager(self) -> PickledObjectS3IOManager:
        return PickledObjectS3IOManager(
            s3_bucket=self.s3_bucket,
            s3_session=self.s3_resource.get_client(),
            s3_prefix=self._run_prefix or self.s3_prefix,
        )


def step_io_manager() -> dg.ConfigurableIOManager:
    """The I/O manager the environment asks for; a malformed location fails the code load,
    naming the variable, before any run can start."""
    storage = step_storage_from_env()
    if storage is None:
        # Explicit so that a launcher can give a run its own folder (see cli/main.py).
        return dg.FilesystemIOManager()
    # Credentials, region and an `AWS_ENDPOINT_URL*` endpoint come from boto3's environment.
    return RunScopedS3PickleIOManager(
        s3_resource=S3Resource(max_attempts=8),
        s3_bucket=storage.bucket,
        s3_prefix=storage.prefix,
    )

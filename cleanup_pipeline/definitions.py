"""Everything Dagster loads: `workspace.yaml` points here."""

import dagster as dg

from cleanup_pipeline.orchestration import actions, guards, inputs, reports, requests, sensors
from cleanup_pipeline.orchestration.jobs import (
    JOB_NAME,
    daily_cleanup_schedule,
    inactive_accounts_cleanup,
    manage_hold,
    restore_account,
    step_io_manager,
)
from cleanup_pipeline.orchestration.requests import request_erase, request_export, request_list
from cleanup_pipeline.orchestration.resources import (
    AwsEnvironment,
    CleanupPolicy,
    ReportsS3Resource,
    RunOptions,
)

_modules = [inputs, requests, guards, actions, reports]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(_modules),
    asset_checks=dg.load_asset_checks_from_modules(_modules),
    jobs=[
        inactive_accounts_cleanup,
        restore_account,
        manage_hold,
        request_erase,
        request_list,
        request_export,
    ],
    schedules=[daily_cleanup_schedule],
    sensors=sensors.sensors,
    resources={
        "aws": AwsEnvironment(),
        "cleanup_policy": CleanupPolicy(),
        "run_options": RunOptions(),
        # Reports on S3 (`CLEANUP_REPORTS_DIR=s3://...`); like every client of the job, it finds
        # credentials, region and `AWS_ENDPOINT_URL*` endpoints through boto3's own environment.
        "reports_s3": ReportsS3Resource(max_attempts=8),
        "io_manager": step_io_manager(),
    },
)


def cleanup_job() -> dg.JobDefinition:
    """The cleanup job with its resources, from a module-level function: what
    `dg.reconstructable` needs to rebuild it in the processes of its steps."""
    return defs.resolve_job_def(JOB_NAME)

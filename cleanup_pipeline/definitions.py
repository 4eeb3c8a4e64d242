"""Everything Dagster loads: `workspace.yaml` points here."""

import dagster as dg

from cleanup_pipeline.orchestration import (
    alert_sensors,
    decision_assets,
    deletion_asset,
    guard_checks,
    holds_asset,
    purge_asset,
    report_assets,
    retention_asset,
    snapshot_assets,
    warning_asset,
)
from cleanup_pipeline.orchestration.hold_job import manage_hold
from cleanup_pipeline.orchestration.job import daily_cleanup_schedule, inactive_accounts_cleanup
from cleanup_pipeline.orchestration.reports_s3 import ReportsS3Resource
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.restore_job import restore_account
from cleanup_pipeline.orchestration.step_outputs import step_io_manager

_modules = [
    snapshot_assets,
    holds_asset,
    decision_assets,
    guard_checks,
    warning_asset,
    deletion_asset,
    purge_asset,
    report_assets,
    retention_asset,
]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(_modules),
    asset_checks=dg.load_asset_checks_from_modules(_modules),
    jobs=[inactive_accounts_cleanup, restore_account, manage_hold],
    schedules=[daily_cleanup_schedule],
    sensors=alert_sensors.sensors,
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

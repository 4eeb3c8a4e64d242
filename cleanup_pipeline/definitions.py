"""Everything Dagster loads: `workspace.yaml` points here."""

import dagster as dg

from cleanup_pipeline.orchestration import (
    decision_assets,
    deletion_asset,
    report_assets,
    snapshot_assets,
    warning_asset,
)
from cleanup_pipeline.orchestration.job import daily_cleanup_schedule, inactive_accounts_cleanup
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions

_modules = [snapshot_assets, decision_assets, warning_asset, deletion_asset, report_assets]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(_modules),
    asset_checks=dg.load_asset_checks_from_modules(_modules),
    jobs=[inactive_accounts_cleanup],
    schedules=[daily_cleanup_schedule],
    resources={
        "aws": AwsEnvironment(),
        "cleanup_policy": CleanupPolicy(),
        "run_options": RunOptions(),
        # Explicit so that a launcher can give a run its own folder (see cli/main.py).
        "io_manager": dg.FilesystemIOManager(),
    },
)

"""Running the real job in process with the test's resources, and reading a run's results."""

from typing import Any

import dagster as dg
import pandas as pd
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.jobs import (
    JOB_NAME,
    RESTORE_JOB,
    inactive_accounts_cleanup,
    run_config_for,
)
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions
from tests.support.recording import (
    RecordingAwsEnvironment,
    ServiceRecordingAwsEnvironment,
    ServiceRecordingS3Resource,
)
from tests.support.world import AS_OF_ISO


def execute_job(
    run_config: dict[str, Any] | None = None,
    *,
    aws: AwsEnvironment | None = None,
    policy: CleanupPolicy | None = None,
    run_options: RunOptions | None = None,
    reports_s3: S3Resource | None = None,
    io_manager: dg.ConfigurableIOManager | None = None,
    instance: dg.DagsterInstance | None = None,
    selection: list[str] | None = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    """One run of `inactive_accounts_cleanup` (at the seeded world's `as_of` unless `run_config`
    says otherwise), its AWS calls recorded; the package's resources serve where none is given.
    `selection` runs only those assets."""
    resources: dict[str, Any] = {
        **defs.resources,
        "aws": aws or RecordingAwsEnvironment(),
        "cleanup_policy": policy or CleanupPolicy(send_rate_per_second=200),
        "run_options": run_options or RunOptions(),
    }
    if reports_s3 is not None:
        resources["reports_s3"] = reports_s3
    if io_manager is not None:
        resources["io_manager"] = io_manager
    # The same assets, checks and job, bound to the test's resources (a subset selection
    # refuses resources passed at execution time).
    bound = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[inactive_accounts_cleanup],
        resources=resources,
    )
    return bound.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config_for(AS_OF_ISO) if run_config is None else run_config,
        instance=instance or dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(name) for name in selection] if selection else None,
        raise_on_error=raise_on_error,
    )


def materialized(result: dg.ExecuteInProcessResult, asset: str = "cleanup_report") -> bool:
    return any(e.asset_key.path == [asset] for e in result.get_asset_materialization_events())


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The metadata entries of the asset's last materialization in the run."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    assert events, f"{asset} was not materialized"
    return dict(events[-1].materialization.metadata)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The metadata values of the asset's last materialization in the run."""
    return {key: value.value for key, value in materialization(result, asset).items()}


def read_report(result: dg.ExecuteInProcessResult, asset: str = "cleanup_report") -> pd.DataFrame:
    return pd.read_parquet(metadata(result, asset)["path"])


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def evaluation(result: dg.ExecuteInProcessResult, check: str) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == check)


def failed_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    return [event.step_key for event in result.all_events if event.is_step_failure]


def run_with_service_recording(
    instance: dg.DagsterInstance | None = None,
    policy: CleanupPolicy | None = None,
    io_manager: dg.ConfigurableIOManager | None = None,
    **options: Any,
) -> dg.ExecuteInProcessResult:
    """One run at the seeded world's `as_of`, every AWS call (the reports' S3 client's too)
    recorded with its service and region in `recording.SERVICE_CALLS`; step outputs through
    `io_manager` when given."""
    return execute_job(
        run_config_for(AS_OF_ISO, **options),
        aws=ServiceRecordingAwsEnvironment(),
        policy=policy or CleanupPolicy(send_rate_per_second=500),
        reports_s3=ServiceRecordingS3Resource(),
        io_manager=io_manager,
        instance=instance,
    )


def execute_restore(
    user_id: str, dry_run: bool = False, aws: AwsEnvironment | None = None
) -> dg.ExecuteInProcessResult:
    """One run of the `restore_account` job for `user_id`, its AWS calls recorded."""
    return defs.resolve_job_def(RESTORE_JOB).execute_in_process(
        run_config={
            "ops": {"restore_deleted_account": {"config": {"user_id": user_id, "dry_run": dry_run}}}
        },
        resources={"aws": aws or RecordingAwsEnvironment()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def restore_with_service_recording(user_id: str) -> dg.ExecuteInProcessResult:
    """`restore_account` for `user_id`, every AWS call recorded with its service and region."""
    return execute_restore(user_id, aws=ServiceRecordingAwsEnvironment())


def error_messages(error: Any) -> str:
    """The messages of an error and of everything that caused it."""
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause or error.context
    return " | ".join(parts)

"""The jobs, their schedule and how a run executes: the cleanup job over the assets of the
`cleanup` group, the restore and hold jobs, the executor chosen per run, the I/O manager of the
values passed between steps, the step retry policy, and `run_job`, which launches the cleanup
job from the command line."""

import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import pandas as pd
from dagster._core.definitions.executor_definition import ExecutorRequirement
from dagster._core.executor.base import Executor
from dagster._utils.cached_method import cached_method
from dagster_aws.ecs import ecs_executor
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from pydantic import Field, PrivateAttr

from cleanup_pipeline.actions.restore import RestoreContext, restore_user
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.aws.clients import shared_clients
from cleanup_pipeline.aws.holds_table import delete_hold, put_hold
from cleanup_pipeline.aws.reports import is_s3, read_report
from cleanup_pipeline.aws.stores import checked_data_map
from cleanup_pipeline.core.as_of import format_ms, now_ms, parse_as_of
from cleanup_pipeline.core.data_map import DataMapError
from cleanup_pipeline.core.decisions import (
    COUNT_KEYS,
    HOLDS_OFF,
    HoldError,
    check_user_id,
    new_hold,
)
from cleanup_pipeline.core.guards import (
    APPROVED_RUN_TAG,
    ApprovalError,
    ReviewedRun,
    approval_run_id,
    approved_candidates,
    mark_not_approved,
    refuse_unless_approvable,
    refuse_unless_reviewed,
)
from cleanup_pipeline.core.recovery import REFUSED
from cleanup_pipeline.core.reports import STORE_PREFIX
from cleanup_pipeline.core.requests import DEADLINE_CHECK, DEADLINE_COUNTS
from cleanup_pipeline.core.settings import load_settings, step_storage_from_env
from cleanup_pipeline.core.vocabulary import Outcome
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy

# Only steps that give the same result when run twice carry a retry policy: the scan and the
# decisions (reads and pure computation), the reports (written over at the same location), the
# report retention (removing what is already gone is a no-op) and the deletion batches (the
# cascade re-reads each user and every write is conditional, so a replayed batch only finishes
# what the failed attempt left). The warning step has none: each send is already retried by the
# AWS client and a failure is recorded per user for the next run; after a failure of the step
# itself, whether an email went out is unknown, and only the claim lease stands between a replay
# and a second email. Its replay is an operator's re-execution, never automatic.
# AWS clients already retry each request (up to 8 attempts); this covers what outlasts them
# (an endpoint or the network down for a while) or happens outside them (a worker restarted).
IDEMPOTENT_STEP_RETRY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# The assets of the cleanup job; the job selects them by this group.
GROUP = "cleanup"


# The executor is chosen per run in the `execution:` run config, without a code change:
#
#   execution:
#     config:
#       in_process: {}          # every step in the run's process (the default)
#       multiprocess: {...}     # one process per step on the run's machine
#       ecs: {...}              # one ECS task per step (dagster-aws), runs by EcsRunLauncher
#       k8s: {...}              # one Kubernetes Job per step (dagster-k8s, the `k8s` extra)
#
# Each choice is Dagster's own executor, with its own config schema, requirements and behaviour;
# this only picks one. Steps on separate workers need the step outputs on S3
# (`CLEANUP_STEP_OUTPUTS_S3_URI`, see `step_io_manager`).
#
# A launch from the UI or the schedule with the default config runs every step in the run's own
# process, as `cleanup-pipeline run` does: one import of Dagster, pandas and boto3 and one set of
# AWS clients for the whole run. Runs that
# should spread the deletion batches over processes or machines say so in their run config
# (`multiprocess`, `ecs`, `k8s`; deploy/ holds examples).
DEFAULT_EXECUTION: dict[str, Any] = {"in_process": {}}
# One process per step on the run's machine, each forked from a server that imported the job
# once rather than started as a fresh interpreter (Dagster's own default, `spawn`).
FORKED_STEPS: dict[str, Any] = {
    "multiprocess": {
        "start_method": {"forkserver": {"preload_modules": ["cleanup_pipeline.definitions"]}}
    }
}


def _choices() -> dict[str, dg.ExecutorDefinition]:
    choices = {
        "in_process": dg.in_process_executor,
        "multiprocess": dg.multiprocess_executor,
        "ecs": ecs_executor,
    }
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError:  # the `k8s` extra is not installed: no Kubernetes choice
        pass
    else:
        choices["k8s"] = k8s_job_executor
    return choices


CHOICES = _choices()


def _chosen(config: Mapping[str, Any]) -> tuple[dg.ExecutorDefinition, Mapping[str, Any]]:
    name, sub_config = next(iter(config.items()))
    return CHOICES[name], sub_config


def _requirements(config: Mapping[str, Any]) -> Sequence[ExecutorRequirement]:
    chosen, sub_config = _chosen(config)
    return chosen.get_requirements(sub_config)


@dg.executor(
    name="in_process_multiprocess_ecs_or_k8s",
    config_schema=dg.Field(
        dg.Selector({name: d.config_schema.as_field() for name, d in CHOICES.items()}),
        default_value=DEFAULT_EXECUTION,
    ),
    requirements=_requirements,
)
def selectable_executor(init_context: dg.InitExecutorContext) -> Executor:
    """The executor named in the run config, built by Dagster from its own config."""
    chosen, sub_config = _chosen(init_context.executor_config)
    assert chosen.executor_creation_fn is not None
    return chosen.executor_creation_fn(
        dg.InitExecutorContext(
            job=init_context.job,
            executor_def=chosen,
            executor_config=sub_config,
            instance=init_context.instance,
        )
    )


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


JOB_NAME = "inactive_accounts_cleanup"

inactive_accounts_cleanup = dg.define_asset_job(
    name=JOB_NAME,
    selection=dg.AssetSelection.groups(GROUP),
    description="Warn users inactive for 60 days, delete those still inactive 30 days after the "
    "warning, and write the per-run candidate report.",
    tags={"cleanup_pipeline/job": "inactive_accounts_cleanup"},
    executor_def=selectable_executor,
)


def run_config_for(
    as_of: str | None = None,
    dry_run: bool = False,
    allow_mass_action: bool = False,
    approved_run_id: str | None = None,
) -> dict:
    """Run config for the per-run options; as used by the schedule and the CLI."""
    options: dict = {"dry_run": dry_run, "allow_mass_action": allow_mass_action}
    if as_of:
        options["as_of"] = as_of
    if approved_run_id:
        options["approved_run_id"] = approved_run_id
    return {"resources": {"run_options": {"config": options}}}


@dg.schedule(
    job=inactive_accounts_cleanup,
    cron_schedule=os.environ.get("CLEANUP_SCHEDULE_CRON", "0 3 * * *"),
    execution_timezone=os.environ.get("CLEANUP_SCHEDULE_TIMEZONE", "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_cleanup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Runs the cleanup every day; the tick's time is the run's `as_of`."""
    tick = context.scheduled_execution_time
    as_of = format_ms(int(tick.timestamp() * 1000))
    return dg.RunRequest(
        run_key=as_of, run_config=run_config_for(as_of=as_of), tags={"as_of": as_of}
    )


CANDIDATE_REPORT_KEY = dg.AssetKey("candidate_report")


def reviewed_run(instance: dg.DagsterInstance, run_id: str) -> ReviewedRun | None:
    record = instance.get_run_record_by_id(run_id) if run_id else None
    if record is None:
        return None
    created = int(record.create_timestamp.astimezone(UTC).timestamp() * 1000)
    run = record.dagster_run
    return ReviewedRun(run_id, run.job_name, created, dict(run.tags))


def candidate_report_location(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Where the run wrote its candidate report (its materialization's `path`), if it did."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key == CANDIDATE_REPORT_KEY:
            path = materialization.metadata.get("path")
            return None if path is None else str(path.value)
    return None


def load_approval(
    instance: dg.DagsterInstance,
    run_id: str,
    max_age_days: float,
    s3_client: Callable[[], Any],
    current_run_id: str | None = None,
) -> dict[str, str]:
    """{user id: notify|delete} the approved run's candidate report lists; `ApprovalError`
    naming the problem when the run is unknown, of another job, too old, or reportless, or when
    its report does not match the candidates' digests the run recorded in its tags."""
    run_id = run_id.strip()
    now = now_ms()
    found = reviewed_run(instance, run_id)
    refuse_unless_approvable(run_id, found, JOB_NAME, now, max_age_days, current_run_id)
    location = candidate_report_location(instance, run_id)
    if location is None:
        raise ApprovalError(
            f"approved_run_id {run_id!r} has no candidate report: it stopped before writing "
            "one, so there is nothing reviewed to approve"
        )
    try:
        report = read_report(location, s3_client() if is_s3(location) else None)
    except Exception as error:
        raise ApprovalError(
            f"approved_run_id {run_id!r}: its candidate report {location} cannot be read "
            f"({type(error).__name__}); it may have been removed by report retention"
        ) from error
    approved = approved_candidates(run_id, report)
    assert found is not None  # refuse_unless_approvable refused a run not found
    refuse_unless_reviewed(run_id, found.tags, approved)
    return approved


def approve(
    context: dg.AssetExecutionContext,
    decisions: pd.DataFrame,
    approved_run_id: str | None,
    max_age_days: float,
    s3_client: Callable[[], Any],
) -> pd.DataFrame:
    """The decisions with `not_approved` marked for this run's approval (none without one); a
    refused approval fails the step, before any report or action."""
    if not approved_run_id:
        return mark_not_approved(decisions, None)
    try:
        approved = load_approval(
            context.instance, approved_run_id, max_age_days, s3_client, context.run.run_id
        )
    except ApprovalError as error:  # the same id is refused again: retrying cannot help
        raise dg.Failure(description=str(error), allow_retries=False) from error
    return mark_not_approved(decisions, approved)


# Each action's candidates asset carries the guards of that action.


RESTORE_JOB = "restore_account"


class RestoreConfig(dg.Config):
    user_id: str = Field(description="Id of the deleted user to bring back.")
    dry_run: bool = Field(False, description="Only say what would be restored; write nothing.")


@dg.op
def restore_deleted_account(
    context: dg.OpExecutionContext, config: RestoreConfig, aws: AwsEnvironment
) -> dict:
    """What the latest deletion of the user removed, put back from the archive and the bucket's
    versions: files, feature references, scoreboard entries, and last the account itself. A
    refused restore (the account exists, was restored or purged, or never deleted) writes
    nothing and fails the run, saying why."""
    try:
        user_id = check_user_id(config.user_id.strip(), "user_id")
    except ValueError as error:
        raise dg.Failure(description=str(error)) from None
    settings, clients = aws.settings(), aws.clients()
    try:
        data_map = checked_data_map(clients, settings)
    except DataMapError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    ctx = RestoreContext(
        clients.dynamodb,
        clients.s3,
        settings,
        open_archive(settings.archive_location, clients.s3, existing=True),
        context.run.run_id,
        data_map,
    )
    summary = restore_user(ctx, user_id, config.dry_run).summary()
    context.log.info(json.dumps(summary))
    counts = {
        f"{group}_{kind}": dg.MetadataValue.int(value)
        for group in ("restored", "skipped")
        for kind, value in summary[group].items()
        if isinstance(value, int)
    }
    metadata = {
        "user_id": dg.MetadataValue.text(summary["user_id"]),
        "status": dg.MetadataValue.text(summary["status"]),
        "reason": dg.MetadataValue.text(summary["reason"]),
        "result": dg.MetadataValue.json(summary),
        **counts,
    }
    if summary["status"] == REFUSED:
        raise dg.Failure(description=summary["reason"], metadata=metadata)
    context.add_output_metadata(metadata)
    return summary


@dg.job(name=RESTORE_JOB, tags={"cleanup_pipeline/job": RESTORE_JOB})
def restore_account() -> None:
    """Restore one deleted user within the restore window."""
    restore_deleted_account()


class HoldChange(dg.Config):
    action: Literal["add", "remove"] = Field(description="add (or replace) or remove a hold")
    user_id: str = Field(description="the user's id in the users table")
    reason: str = Field("", description="add: why the user is held; shown in every report")
    until: str = Field("", description="add: ISO 8601 or epoch ms; empty holds until removed")


@dg.op
def change_hold(context: dg.OpExecutionContext, config: HoldChange, aws: AwsEnvironment) -> None:
    """Writes the hold to the holds table; the next run, and every batch of a run underway,
    honours it."""
    now = now_ms()
    table = aws.settings().holds_table
    try:
        if table is None:
            raise HoldError(HOLDS_OFF)
        if config.action == "add":
            hold = new_hold(config.user_id, config.reason, config.until or None, now)
            replaced = put_hold(aws.clients().dynamodb, table, hold)
            context.add_output_metadata(
                {
                    "user_id": hold.user_id,
                    "reason": hold.reason,
                    "until": str(hold.as_json(now)["until"] or "until removed"),
                    "replaced_earlier_hold": replaced is not None,
                }
            )
            return
        check_user_id(config.user_id, "user_id")
        removed = delete_hold(aws.clients().dynamodb, table, config.user_id)
        if removed is None:
            raise HoldError(f"{config.user_id!r} has no hold: nothing removed")
        context.add_output_metadata({"user_id": removed.user_id, "removed_reason": removed.reason})
    except ValueError as error:  # a HoldError, or a user id that cannot be one
        raise dg.Failure(description=str(error)) from error


@dg.job(
    description="Add or remove a persistent hold: a held user is never warned or deleted until "
    "the hold is removed or its `until` passes.",
    tags={"cleanup_pipeline/job": "manage_hold"},
)
def manage_hold() -> None:
    change_hold()


# A failed user action fails the run but blocks nothing, nor does an overdue request: neither is
# listed under "blocked".
NOT_A_GUARD = {"every_user_action_succeeded", DEADLINE_CHECK}


def _materializations(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None:
            found[materialization.asset_key.to_user_string()] = {
                key: value.value for key, value in materialization.metadata.items()
            }
    return found


def _failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    failed = []
    for record in records:
        data = record.event_log_entry.dagster_event.event_specific_data
        if not data.passed and data.check_name not in NOT_A_GUARD:
            failed.append(data.check_name)
    return sorted(set(failed))


def summarize(
    instance: dg.DagsterInstance, run_id: str, success: bool, as_of: str | None, dry_run: bool
) -> dict[str, Any]:
    assets = _materializations(instance, run_id)
    decisions = assets.get("user_decisions", {})
    warnings = assets.get("warning_emails", {})
    deletions = assets.get("deleted_accounts", {})
    report = assets.get("cleanup_report") or assets.get("candidate_report") or {}
    counts = {key: int(decisions.get(key, 0)) for key in COUNT_KEYS}
    counts["notified"] = int(warnings.get("notified", 0))
    erasures = assets.get("erased_accounts", {})
    counts[Outcome.DELETED] = int(deletions.get(Outcome.DELETED, 0))
    # Every deletion this run proved: the inactive users' and the erasures alike.
    counts["verified"] = int(deletions.get("verified", 0)) + int(erasures.get("verified", 0))
    counts[Outcome.FAILED] = int(warnings.get(Outcome.FAILED, 0)) + int(
        deletions.get(Outcome.FAILED, 0)
    )
    counts[Outcome.NOT_APPROVED] = int(decisions.get(Outcome.NOT_APPROVED, 0))
    counts[Outcome.DELETED_BY_OTHER_RUN] = int(deletions.get(Outcome.DELETED_BY_OTHER_RUN, 0))
    # What went from each store, by name; a run whose deletions did not run has its report's 0s.
    for source in (report, deletions):
        counts.update({k: int(v) for k, v in source.items() if k.startswith(STORE_PREFIX)})
    # As the report states them: after the run acted (the final report), or as read when no
    # action followed (the candidate report, or the requests asset of a run stopped before it).
    requests = assets.get("erasure_requests", {})
    counts.update({key: int(report.get(key, requests.get(key, 0))) for key in DEADLINE_COUNTS})
    # Accounts erased at their own request count apart from the inactivity deletions.
    counts["erased"] = int(erasures.get(Outcome.DELETED, 0))
    counts["requests_done"] = int(erasures.get("requests_done", 0))
    counts[Outcome.FAILED] += int(erasures.get(Outcome.FAILED, 0))
    return {
        "run_id": run_id,
        "status": "success" if success else "failure",
        "as_of": decisions.get("as_of", as_of),
        "dry_run": dry_run,
        "counts": counts,
        "blocked": _failed_checks(instance, run_id),
        "report": report.get("path"),
    }


def _instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    print("DAGSTER_HOME is not set: this run will not appear in any run history.", file=sys.stderr)
    return dg.DagsterInstance.ephemeral()


def run_job(
    as_of: str | None,
    dry_run: bool,
    allow_mass_action: bool,
    multiprocess: bool = False,
    instance: dg.DagsterInstance | None = None,
    max_concurrent: int | None = None,
    deletion_batch_size: int | None = None,
    approved_run_id: str | None = None,
    *,
    job: Callable[[], dg.JobDefinition],
) -> dict[str, Any]:
    """Execute the job once and return its summary: run id, status, as_of, counts, the
    blocking checks that failed and the report's location. An approval that cannot
    be used is refused here, before any run is launched."""
    if approved_run_id is not None:
        try:
            approved_run_id = approval_run_id(approved_run_id)
        except ApprovalError as error:
            raise ApprovalError(f"--approve {error}") from None
    as_of_iso = format_ms(parse_as_of(as_of, "--as-of")) if as_of else None
    settings = load_settings()  # every missing variable named, before any run or AWS call
    step_storage = step_storage_from_env()  # a malformed location named, likewise
    policy = {} if deletion_batch_size is None else {"deletion_batch_size": deletion_batch_size}
    CleanupPolicy(**policy)  # out of range: one short error, before any run is created
    # The data map's shape, then its tables, indexes and buckets: one error, before any run.
    checked_data_map(shared_clients(settings), settings)
    instance = instance or _instance()
    if approved_run_id:
        max_age = CleanupPolicy().approval_max_age_days
        load_approval(instance, approved_run_id, max_age, S3Resource(max_attempts=8).get_client)
    run_config: dict[str, Any] = run_config_for(
        as_of_iso, dry_run, allow_mass_action, approved_run_id
    )
    run_config["loggers"] = {"console": {"config": {"log_level": "INFO"}}}
    if multiprocess:
        # Each step forks from a server that imported the job once, instead of starting a
        # fresh interpreter that imports Dagster, pandas and boto3 again for every step.
        executor: dict[str, Any] = dict(FORKED_STEPS["multiprocess"])
        if max_concurrent is not None:
            executor["max_concurrent"] = max_concurrent
        run_config["execution"] = {"config": {"multiprocess": executor}}
    else:
        run_config["execution"] = {"config": {"in_process": {}}}
    if policy:
        run_config["resources"]["cleanup_policy"] = {"config": policy}
    tags = {
        "cleanup_pipeline/dry_run": str(dry_run).lower(),
        "cleanup_pipeline/allow_mass_action": str(allow_mass_action).lower(),
        "cleanup_pipeline/launched_by": "cli",
    }
    if as_of_iso:
        tags["as_of"] = as_of_iso
    if approved_run_id:
        tags[APPROVED_RUN_TAG] = approved_run_id
    # Runs started here bypass the run queue and may overlap: each stores what flows between its
    # steps in its own folder, never in the shared per-asset files of the instance. (On S3 the
    # keys already carry the run: see orchestration/jobs.py.)
    if step_storage is None:
        storage = Path(instance.storage_directory()) / f"cli-{uuid.uuid4().hex}"
        run_config["resources"]["io_manager"] = {"config": {"base_dir": str(storage)}}
    result = dg.execute_job(
        dg.reconstructable(job), instance=instance, run_config=run_config, tags=tags
    )
    summary = summarize(instance, result.run_id, result.success, as_of_iso, dry_run)
    return {**summary, "approved_run_id": approved_run_id or None}

"""The resources every step is given: the AWS environment, the cleanup policy, the per-run options
and the reports' S3 client, with one short error for bad configuration."""

from datetime import UTC
from typing import Any, Self

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cleanup_pipeline.aws.clients import AwsClients, shared_clients
from cleanup_pipeline.core.as_of import parse_as_of
from cleanup_pipeline.core.data_map import load_data_map
from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.guards import ApprovalError, GuardLimits, HistoryLimits, approval_run_id
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.observability.sentry import init_sentry


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "value"
    message = error["msg"].removeprefix("Value error, ").removeprefix("Input ")
    # `5` meant as 5% is the mistake that silently lifted the deletion guard.
    hint = " (a fraction: 0.05 is 5%)" if field.endswith("_fraction") else ""
    return f"{field}={error['input']!r} {message}{hint}"


def short_error(name: str, error: ValidationError) -> PydanticCustomError:
    """Every finding of `error` on one line, as the single error the launchpad and CLI show."""
    findings = "; ".join(_describe(e) for e in error.errors(include_url=False))
    context = {"name": name, "findings": findings}
    return PydanticCustomError("out_of_range", "{name} out of range: {findings}", context)


class ReportsS3Resource(S3Resource):
    """dagster-aws's `S3Resource` (same config, same `get_client()`), for reports stored on S3
    (`CLEANUP_REPORTS_DIR=s3://...`).

    `S3Resource` puts a new client on the context of every step that names it, used or not:
    each time a new boto3 session that loads S3's service model again, a sizeable heap of
    Python objects. The report steps call `get_client()`
    themselves, and only for reports on S3, so here the context holds the resource itself.
    """

    def get_object_to_set_on_execution_context(self) -> Self:
        return self


class AwsEnvironment(dg.ConfigurableResource):
    """AWS clients and table, bucket and email settings, all read from the environment
    variables of docs/operations.md. Setup fails before any AWS call, naming every missing
    variable. Secrets never pass through Dagster config, so the UI never shows them."""

    def settings(self) -> Settings:
        return load_settings()

    def clients(self) -> AwsClients:
        return shared_clients(self.settings())

    def store_names(self) -> list[str]:
        """The data map's store names, in its order: read from the map's file, checked by the
        run's first step; no AWS call, so a dry run reads none of the stores."""
        return [store.name for store in load_data_map(self.settings()).stores]

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        init_sentry(self.settings().sentry_dsn)


class CleanupPolicy(dg.ConfigurableResource):
    """The retention policy, guard limits and tuning; every field has a safe default. Every
    field is range-checked when a run starts, before any step touches AWS: one error names
    every value out of range, so a typo cannot switch a guard off (`5` meant as 5%)."""

    # The error names each bad field with its value; the whole input again would only add noise.
    model_config = ConfigDict(hide_input_in_errors=True)

    notify_after_days: int = Field(
        60, ge=1, le=3650, description="Warn after this many days (1-3,650)."
    )
    delete_after_days: int = Field(
        90, ge=1, le=3650, description="Delete after this many; > notify, at most 3,650."
    )
    exempt_user_ids: list[str] = Field(
        default_factory=list, description="Hold list: never warned or deleted (legal holds, staff)."
    )
    max_invalid_fraction: float = Field(
        0.01, ge=0, le=1, description="Guard: invalid users / all users; 0-1 (0.01 = 1%)."
    )
    min_guarded_count: int = Field(
        25, ge=0, le=1_000_000, description="Guard floor: counts up to this pass."
    )
    max_delete_fraction: float = Field(
        0.05, ge=0, le=1, description="Guard: deletions / valid users; 0-1 (0.05 = 5%)."
    )
    max_notify_fraction: float = Field(
        0.20, ge=0, le=1, description="Guard: warnings / valid users; 0-1 (0.2 = 20%)."
    )
    max_erasures_per_run: int = Field(
        100,
        ge=0,
        le=1_000_000,
        description="Guard: users erased at their own request per run (0-1,000,000).",
    )
    history_factor: float = Field(
        5.0, ge=1, le=100, description="Guard: at most this (1-100) x usual."
    )
    history_window: int = Field(
        7, ge=1, le=365, description="Guard: successful runs for the median."
    )
    history_min_runs: int = Field(
        3,
        ge=1,
        le=365,
        description="Guard: earlier runs needed before it applies; <= history_window.",
    )
    scan_segments: int = Field(
        4, ge=1, le=1000, description="DynamoDB parallel scan segments (a thread each)."
    )
    action_batch_size: int = Field(
        100, ge=1, le=10_000, description="Users re-read and acted on per batch."
    )
    deletion_batch_size: int = Field(
        500,
        ge=1,
        le=100_000,
        description="Delete candidates per batch; each batch is its own step, and batches run "
        "side by side on the multiprocess executor.",
    )
    send_rate_per_second: float | None = Field(
        None,
        gt=0,
        le=10_000,
        description="Email send rate; default: the SES account's maximum, else 14.",
    )
    send_workers: int = Field(
        8, ge=1, le=256, description="Threads sending email (within the send rate)."
    )
    warning_claim_lease_minutes: int = Field(
        60,
        ge=1,
        le=10_080,
        description="After this, a warning left in flight by a dead run may be resent.",
    )
    progress_log_seconds: float = Field(
        30.0, gt=0, le=30, description="Long steps log their progress this often (0-30 s)."
    )
    approval_max_age_days: int = Field(
        7,
        ge=1,
        le=90,
        description="A run can be approved (approved_run_id) this many days after it.",
    )
    report_retention_days: int = Field(
        90,
        ge=0,
        le=3650,
        description="Report files last written longer ago are removed; 0 keeps them all.",
    )

    @field_validator("delete_after_days")
    @classmethod
    def _deletion_follows_warning(cls, days: int, info: ValidationInfo) -> int:
        notify = info.data.get("notify_after_days")
        if notify is not None and days <= notify:
            raise ValueError(f"should be greater than notify_after_days ({notify})")
        return days

    @field_validator("history_min_runs")
    @classmethod
    def _history_can_apply(cls, runs: int, info: ValidationInfo) -> int:
        # More runs required than the window holds would switch the history guard off.
        window = info.data.get("history_window")
        if window is not None and runs > window:
            raise ValueError(f"should be at most history_window ({window})")
        return runs

    @model_validator(mode="wrap")
    @classmethod
    def _one_error_for_every_bad_field(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as error:
            raise short_error("cleanup_policy", error) from None

    def policy(self) -> Policy:
        return Policy(
            notify_after_days=self.notify_after_days,
            delete_after_days=self.delete_after_days,
            exempt_user_ids=frozenset(self.exempt_user_ids),
        )

    def history(self) -> HistoryLimits:
        return HistoryLimits(
            factor=self.history_factor, window=self.history_window, min_runs=self.history_min_runs
        )

    def limits(self) -> GuardLimits:
        return GuardLimits(
            max_invalid_fraction=self.max_invalid_fraction,
            min_guarded_count=self.min_guarded_count,
            max_delete_fraction=self.max_delete_fraction,
            max_notify_fraction=self.max_notify_fraction,
            max_erasures_per_run=self.max_erasures_per_run,
        )


class RunOptions(dg.ConfigurableResource):
    """What an operator sets per run: the reference time, dry run, the mass-action override and
    the approval of a reviewed run."""

    as_of: str = Field(
        "",
        description="Reference time, ISO 8601 or epoch ms; empty: when the run was created (for "
        "a re-execution, when the run it re-executes was first created).",
    )
    dry_run: bool = Field(False, description="Decide and report only; write nothing to AWS.")
    allow_mass_action: bool = Field(
        False, description="Lift the size and history guards for this run only, after review."
    )
    approved_run_id: str | None = Field(
        None,
        description="Act only on the candidates of this earlier run's reviewed candidate report "
        "who still are candidates; every other candidate is not_approved. Left out: no "
        "approval; blank is refused.",
    )

    @field_validator("approved_run_id")
    @classmethod
    def _names_a_run(cls, run_id: str | None) -> str | None:
        # Blank is not "no approval": the launchpad or a script meant to give an id.
        if run_id is None:
            return None
        try:
            return approval_run_id(run_id)
        except ApprovalError as error:
            raise ValueError(str(error)) from None

    def as_of_ms(self, context: dg.OpExecutionContext | dg.AssetExecutionContext) -> int:
        """`as_of` when given; otherwise the creation time of the run, the same for every step.
        A re-execution (from failure or not) is a new run with its own creation time: it takes
        that of the first run it re-executes, so its steps decide at the same time as the
        steps that run already did."""
        if self.as_of:
            return parse_as_of(self.as_of)
        run_id = context.run.root_run_id or context.run.run_id
        record = context.instance.get_run_record_by_id(run_id)
        if record is None or record.create_timestamp is None:
            raise RuntimeError(f"run record {run_id} not found; pass as_of explicitly")
        return int(record.create_timestamp.astimezone(UTC).timestamp() * 1000)

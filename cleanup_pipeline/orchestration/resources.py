"""Dagster resources: AWS access from the environment, the policy, and per-run options."""

from datetime import UTC

import dagster as dg
from pydantic import Field

from cleanup_pipeline.aws.clients import AwsClients, shared_clients
from cleanup_pipeline.core.as_of import parse_as_of
from cleanup_pipeline.core.guards import GuardLimits, HistoryLimits
from cleanup_pipeline.core.policy import Policy
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.observability.sentry import init_sentry


class AwsEnvironment(dg.ConfigurableResource):
    """AWS clients and table, bucket and email settings, all read from the environment
    (SPEC §6). Setup fails before any AWS call, naming every missing variable. Secrets never
    pass through Dagster config, so the UI never shows them."""

    def settings(self) -> Settings:
        return load_settings()

    def clients(self) -> AwsClients:
        return shared_clients(self.settings())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        init_sentry(self.settings().sentry_dsn)


class CleanupPolicy(dg.ConfigurableResource):
    """The retention policy, guard limits and tuning; every field has a safe default."""

    notify_after_days: int = Field(60, description="Warn after this many days without a visit.")
    delete_after_days: int = Field(90, description="Delete after this many; > notify_after_days.")
    exempt_user_ids: list[str] = Field(
        default_factory=list, description="Hold list: never warned or deleted (legal holds, staff)."
    )
    max_invalid_fraction: float = Field(0.01, description="Guard: invalid users / all users.")
    min_guarded_count: int = Field(25, description="Guard floor: counts up to this always pass.")
    max_delete_fraction: float = Field(0.05, description="Guard: deletions / valid users.")
    max_notify_fraction: float = Field(0.20, description="Guard: warnings / valid users.")
    history_factor: float = Field(5.0, description="Guard: at most this x the usual count.")
    history_window: int = Field(7, description="Guard: successful runs the median is taken over.")
    history_min_runs: int = Field(3, description="Guard: earlier runs needed before it applies.")
    scan_segments: int = Field(4, description="DynamoDB parallel scan segments.")
    action_batch_size: int = Field(100, description="Users re-read and acted on per batch.")
    deletion_batch_size: int = Field(
        500,
        ge=1,
        description="Delete candidates per batch; each batch is its own step, and batches run "
        "side by side on the multiprocess executor.",
    )
    send_rate_per_second: float | None = Field(
        None, description="Email send rate; default: the SES account's maximum, else 14."
    )
    send_workers: int = Field(8, description="Threads sending email (within the send rate).")
    warning_claim_lease_minutes: int = Field(
        60, description="After this, a warning left in flight by a dead run may be sent again."
    )
    approval_max_age_days: int = Field(
        7, ge=1, description="A run can be approved (approved_run_id) this many days after it."
    )
    report_retention_days: int = Field(
        90, description="Report files last written longer ago are removed; 0 keeps them all."
    )

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
        )


class RunOptions(dg.ConfigurableResource):
    """What an operator sets per run: the reference time, dry run, the mass-action override and
    the approval of a reviewed run."""

    as_of: str = Field(
        "", description="Reference time, ISO 8601 or epoch ms; empty: when the run was created."
    )
    dry_run: bool = Field(False, description="Decide and report only; write nothing to AWS.")
    allow_mass_action: bool = Field(
        False, description="Lift the size and history guards for this run only, after review."
    )
    approved_run_id: str = Field(
        "",
        description="Act only on the candidates of this earlier run's reviewed candidate report "
        "who still are candidates; every other candidate is not_approved. Empty: no approval.",
    )

    def as_of_ms(self, context: dg.OpExecutionContext | dg.AssetExecutionContext) -> int:
        """`as_of` when given; otherwise the run's creation time, the same for every step."""
        if self.as_of:
            return parse_as_of(self.as_of)
        record = context.instance.get_run_record_by_id(context.run.run_id)
        if record is None or record.create_timestamp is None:
            raise RuntimeError("run record not found; pass as_of explicitly")
        return int(record.create_timestamp.astimezone(UTC).timestamp() * 1000)

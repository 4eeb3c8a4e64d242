"""The approved run looked up on the Dagster instance, and its candidate report read."""

import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import dagster as dg
import pandas as pd

from cleanup_pipeline.aws.reports import is_s3, read_report
from cleanup_pipeline.core.approval import (
    ApprovalError,
    ReviewedRun,
    approved_candidates,
    mark_not_approved,
    refuse_unless_approvable,
    refuse_unless_reviewed,
)
from cleanup_pipeline.orchestration.job import JOB_NAME

CANDIDATE_REPORT_KEY = dg.AssetKey("candidate_report")


def wall_clock_ms() -> int:
    """Now, against which an approved run's age is measured."""
    return int(time.time() * 1000)


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
    now = wall_clock_ms()
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
    except ApprovalError as error:
        raise dg.Failure(description=str(error)) from error
    return mark_not_approved(decisions, approved)

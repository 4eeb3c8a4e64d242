"""The JSON object `cleanup-pipeline run` prints last, read from the run's own events."""

from typing import Any

import dagster as dg

from cleanup_pipeline.core.decisions import COUNT_KEYS
from cleanup_pipeline.core.vocabulary import Outcome

# A failed user action fails the run but blocks nothing; it is not listed under "blocked".
NOT_A_GUARD = {"every_user_action_succeeded"}


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
    counts[Outcome.DELETED] = int(deletions.get(Outcome.DELETED, 0))
    counts[Outcome.FAILED] = int(warnings.get(Outcome.FAILED, 0)) + int(
        deletions.get(Outcome.FAILED, 0)
    )
    counts[Outcome.NOT_APPROVED] = int(decisions.get(Outcome.NOT_APPROVED, 0))
    counts[Outcome.DELETED_BY_OTHER_RUN] = int(deletions.get(Outcome.DELETED_BY_OTHER_RUN, 0))
    return {
        "run_id": run_id,
        "status": "success" if success else "failure",
        "as_of": decisions.get("as_of", as_of),
        "dry_run": dry_run,
        "counts": counts,
        "blocked": _failed_checks(instance, run_id),
        "report": report.get("path"),
    }

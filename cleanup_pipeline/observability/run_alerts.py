"""Run-level alerts: a failed or blocked run, and check-ins of the daily run to a Sentry cron
monitor, so that a missed day reaches the operator too. No-ops unless Sentry is initialised
(sentry_sdk is imported only then, see sentry.py)."""

from dataclasses import dataclass
from typing import Any

from cleanup_pipeline.core.masking import scrub_emails
from cleanup_pipeline.observability import sentry

# Sentry marks the day missed when no check-in arrives within this margin of the scheduled time.
CHECKIN_MARGIN_MINUTES = 30
MAX_RUNTIME_MINUTES = 6 * 60


@dataclass(frozen=True)
class RunFailure:
    """What the operator needs to know about a failed run; no address anywhere in it."""

    run_id: str
    job: str
    failed_steps: tuple[str, ...]
    failed_checks: tuple[str, ...]
    error: str

    @property
    def summary(self) -> str:
        """`failed checks a, b; failed steps c`, or that it failed before its first step."""
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("failed checks", self.failed_checks),
                ("failed steps", self.failed_steps),
            )
            if names
        ]
        return "; ".join(parts) or "failed before its first step"


def report_run_failure(failure: RunFailure) -> bool:
    """One Sentry event per failed run, grouped by what stopped it. Returns whether sent."""
    error = scrub_emails(failure.error)
    sentry.log.error("run %s of %s %s: %s", failure.run_id, failure.job, failure.summary, error)
    if not sentry.is_active():
        return False
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("run_id", failure.run_id)
        scope.set_tag("job", failure.job)
        scope.set_context(
            "run",
            {
                "run_id": failure.run_id,
                "job": failure.job,
                "failed_steps": list(failure.failed_steps),
                "failed_checks": list(failure.failed_checks),
                "error": error,
            },
        )
        scope.fingerprint = ["cleanup-run-failure", failure.job, failure.summary]
        message = f"{failure.job} run {failure.run_id} {failure.summary}: {error}"
        sentry_sdk.capture_message(scrub_emails(message)[:2000], level="error")
    return True


# Overdue requests named in one alert; the rest are counted.
_OVERDUE_LISTED = 20


def report_overdue_requests(
    run_id: str, job: str, check: str, overdue: list[dict[str, object]], counts: dict[str, int]
) -> bool:
    """One Sentry event for a run that found requests past their due date: each overdue
    request's id, kind, due date and days late (never its user or any address), and the
    run's deadline counts; every run's event is grouped in one issue. Returns whether sent."""
    listed = overdue[:_OVERDUE_LISTED]
    more = len(overdue) - len(listed)
    names = ", ".join(f"{r['id']} (due {r['due']})" for r in listed) + (
        f" and {more} more" if more else ""
    )
    message = scrub_emails(
        f"{job} run {run_id} failed check {check}: {len(overdue)} requests from the people "
        f"themselves are past their due date: {names}"
    )
    sentry.log.error("%s", message)
    if not sentry.is_active():
        return False
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("run_id", run_id)
        scope.set_tag("job", job)
        scope.set_tag("check", check)
        scope.set_context("requests", {**counts, "overdue": listed})
        scope.fingerprint = ["cleanup-requests-overdue", check]
        sentry_sdk.capture_message(message[:2000], level="error")
    return True


def check_in(monitor: str, run_id: str, status: str, cron: str, timezone: str) -> bool:
    """Report a scheduled run's progress to the cron monitor `monitor` (created or updated from
    the schedule on each check-in); the run id pairs the start with its end."""
    if not sentry.is_active():
        return False
    from sentry_sdk.crons import capture_checkin

    capture_checkin(
        monitor_slug=monitor,
        check_in_id=run_id.replace("-", ""),
        status=status,
        monitor_config=_monitor_config(cron, timezone),
    )
    return True


def _monitor_config(cron: str, timezone: str) -> Any:
    return {
        "schedule": {"type": "crontab", "value": cron},
        "timezone": timezone,
        "checkin_margin": CHECKIN_MARGIN_MINUTES,
        "max_runtime": MAX_RUNTIME_MINUTES,
        "failure_issue_threshold": 1,
        "recovery_threshold": 1,
    }

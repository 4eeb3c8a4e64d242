"""Error reporting: Sentry when a DSN is configured, logs always; never an email address.

sentry_sdk is imported only once a DSN is configured: without one, a run never needs it, and
importing it (with its HTTP transport) costs every run process a few MB of memory.
"""

import logging
from typing import Any

from cleanup_pipeline.core.masking import scrub_emails

log = logging.getLogger("cleanup_pipeline")
_initialised_dsn: str | None = None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_emails(value)
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def scrub_event(event: dict[str, Any], _hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry `before_send`: mask every address anywhere in the event."""
    return _scrub(event)


def init_sentry(dsn: str | None, **options: Any) -> bool:
    """Initialise Sentry once per process; a no-op without a DSN. Returns whether it is active."""
    global _initialised_dsn
    if not dsn:
        return False
    if _initialised_dsn != dsn:
        import sentry_sdk
        from sentry_sdk.integrations.logging import ignore_logger

        # Sentry's default collects no PII (user info, IPs); `send_default_pii` is deprecated
        # and left unset so that the default event scrubber stays on.
        sentry_sdk.init(dsn=dsn, before_send=scrub_event, max_breadcrumbs=20, **options)
        # Dagster logs every step failure itself; capture exceptions where they happen instead.
        ignore_logger("dagster")
        # Failures are captured below with their context; their log line would be a second event.
        ignore_logger(log.name)
        _initialised_dsn = dsn
    return True


def report_failure(user_id: str, step: str, run_id: str, error: BaseException) -> None:
    """Log one user's failure with its context and send it to Sentry (when configured)."""
    message = scrub_emails(f"{type(error).__name__}: {error}")
    log.error("user %s failed at %s in run %s: %s", user_id, step, run_id, message)
    if _initialised_dsn is None:
        return
    import sentry_sdk
    from sentry_sdk.integrations.dedupe import DedupeIntegration

    with sentry_sdk.new_scope() as scope:
        scope.set_user({"id": user_id})
        scope.set_tag("user_id", user_id)
        scope.set_tag("step", step)
        scope.set_tag("run_id", run_id)
        scope.set_context("cleanup", {"user_id": user_id, "step": step, "run_id": run_id})
        # One error can fail a whole batch: every user gets an event, not only the first.
        DedupeIntegration.reset_last_seen()
        sentry_sdk.capture_exception(error)


def report_guard_failure(name: str, count: int, limit: float, reason: str, run_id: str) -> None:
    """Log and report a guard that stopped the run's actions."""
    log.error("guard %s failed in run %s: %s", name, run_id, reason)
    if _initialised_dsn is None:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("guard", name)
        scope.set_tag("run_id", run_id)
        scope.set_context("guard", {"rule": name, "count": count, "limit": limit, "why": reason})
        sentry_sdk.capture_message(f"cleanup guard {name} failed: {reason}", level="error")


def is_active() -> bool:
    """Whether `init_sentry` set Sentry up in this process."""
    if _initialised_dsn is None:
        return False
    import sentry_sdk

    return sentry_sdk.get_client().is_active()

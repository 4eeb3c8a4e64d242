"""A warnings step's context against moto, and who received the warnings SES accepted."""

from typing import Any

from cleanup_pipeline.actions.notify import NotifyContext
from cleanup_pipeline.aws.mailer import SendRateLimiter
from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.warning_email import render_warning
from tests.support.aws_state import sent_messages

LEASE = 3_600_000


def notify_context(
    clients: Any,
    settings: Any,
    as_of: int,
    *,
    run_id: str = "run-1",
    message: Any = None,
    **options: Any,
) -> NotifyContext:
    return NotifyContext(
        dynamodb=clients.dynamodb,
        sesv2=clients.sesv2,
        users_table=settings.users_table,
        message=message
        or render_warning(settings.product_name, settings.app_url, settings.email_domain, Policy()),
        limiter=options.pop("limiter", None) or SendRateLimiter(1000),
        run_id=run_id,
        as_of=as_of,
        policy=Policy(),
        claim_lease_ms=options.pop("claim_lease_ms", LEASE),
        **options,
    )


def recipients() -> list[str]:
    return sorted(a for m in sent_messages() for a in m.destinations["ToAddresses"])

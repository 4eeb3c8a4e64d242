"""Warning inactive users: claim, send, confirm — at most one warning per inactivity episode.

For each user still a notify candidate after a consistent re-read:
1. claim: a conditional write marks the item as being warned by this run; it fails if the item
   changed or another live run holds a claim, so two overlapping runs never both send;
2. send through SES, within the send rate;
3. confirm: `accountDeletionEmailSentAt` = the time SES accepted, and the claim is dropped.
If SES refuses the message, the claim is released and the next run tries again. If the answer is
unknown (the process died or the connection broke mid-send), the claim stays; once it is older
than the lease no run can still be sending it, and a later run warns that user.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cleanup_pipeline.actions.outcomes import SKIPPED, WARNED, FailureHook, Outcomes
from cleanup_pipeline.actions.recheck import email_of, recheck
from cleanup_pipeline.aws import users_table
from cleanup_pipeline.aws.mailer import NOT_ACCEPTED, SendRateLimiter, send_warning
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.decisions import NOTIFY, Policy
from cleanup_pipeline.core.warning_email import WarningEmail
from cleanup_pipeline.core.wire import Item

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifyContext:
    dynamodb: Any
    sesv2: Any
    users_table: str
    message: WarningEmail
    limiter: SendRateLimiter
    run_id: str
    as_of: int
    policy: Policy
    claim_lease_ms: int = 3_600_000
    workers: int = 8
    on_failure: FailureHook | None = None
    holds_table: str | None = None  # re-read with each batch when persistent holds are on


def _warn_one(ctx: NotifyContext, item: Item, outcomes: Outcomes) -> None:
    user_id = item["id"]["S"]
    step = "claim"
    try:
        now = now_ms()
        table = ctx.users_table
        if not users_table.claim_warning(
            ctx.dynamodb, table, item, ctx.run_id, now, now - ctx.claim_lease_ms
        ):
            outcomes.add(
                user_id, SKIPPED, step, "changed since read, or being warned by another run"
            )
            return
        step = "send"
        ctx.limiter.acquire()  # right before the send: the rate applies to the sends themselves
        try:
            accepted_at = send_warning(ctx.sesv2, ctx.message, email_of(item))
        except NOT_ACCEPTED:
            users_table.release_warning(ctx.dynamodb, table, user_id, ctx.run_id)
            raise
        step = "confirm"
        if not users_table.confirm_warning(ctx.dynamodb, table, user_id, ctx.run_id, accepted_at):
            raise RuntimeError("claim lost before confirmation")
        outcomes.add(user_id, WARNED)
    except Exception as error:  # per-user isolation: record, report, go on
        outcomes.fail(user_id, step, error, ctx.on_failure)


def warn_users(
    ctx: NotifyContext,
    user_ids: list[str],
    batch_size: int = 100,
    outcomes: Outcomes | None = None,
) -> Outcomes:
    """Warn each user; outcomes go to `outcomes` as they happen, so a caller can follow them."""
    outcomes = Outcomes(NOTIFY) if outcomes is None else outcomes
    with ThreadPoolExecutor(max_workers=ctx.workers) as pool:
        for start in range(0, len(user_ids), batch_size):
            batch = user_ids[start : start + batch_size]
            try:
                items, dropped = recheck(
                    ctx.dynamodb,
                    ctx.users_table,
                    batch,
                    NOTIFY,
                    ctx.as_of,
                    now_ms(),
                    ctx.policy,
                    ctx.holds_table,
                )
            except Exception as error:
                for user_id in batch:
                    outcomes.fail(user_id, "recheck", error, ctx.on_failure)
                continue
            for user_id, why in dropped.items():
                outcomes.add(user_id, SKIPPED, "recheck", why)
            list(pool.map(lambda item: _warn_one(ctx, item, outcomes), items.values()))
    return outcomes

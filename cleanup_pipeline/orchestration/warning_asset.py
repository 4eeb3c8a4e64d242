"""The warning emails: the notify action, gated by the guards.

Unlike the deletions, the warnings do not fan out into batches on several workers: SES's send
rate is one limit for the whole account, so parallel processes would each have to be given a
share of it and coordinate. One step sending with a pool of threads behind one rate limiter
already keeps SES at its full rate; more workers could not send any faster."""

import dagster as dg
import pandas as pd

from cleanup_pipeline.actions.notify import NotifyContext, warn_users
from cleanup_pipeline.actions.outcomes import DRY_RUN, FAILED, SKIPPED, WARNED, Outcomes
from cleanup_pipeline.aws.mailer import SendRateLimiter, account_send_rate, effective_send_rate
from cleanup_pipeline.core.guard_evaluation import GuardInputs
from cleanup_pipeline.core.progress import ProgressLog
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.core.warning_email import render_warning
from cleanup_pipeline.orchestration import guarding
from cleanup_pipeline.orchestration.failure_reporting import report_failures_of
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions
from cleanup_pipeline.orchestration.snapshot_assets import GROUP

# SES's send rate is one limit for the whole account: the pool (one slot, set in the instance's
# `concurrency: pools`) keeps two runs at once, which CLI runs may be, from sending together.
SES_SEND_POOL = "ses_send"


@dg.asset(group_name=GROUP, kinds={"ses"}, deps=["deletion_candidates"], pool=SES_SEND_POOL)
def warning_emails(
    context: dg.AssetExecutionContext,
    notify_candidates: pd.DataFrame,
    guard_inputs: GuardInputs,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> dg.Output[pd.DataFrame]:
    """One warning email per inactive user, within the SES send rate; the send time is recorded
    on the user only after SES accepted it. Runs only when every guard of the run passed, and
    checks them again on this run's own guard inputs."""
    user_ids = notify_candidates["id"].astype(str).tolist()
    outcomes = Outcomes(Decision.NOTIFY)
    rate = 0.0
    if run_options.dry_run:
        for user_id in user_ids:
            outcomes.add(user_id, DRY_RUN)
    elif user_ids:
        guarding.enforce_before_actions(
            guard_inputs,
            notify_candidates,
            Decision.NOTIFY,
            cleanup_policy,
            run_options.allow_mass_action,
            context.run.run_id,
            run_options.approved_run_id,
        )
        settings, clients = aws.settings(), aws.clients()
        rate = effective_send_rate(
            cleanup_policy.send_rate_per_second, account_send_rate(clients.sesv2)
        )
        notify = NotifyContext(
            dynamodb=clients.dynamodb,
            sesv2=clients.sesv2,
            users_table=settings.users_table,
            holds_table=settings.holds_table,
            message=render_warning(
                settings.product_name,
                settings.app_url,
                settings.email_domain,
                cleanup_policy.policy(),
            ),
            limiter=SendRateLimiter(rate),
            run_id=context.run.run_id,
            as_of=run_options.as_of_ms(context),
            policy=cleanup_policy.policy(),
            claim_lease_ms=cleanup_policy.warning_claim_lease_minutes * 60_000,
            workers=cleanup_policy.send_workers,
            on_failure=report_failures_of(context),
        )
        with ProgressLog(
            context.log.info,
            "warnings",
            total=len(user_ids),
            unit="users",
            interval=cleanup_policy.progress_log_seconds,
            count=lambda: len(outcomes.rows),
            details=lambda: f"sent {outcomes.count(WARNED):,} at up to {rate:g}/s",
        ):
            warn_users(notify, user_ids, cleanup_policy.action_batch_size, outcomes)
    return dg.Output(
        outcomes.frame(),
        metadata={
            "candidates": dg.MetadataValue.int(len(user_ids)),
            "notified": dg.MetadataValue.int(outcomes.count(WARNED)),
            str(SKIPPED): dg.MetadataValue.int(outcomes.count(SKIPPED)),
            str(FAILED): dg.MetadataValue.int(outcomes.count(FAILED)),
            "dry_run": dg.MetadataValue.bool(run_options.dry_run),
            "send_rate_per_second": dg.MetadataValue.float(rate),
        },
    )

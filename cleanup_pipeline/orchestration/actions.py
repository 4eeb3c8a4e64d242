"""What a run does to users: the warning emails, the deletion batches, the settling of deletions a
dead run left unfinished, and the purge of archived deletions past their restore window."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import dagster as dg
import pandas as pd

from cleanup_pipeline.actions import cascade
from cleanup_pipeline.actions.archive import Recovery
from cleanup_pipeline.actions.cascade import CascadeContext, RunReferences, Settled
from cleanup_pipeline.actions.ledger import forget
from cleanup_pipeline.actions.notify import NotifyContext, warn_users
from cleanup_pipeline.actions.outcomes import (
    DELETED,
    DELETED_BY_OTHER_RUN,
    DRY_RUN,
    FAILED,
    KEPT,
    KEPT_PARTIAL,
    SKIPPED,
    WARNED,
    FailureHook,
    Outcomes,
    empty_outcomes,
)
from cleanup_pipeline.actions.proof import VERIFY_STEP
from cleanup_pipeline.actions.purge import PurgeCounts, purge_expired
from cleanup_pipeline.aws import references
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.aws.mailer import SendRateLimiter, account_send_rate, effective_send_rate
from cleanup_pipeline.aws.requests_table import close_request, open_erasures
from cleanup_pipeline.aws.users_table import read_users
from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.data_map import FEATURES, Coverage, load_data_map, own_stores
from cleanup_pipeline.core.decisions import REQUEST
from cleanup_pipeline.core.guards import GuardInputs
from cleanup_pipeline.core.progress import ProgressLog
from cleanup_pipeline.core.recovery import VERIFIED
from cleanup_pipeline.core.reports import store_columns, store_totals
from cleanup_pipeline.core.requests import (
    ERASED,
    NO_SUCH_USER,
    OpenRequests,
    RequestStatus,
    erasure_fate,
)
from cleanup_pipeline.core.vocabulary import Decision, Outcome
from cleanup_pipeline.core.warning_email import render_warning
from cleanup_pipeline.observability.sentry import report_failure
from cleanup_pipeline.orchestration.guards import enforce_before_actions, refuse_unless_covered
from cleanup_pipeline.orchestration.jobs import GROUP, IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions


def report_failures_of(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> FailureHook:
    """The hook the warnings and the cascade call for each user who fails in this run."""
    run_id = context.run.run_id

    def report(user_id: str, step: str, error: BaseException) -> None:
        report_failure(user_id, step, run_id, error)

    return report


# SES's send rate is one limit for the whole account: the pool (one slot, set in the instance's
# `concurrency: pools`) keeps two runs at once, which CLI runs may be, from sending together.
SES_SEND_POOL = "ses_send"


# Unlike the deletions, the warnings do not fan out into batches on several workers: SES's send
# rate is one limit for the whole account, so parallel processes would each have to be given a
# share of it and coordinate. One step sending from a pool of threads behind one rate limiter
# already keeps SES at its full rate.
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
        enforce_before_actions(
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


def _context(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    refs: RunReferences,
    erasures: dict[str, str] | None = None,
) -> CascadeContext:
    """The cascade's context; with `erasures` ({user: erase request}), a person's own erasure,
    under the erasure's restore window."""
    clients, settings = aws.clients(), aws.settings()
    archive = open_archive(settings.archive_location, clients.s3)
    recovery = Recovery(archive, context.run.run_id, refs.carried, run_options.approved_run_id)
    return CascadeContext(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        settings=settings if erasures is None else settings.for_erasure(),
        as_of=run_options.as_of_ms(context),
        policy=cleanup_policy.policy(),
        on_failure=report_failures_of(context),
        recovery=recovery if erasures is None else replace(recovery, requests=erasures),
        mapped=load_data_map(settings),  # checked by the run's first step
        lists=refs.lists,
        scanned=refs.attributes,
        erasures=erasures,
    )


def _batch_outcomes(
    context: dg.OpExecutionContext,
    user_ids: list[str],
    refs: RunReferences,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    erasures: dict[str, str] | None = None,
) -> Outcomes:
    """One batch of deletions (with `erasures`, of erasures) through the whole cascade, its
    stages logged as they end; a dry run only lists the batch."""
    action = Decision.DELETE if erasures is None else Decision.ERASE
    if run_options.dry_run:
        outcomes = Outcomes(action)
        for user_id in user_ids:
            outcomes.add(user_id, DRY_RUN)
        return outcomes
    ctx = _context(context, aws, cleanup_policy, run_options, refs, erasures)
    name = "deletion" if erasures is None else "erasure"
    with ProgressLog(
        context.log.info,
        f"{name} {context.get_mapping_key()} ({len(user_ids):,} users)",
        total=len(cascade.STAGES),
        unit="stages",
        interval=cleanup_policy.progress_log_seconds,
    ) as progress:
        return cascade.delete_accounts(
            ctx, user_ids, refs.features, on_stage=lambda stage: progress.advance(stage=stage)
        )


@dg.asset(
    group_name=GROUP,
    kinds={"s3", "dynamodb"},
    retry_policy=IDEMPOTENT_STEP_RETRY,
    # After the first step checked the data map and its stores: nothing is written before.
    deps=["users_snapshot"],
    check_specs=[
        dg.AssetCheckSpec("every_unfinished_deletion_settled", asset="unfinished_deletions")
    ],
)
def unfinished_deletions(
    context: dg.AssetExecutionContext,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> Iterator[dg.Output[Settled] | dg.AssetCheckResult]:
    """Deletions that runs which died left half-done, settled first, even in a run that a guard
    then stops: the `deleted` event of each user whose item is gone (and, without a restore
    window, every version under their folder removed); everything hidden or removed given back
    to each user who is no longer a delete candidate; the deletions still under way carried on
    by this run's cascade. A dry run changes nothing."""
    if run_options.dry_run:
        settled = Settled()
    else:
        settled = cascade.settle_unfinished(
            _context(context, aws, cleanup_policy, run_options, RunReferences())
        )
    for user_id, keys in settled.lost_files.items():
        context.log.warning(f"{user_id}: given back without {len(keys)} files: {keys}")
    if settled.recorded_late:
        context.log.info(f"recorded {settled.recorded_late} deletions of runs that died")
    counts = {
        "recorded_late": settled.recorded_late,
        "given_back": len(settled.given_back),
        "given_back_partially": len(settled.lost_files),
        "folders_emptied": len(settled.emptied),
        "verified": len(settled.verified),
        "carried": len(settled.carried),
        "failed": len(settled.failed),
    }
    yield dg.Output(
        settled,
        metadata={
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
            "dry_run": dg.MetadataValue.bool(run_options.dry_run),
        },
    )
    yield dg.AssetCheckResult(
        check_name="every_unfinished_deletion_settled",
        passed=not settled.failed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failed_users": len(settled.failed)},
        description="; ".join(f"{u}: {why}" for u, why in sorted(settled.failed.items()))
        or "nothing left unsettled",
    )


# The deletion cascade fans out in batches (`deletion_batch_size`): each batch runs the whole
# cascade in one op, so an executor that runs steps apart (multiprocess, ECS, Kubernetes) runs
# batches side by side, one process or task per batch rather than one per cascade step; steps on
# other machines exchange their values through the S3 I/O manager of jobs.py. Features by proposer
# (and the keys of the candidates' items in every other attribute store) are read once per run
# and shared by every batch; each batch reads the scoreboards right before pruning them. Between
# steps only ids (and item keys) flow in and outcomes out: the re-read user items never leave the
# batch's process, and no email address is ever stored.
@dg.op(
    ins={"warnings_gate": dg.In(dg.Nothing)},
    retry_policy=IDEMPOTENT_STEP_RETRY,
    out={"batches": dg.DynamicOut(list[str]), "candidate_ids": dg.Out(list[str])},
)
def split_deletion_candidates(
    context: dg.OpExecutionContext,
    candidates: pd.DataFrame,
    guard_inputs: GuardInputs,
    app_stores: Coverage,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> Iterator[dg.Output[list[str]] | dg.DynamicOutput[list[str]]]:
    """The candidates' ids in batches of `deletion_batch_size`, after the run's guards passed
    once more on this run's own guard inputs, and the coverage of the data map found every
    table and bucket of the app mapped; each batch runs the cascade on its own."""
    user_ids = candidates["id"].astype(str).tolist()
    if user_ids and not run_options.dry_run:
        refuse_unless_covered(app_stores)
        enforce_before_actions(
            guard_inputs,
            candidates,
            Decision.DELETE,
            cleanup_policy,
            run_options.allow_mass_action,
            context.run.run_id,
            run_options.approved_run_id,
        )
    batches = cascade.split_into_batches(user_ids, cleanup_policy.deletion_batch_size)
    context.log.info(f"{len(user_ids)} delete candidates in {len(batches)} batches")
    yield dg.Output(sorted(set(user_ids)), output_name="candidate_ids")
    for number, batch in enumerate(batches):
        yield dg.DynamicOutput(batch, mapping_key=f"batch_{number:04d}", output_name="batches")


@dg.op(retry_policy=IDEMPOTENT_STEP_RETRY)
def read_references(
    candidate_ids: list[str], unfinished: Settled, aws: AwsEnvironment, run_options: RunOptions
) -> RunReferences:
    """The features each candidate proposed, the items naming each candidate in every other
    `attribute` store of the data map and, for each `list` store without named items, the items
    holding a candidate's entry, each read once for the whole run (one Scan of each table),
    keeping only what concerns the candidates; with the deletions that runs which died began
    and this run carries on."""
    if run_options.dry_run:
        return RunReferences()
    settings, clients = aws.settings(), aws.clients()
    data_map = load_data_map(settings)
    features = (
        references.features_by_proposer(clients.dynamodb, settings.features_table, candidate_ids)
        if candidate_ids and FEATURES in own_stores(data_map, settings)
        else {}
    )
    return RunReferences(
        features=features,
        lists=cascade.run_lists(clients.dynamodb, data_map, settings, candidate_ids),
        attributes=cascade.scan_attribute_stores(clients, data_map, settings, candidate_ids),
        carried=unfinished.carried,
        recorded_late=unfinished.recorded_late,
        verified_late=len(unfinished.verified),
    )


def _counts(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    counts = frame["outcome"].value_counts().to_dict()
    ledger = {
        f"ledger_{name}": dg.MetadataValue.int(int(value))
        for name, value in frame.attrs.get("ledger", {}).items()
    }
    return {
        "candidates": dg.MetadataValue.int(len(frame)),
        **{f"{k}": dg.MetadataValue.int(int(v)) for k, v in counts.items()},
        VERIFIED: dg.MetadataValue.int(int(frame.attrs.get(VERIFIED, 0))),
        **ledger,
        # What the run removed from each store, by name, for the UI to plot across runs.
        **{key: dg.MetadataValue.int(n) for key, n in store_totals(frame).items()},
    }


@dg.op(retry_policy=IDEMPOTENT_STEP_RETRY)
def delete_account_batch(
    context: dg.OpExecutionContext,
    user_ids: list[str],
    refs: RunReferences,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> pd.DataFrame:
    """One batch through the whole cascade: what goes recorded in the archive, every user's
    data, then, last, the user item of those who are still delete candidates, with its ledger
    event. A dry run only lists the batch."""
    outcomes = _batch_outcomes(context, user_ids, refs, aws, cleanup_policy, run_options)
    frame = outcomes.frame(aws.store_names())
    # Travels with the frame to `gather_deletion_outcomes` (the I/O manager pickles attrs).
    frame.attrs[VERIFIED] = outcomes.verified
    context.add_output_metadata(_counts(frame))
    return frame


# Outcomes after which nothing of a deletion is left for a later run to do.
_SETTLED = (DELETED, DELETED_BY_OTHER_RUN, KEPT, KEPT_PARTIAL)


@dg.op(retry_policy=IDEMPOTENT_STEP_RETRY)
def gather_deletion_outcomes(
    context: dg.OpExecutionContext,
    parts: list[pd.DataFrame],
    refs: RunReferences,
    aws: AwsEnvironment,
) -> pd.DataFrame:
    """Every batch's outcomes in one frame, for the report, with the run's `deleted` ledger
    events: one per deleted user, and those recorded for runs that died. The deletions this run
    carried on and settled leave the journals of the runs that began them (so that no later run
    gives back again what this one already gave back)."""
    verified = sum(int(part.attrs.get(VERIFIED, 0)) for part in parts)
    frame = pd.concat(parts, ignore_index=True) if parts else empty_outcomes(Decision.DELETE)
    frame = store_columns(frame, aws.store_names())  # every store counted, 0 included
    settled_users = set(frame.loc[frame["outcome"].isin(list(_SETTLED)), "id"].astype(str))
    finished = {pair for pair in refs.carried if pair[0] in settled_users}
    if finished:
        settings, clients = aws.settings(), aws.clients()
        archive = open_archive(settings.archive_location, clients.s3)
        forget(archive, finished, except_run=context.run.run_id)
    # A user whose proof found something left was deleted all the same: the ledger says so.
    unproved = (frame["outcome"] == FAILED) & (frame["step"] == VERIFY_STEP)
    deleted = int((frame["outcome"] == DELETED).sum() + unproved.sum())
    frame.attrs[VERIFIED] = verified
    frame.attrs["ledger"] = {
        "deleted": deleted,
        "recorded_late": refs.recorded_late,
        VERIFIED: verified,
        "verified_late": refs.verified_late,
    }
    context.add_output_metadata(_counts(frame))
    return frame


@dg.graph_asset(
    group_name=GROUP,
    ins={
        "deletion_candidates": dg.AssetIn(),
        "guard_inputs": dg.AssetIn(),
        # Gated by the warning guards too: any failed guard stops every action of the run.
        "notify_candidates": dg.AssetIn(dagster_type=dg.Nothing),
        "unfinished_deletions": dg.AssetIn(),
        # Gated by the coverage of the data map, which stops the deletions alone.
        "app_stores": dg.AssetIn(),
    },
)
def deleted_accounts(
    deletion_candidates: pd.DataFrame,
    guard_inputs: GuardInputs,
    notify_candidates: None,
    unfinished_deletions: Settled,
    app_stores: Coverage,
) -> pd.DataFrame:
    """Accounts deleted with everything they left behind: files, feature and scoreboard
    references; their address kept in the emails table; the user item deleted last; then each
    deleted user looked up again in every store (`verified`: found in none; a user with
    something left fails, and the next run removes it). The candidates run in batches, side by
    side where the executor allows. Runs only when every guard of the run passed and every table
    and bucket of the app is in the data map."""
    batches, candidate_ids = split_deletion_candidates(
        candidates=deletion_candidates,
        guard_inputs=guard_inputs,
        app_stores=app_stores,
        warnings_gate=notify_candidates,
    )
    refs = read_references(candidate_ids, unfinished_deletions)
    outcomes = batches.map(lambda user_ids: delete_account_batch(user_ids, refs))
    return gather_deletion_outcomes(outcomes.collect(), refs)


@dg.asset(
    group_name=GROUP,
    kinds={"s3"},
    deps=["deleted_accounts"],
    check_specs=[dg.AssetCheckSpec("every_expired_deletion_purged", asset="purged_deletions")],
)
def purged_deletions(
    context: dg.AssetExecutionContext, aws: AwsEnvironment, run_options: RunOptions
) -> Iterator[dg.Output[dict[str, int]] | dg.AssetCheckResult]:
    """Deletions whose restore window ended, gone for good: every version and delete marker
    under each user's folder in every `s3_prefix` store, then their manifests; a `purged`
    event in the ledger for each. A dry run only counts. What fails stays for the next run."""
    settings, clients = aws.settings(), aws.clients()
    archive = open_archive(settings.archive_location, clients.s3)
    try:
        counts = purge_expired(
            archive,
            clients.s3,
            clients.dynamodb,
            settings,
            context.run.run_id,
            dry_run=run_options.dry_run,
            data_map=load_data_map(settings),  # checked by the run's first step
        )
        error = None
    except Exception as raised:  # the archive unreadable: nothing purged, the next run retries
        counts, error = PurgeCounts(), f"{type(raised).__name__}: {raised}"
        context.log.error(f"purge not done, left for the next run: {error}")
    summary = counts.as_dict()
    failed = counts.failed_users + (1 if error else 0)
    yield dg.Output(
        summary,
        metadata={
            **{name: dg.MetadataValue.int(value) for name, value in summary.items()},
            "dry_run": dg.MetadataValue.bool(run_options.dry_run),
            "restore_window_days": dg.MetadataValue.float(settings.restore_window_days),
        },
    )
    yield dg.AssetCheckResult(
        check_name="every_expired_deletion_purged",
        passed=failed == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failed_users": counts.failed_users, "waiting_users": counts.waiting_users},
        description=error or f"{failed} purges failed; the next run retries them",
    )


# A person's own erasure runs through the same cascade as the deletions of inactive users, in
# its own batches, with the erasure's restore window; its request is closed once verified.
@dg.op(
    ins={"notify_gate": dg.In(dg.Nothing), "delete_gate": dg.In(dg.Nothing)},
    retry_policy=IDEMPOTENT_STEP_RETRY,
    out={
        "batches": dg.DynamicOut(list[str]),
        "candidate_ids": dg.Out(list[str]),
        "requests": dg.Out(dict[str, str]),
    },
)
def split_erasure_candidates(
    context: dg.OpExecutionContext,
    candidates: pd.DataFrame,
    guard_inputs: GuardInputs,
    app_stores: Coverage,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> Iterator[dg.Output[Any] | dg.DynamicOutput[list[str]]]:
    """The erase candidates' ids in batches of `deletion_batch_size`, with {user: request},
    after the run's guards (`erasures_within_limit` among them) passed once more and the data
    map's coverage found every table and bucket of the app mapped."""
    user_ids = candidates["id"].astype(str).tolist()
    if user_ids and not run_options.dry_run:
        refuse_unless_covered(app_stores)
        enforce_before_actions(
            guard_inputs,
            candidates,
            Decision.ERASE,
            cleanup_policy,
            run_options.allow_mass_action,
            context.run.run_id,
            run_options.approved_run_id,
        )
    requests = dict(zip(user_ids, candidates[REQUEST].astype(str), strict=True))
    batches = cascade.split_into_batches(user_ids, cleanup_policy.deletion_batch_size)
    context.log.info(f"{len(user_ids)} erase candidates in {len(batches)} batches")
    yield dg.Output(sorted(set(user_ids)), output_name="candidate_ids")
    yield dg.Output(requests, output_name="requests")
    for number, batch in enumerate(batches):
        yield dg.DynamicOutput(batch, mapping_key=f"batch_{number:04d}", output_name="batches")


@dg.op(retry_policy=IDEMPOTENT_STEP_RETRY)
def erase_account_batch(
    context: dg.OpExecutionContext,
    user_ids: list[str],
    requests: dict[str, str],
    refs: RunReferences,
    aws: AwsEnvironment,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
) -> pd.DataFrame:
    """One batch of erasures through the whole cascade, as `delete_account_batch` does, with
    the erasure's restore window; each user re-checked right before (request still open, not
    held, not paying); the ledger events name the request. A dry run only lists the batch."""
    asked = {user_id: requests[user_id] for user_id in user_ids}
    outcomes = _batch_outcomes(context, user_ids, refs, aws, cleanup_policy, run_options, asked)
    frame = outcomes.frame()
    frame.attrs[VERIFIED] = outcomes.verified
    context.add_output_metadata(_counts(frame))
    return frame


@dg.op(retry_policy=IDEMPOTENT_STEP_RETRY)
def close_erase_requests(
    context: dg.OpExecutionContext,
    outcomes: pd.DataFrame,
    requests: dict[str, str],
    unfinished: Settled,
    found: OpenRequests,
    aws: AwsEnvironment,
    run_options: RunOptions,
) -> pd.DataFrame:
    """Each erase request `done` (with `done_at` and this run) once its user's deletion is
    verified, and each open one whose user does not exist (a consistent read) `done` with
    `no such user`, or as erased when this run finished and verified the deletion a run left
    unproved (a leftover); one whose deletion is still unsettled stays open, as does any other,
    with why in the report. The requests are those the run read (`found`); a request closed
    since then is left as it is. A dry run writes nothing."""
    settings, clients = aws.settings(), aws.clients()
    table = settings.requests_table
    frame = outcomes.copy()
    frame.attrs = dict(outcomes.attrs)
    status, reasons = [], []
    closing: dict[str, tuple[str, str]] = {}
    for row in frame.itertuples(index=False):
        fate, why = erasure_fate(str(row.outcome), _text(row.step), _text(row.error))
        if fate == RequestStatus.DONE and not run_options.dry_run:
            closing[str(row.id)] = (requests[str(row.id)], why)
        status.append(str(fate))
        reasons.append(why)
    frame[REQUEST] = pd.array([requests.get(str(u)) for u in frame["id"]], dtype="string")
    frame["request_status"] = pd.array(status, dtype="string")
    frame["request_reason"] = pd.array(reasons, dtype="string")
    stored = list(found.requests) if table is not None else []
    others = {u: r for u, r in open_erasures(stored).items() if u not in requests}
    found = read_users(clients.dynamodb, settings.users_table, sorted(others)) if others else {}
    missing = sorted(set(others) - set(found))
    unsettled = {**{u: "not finished yet" for u, _ in unfinished.carried}, **unfinished.failed}
    fates = {
        u: (RequestStatus.OPEN, f"deletion not verified yet: {unsettled[u]}")
        if u in unsettled
        else (RequestStatus.DONE, ERASED if u in unfinished.verified else NO_SUCH_USER)
        for u in missing
    }
    for user_id, (fate, why) in fates.items():
        if fate == RequestStatus.DONE:
            closing[user_id] = (others[user_id], why)
    extra = pd.DataFrame(
        {
            "id": missing,
            "action": str(Decision.ERASE),
            "outcome": str(DRY_RUN if run_options.dry_run else Outcome.NO_ACTION),
            "step": None,
            "error": None,
            REQUEST: [others[u] for u in missing],
            "request_status": [
                str(RequestStatus.OPEN if run_options.dry_run else fates[u][0]) for u in missing
            ],
            "request_reason": [
                f"dry run: {fates[u][1]}" if run_options.dry_run else fates[u][1] for u in missing
            ],
        }
    ).astype("string")
    if missing:
        frame = pd.concat([frame, extra], ignore_index=True)
        frame.attrs = dict(outcomes.attrs)
    done = 0
    if not run_options.dry_run and table is not None:
        done_at = now_ms()
        by_id = {request.id: request for request in stored}
        for user_id, (request_id, why) in sorted(closing.items()):
            request = by_id.get(request_id)
            try:
                if request is not None and close_request(
                    clients.dynamodb,
                    table,
                    request,
                    RequestStatus.DONE,
                    reason=why,
                    done_at=done_at,
                    run_id=context.run.run_id,
                ):
                    done += 1
            except Exception as error:  # the request stays open: the next run closes it
                report_failure(user_id, "erase.request", context.run.run_id, error)
                hit = frame["id"] == user_id
                frame.loc[hit, "request_status"] = str(RequestStatus.OPEN)
                frame.loc[hit, "request_reason"] = f"{why}; not recorded: {type(error).__name__}"
    frame.attrs["requests_done"] = done
    context.add_output_metadata(
        {
            **_counts(frame),
            "requests_done": dg.MetadataValue.int(done),
            "no_such_user": dg.MetadataValue.int(len(missing)),
        }
    )
    return frame


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


@dg.graph_asset(
    group_name=GROUP,
    ins={
        "erasure_candidates": dg.AssetIn(),
        "guard_inputs": dg.AssetIn(),
        # Gated by every guard of the run, as the deletions are.
        "notify_candidates": dg.AssetIn(dagster_type=dg.Nothing),
        "deletion_candidates": dg.AssetIn(dagster_type=dg.Nothing),
        "unfinished_deletions": dg.AssetIn(),
        "app_stores": dg.AssetIn(),
        # The run's one read of the requests table, to close what this run answered.
        "erasure_requests": dg.AssetIn(),
    },
)
def erased_accounts(
    erasure_candidates: pd.DataFrame,
    guard_inputs: GuardInputs,
    notify_candidates: None,
    deletion_candidates: None,
    unfinished_deletions: Settled,
    app_stores: Coverage,
    erasure_requests: OpenRequests,
) -> pd.DataFrame:
    """Accounts erased because the person asked (an open erase request): the same cascade and
    proof of deletion as `deleted_accounts`, without a warning, with the erasure's restore
    window (`ERASURE_RESTORE_WINDOW_DAYS`, 0 by default: gone at once); each request `done`
    once its deletion is verified, or when its user does not exist."""
    batches, candidate_ids, requests = split_erasure_candidates(
        candidates=erasure_candidates,
        guard_inputs=guard_inputs,
        app_stores=app_stores,
        notify_gate=notify_candidates,
        delete_gate=deletion_candidates,
    )
    refs = read_references(candidate_ids, unfinished_deletions)
    outcomes = batches.map(lambda user_ids: erase_account_batch(user_ids, requests, refs))
    gathered = gather_deletion_outcomes(outcomes.collect(), refs)
    return close_erase_requests(gathered, requests, unfinished_deletions, erasure_requests)

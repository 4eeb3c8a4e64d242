"""What a run decides from: the users snapshot and its checks, the active holds, every user's
decision, and the two candidate sets."""

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.aws.bucket import VersioningNotEnabledError, require_versioning
from cleanup_pipeline.aws.holds_table import scan_holds
from cleanup_pipeline.aws.requests_table import open_erasures
from cleanup_pipeline.aws.stores import checked_data_map
from cleanup_pipeline.aws.users_table import scan_snapshot
from cleanup_pipeline.core.as_of import format_ms, now_ms
from cleanup_pipeline.core.data_map import S3_PREFIX, DataMapError
from cleanup_pipeline.core.decisions import (
    DECISION_DTYPE,
    DELETE,
    ERASE,
    ID,
    NOTIFY,
    REQUEST,
    REQUIRED_COLUMNS,
    TIMESTAMP_COLUMNS,
    classify,
    count_decisions,
)
from cleanup_pipeline.core.decisions import active_holds as holds_in_force
from cleanup_pipeline.core.guards import APPROVED_RUN_TAG, NOT_APPROVED, not_approved_counts
from cleanup_pipeline.core.progress import ProgressLog
from cleanup_pipeline.core.requests import OpenRequests
from cleanup_pipeline.core.vocabulary import Decision
from cleanup_pipeline.orchestration.jobs import GROUP, IDEMPOTENT_STEP_RETRY, approve
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions

_timestamps = {name: pa.Column("Int64", nullable=True) for name in TIMESTAMP_COLUMNS}

DECISIONS_SCHEMA = pa.DataFrameSchema(
    {
        ID: pa.Column("string", nullable=True),
        "email_masked": pa.Column("string", nullable=True),
        "decision": pa.Column(DECISION_DTYPE),
        "reason": pa.Column("category"),
        **_timestamps,
        "days_inactive": pa.Column("Int64", nullable=True),
        "hold_reason": pa.Column("string", nullable=True),
        REQUEST: pa.Column("string", nullable=True),
        NOT_APPROVED: pa.Column(bool),
    },
    strict=True,
)


def _candidates_schema(decision: Decision) -> pa.DataFrameSchema:
    # An erase candidate carries the request it answers.
    requests = {REQUEST: pa.Column("string", nullable=False)} if decision == ERASE else {}
    return pa.DataFrameSchema(
        {
            ID: pa.Column("string", nullable=False, unique=True),
            "email_masked": pa.Column("string", nullable=False),
            "decision": pa.Column(DECISION_DTYPE, pa.Check.isin([str(decision)])),
            "reason": pa.Column("category"),
            **_timestamps,
            "days_inactive": pa.Column("Int64", nullable=False),
            **requests,
        },
        strict=True,
    )


def _dagster_type(name: str, schema: pa.DataFrameSchema, description: str) -> dg.DagsterType:
    def check(_context: dg.TypeCheckContext, value: object) -> dg.TypeCheck:
        if not isinstance(value, pd.DataFrame):
            return dg.TypeCheck(False, description=f"expected a DataFrame, got {type(value)}")
        try:
            schema.validate(value, lazy=True)
        except pa.errors.SchemaErrors as error:
            return dg.TypeCheck(False, description=str(error.failure_cases.head(20)))
        return dg.TypeCheck(True, metadata={"rows": dg.MetadataValue.int(len(value))})

    return dg.DagsterType(type_check_fn=check, name=name, description=description)


DecisionsFrame = _dagster_type(
    "DecisionsFrame", DECISIONS_SCHEMA, "One row per scanned user with its decision and reason."
)
NotifyCandidates = _dagster_type(
    "NotifyCandidates", _candidates_schema(Decision.NOTIFY), "Users to warn; no email addresses."
)
DeletionCandidates = _dagster_type(
    "DeletionCandidates",
    _candidates_schema(Decision.DELETE),
    "Users to delete; no email addresses.",
)
ErasureCandidates = _dagster_type(
    "ErasureCandidates",
    _candidates_schema(ERASE),
    "Users to erase at their own request, with the request; no email addresses.",
)


PREVIEW_ROWS = 20
PREVIEW_COLUMNS = ["id", "email_masked", "reason", "days_inactive"]


def candidates_preview(rows: pd.DataFrame) -> dg.MetadataValue:
    head = rows[PREVIEW_COLUMNS].head(PREVIEW_ROWS).astype(object).where(lambda f: f.notna(), "")
    return dg.MetadataValue.md(head.to_markdown(index=False) if len(head) else "(none)")


@dg.asset(group_name=GROUP, kinds={"dynamodb"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def users_snapshot(
    context: dg.AssetExecutionContext, aws: AwsEnvironment, cleanup_policy: CleanupPolicy
) -> dg.Output[pd.DataFrame]:
    """Every user's decision attributes, read by a parallel Scan with a projection. Email
    addresses are not kept: only whether one is present and its masked form. Checked here,
    first: the data map, and that each table, index and bucket it names exists; with a restore
    window, that every bucket of an `s3_prefix` store keeps deleted files as versions."""
    settings = aws.settings()  # fails here, before any AWS call, if configuration is missing
    try:
        data_map = checked_data_map(aws.clients(), settings)
    except DataMapError as error:  # configuration: retrying cannot help
        raise dg.Failure(description=str(error), allow_retries=False) from None
    if settings.needs_versioning:
        try:
            for bucket in dict.fromkeys(s.bucket for s in data_map.of_kind(S3_PREFIX)):
                require_versioning(aws.clients().s3, bucket)
        except VersioningNotEnabledError as error:  # configuration: retrying cannot help
            raise dg.Failure(description=str(error), allow_retries=False) from error
    with ProgressLog(
        context.log.info, "users scanned", interval=cleanup_policy.progress_log_seconds
    ) as progress:
        snapshot = scan_snapshot(
            aws.clients().dynamodb,
            settings.users_table,
            segments=cleanup_policy.scan_segments,
            on_page=progress.advance,
        )
    malformed = int(snapshot["malformed"].notna().sum())
    context.log.info(f"scanned {len(snapshot)} users; {malformed} with malformed values")
    return dg.Output(
        snapshot,
        metadata={
            "users": dg.MetadataValue.int(len(snapshot)),
            "malformed": dg.MetadataValue.int(malformed),
            "scan_segments": dg.MetadataValue.int(cleanup_policy.scan_segments),
            "table": dg.MetadataValue.text(settings.users_table),
        },
    )


@dg.asset_check(asset=users_snapshot, blocking=True)
def users_snapshot_not_empty(users_snapshot: pd.DataFrame) -> dg.AssetCheckResult:
    """An empty users table means a wrong table or region, never "nobody to clean up"."""
    return dg.AssetCheckResult(
        passed=len(users_snapshot) > 0, metadata={"users": len(users_snapshot)}
    )


@dg.asset_check(asset=users_snapshot, blocking=True)
def user_ids_unique(users_snapshot: pd.DataFrame) -> dg.AssetCheckResult:
    """A scan returns each key once; a repeated id means the snapshot cannot be trusted."""
    ids = users_snapshot["id"].dropna()
    duplicated = int(ids.duplicated().sum())
    return dg.AssetCheckResult(
        passed=duplicated == 0,
        metadata={"duplicated_ids": duplicated, "sample": ", ".join(ids[ids.duplicated()][:5])},
    )


@dg.asset_check(asset=users_snapshot, blocking=True)
def required_columns_present(users_snapshot: pd.DataFrame) -> dg.AssetCheckResult:
    """Every column the decision rules read is in the snapshot."""
    missing = [column for column in REQUIRED_COLUMNS if column not in users_snapshot.columns]
    return dg.AssetCheckResult(passed=not missing, metadata={"missing": ", ".join(missing)})


_PREVIEW_ROWS = 20


def holds_frame(held: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"id": list(held), "reason": list(held.values())}, dtype="string[pyarrow]")


def holds_of(frame: pd.DataFrame) -> dict[str, str]:
    """{user id: reason} back from the asset's frame."""
    return dict(zip(frame["id"].astype(str), frame["reason"].astype(str), strict=True))


@dg.asset(group_name=GROUP, kinds={"dynamodb"}, retry_policy=IDEMPOTENT_STEP_RETRY)
def active_holds(context: dg.AssetExecutionContext, aws: AwsEnvironment) -> dg.Output[pd.DataFrame]:
    """Users an operator put on hold in the holds table (`HOLDS_TABLE_NAME`), whose hold has not
    expired: exempt from every action of this run, with the hold's reason. Each batch re-reads
    its users' holds before acting, so a hold added later in the run still protects them."""
    settings = aws.settings()
    if settings.holds_table is None:
        return dg.Output(
            holds_frame({}),
            metadata={"held": dg.MetadataValue.int(0), "table": dg.MetadataValue.text("(none)")},
        )
    stored = scan_holds(aws.clients().dynamodb, settings.holds_table)
    held = holds_in_force(stored, now_ms())
    context.log.info(f"{len(held)} active holds ({len(stored) - len(held)} expired)")
    preview = "\n".join(f"| {uid} | {why} |" for uid, why in list(held.items())[:_PREVIEW_ROWS])
    return dg.Output(
        holds_frame(held),
        metadata={
            "held": dg.MetadataValue.int(len(held)),
            "expired": dg.MetadataValue.int(len(stored) - len(held)),
            "table": dg.MetadataValue.text(settings.holds_table),
            "preview": dg.MetadataValue.md(
                f"| user | reason |\n|---|---|\n{preview}" if held else "(none)"
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    dagster_type=DecisionsFrame,
    kinds={"pandas"},
    retry_policy=IDEMPOTENT_STEP_RETRY,
)
def user_decisions(
    context: dg.AssetExecutionContext,
    users_snapshot: pd.DataFrame,
    active_holds: pd.DataFrame,
    # The run's one read of the requests table: one that cannot be read stops the run there,
    # before any action, as the holds do.
    erasure_requests: OpenRequests,
    cleanup_policy: CleanupPolicy,
    run_options: RunOptions,
    reports_s3: S3Resource,
) -> dg.Output[pd.DataFrame]:
    """The decision rules applied to every user at the run's `as_of`: invalid, exempt, active,
    waiting, notify or delete, each with its reason; held users (the holds table and
    `exempt_user_ids`) are exempt, with why they are held. With `REQUESTS_TABLE_NAME`, a user
    with an open erase request is `erase` before the inactivity rules, unless invalid, held or
    paying (the request stays open, and the report says why). With `approved_run_id`,
    candidates who were not the same kind of candidate in that run's report are `not_approved`."""
    as_of = run_options.as_of_ms(context)
    # Recorded on the run whatever launched it (UI, schedule or CLI), so history shows it.
    tags = {
        "as_of": format_ms(as_of),
        "cleanup_pipeline/dry_run": str(run_options.dry_run).lower(),
        "cleanup_pipeline/allow_mass_action": str(run_options.allow_mass_action).lower(),
    }
    if run_options.approved_run_id:
        tags[APPROVED_RUN_TAG] = run_options.approved_run_id
    context.instance.add_run_tags(context.run.run_id, tags)
    now = now_ms()
    policy = cleanup_policy.policy()
    erasures = open_erasures(erasure_requests.requests)
    decisions = approve(
        context,
        classify(users_snapshot, as_of, now, policy, holds_of(active_holds), erasures),
        run_options.approved_run_id,
        cleanup_policy.approval_max_age_days,
        reports_s3.get_client,
    )
    counts = {**count_decisions(decisions), **not_approved_counts(decisions)}
    reasons = decisions.groupby(["decision", "reason"], observed=True).size()
    return dg.Output(
        decisions,
        metadata={
            "as_of": dg.MetadataValue.text(format_ms(as_of)),
            "approved_run_id": dg.MetadataValue.text(run_options.approved_run_id or "(none)"),
            "erase_requests": dg.MetadataValue.int(len(erasures)),
            **{name: dg.MetadataValue.int(n) for name, n in counts.items()},
            "by_reason": dg.MetadataValue.md(
                "| decision | reason | users |\n|---|---|---|\n"
                + "\n".join(f"| {d} | {r} | {n} |" for (d, r), n in reasons.items())
            ),
        },
    )


# Columns of the decisions frame that say nothing about a candidate (who is held, and why).
_NOT_FOR_CANDIDATES = ["hold_reason", NOT_APPROVED]


def _candidates(decisions: pd.DataFrame, decision: Decision) -> dg.Output[pd.DataFrame]:
    """The users to act on: candidates of `decision`, without those the approval left out."""
    chosen = (decisions["decision"] == decision).to_numpy(dtype=bool)
    if NOT_APPROVED in decisions.columns:
        chosen = chosen & ~decisions[NOT_APPROVED].to_numpy(dtype=bool)
    rows = decisions[chosen].reset_index(drop=True)
    unused = [*_NOT_FOR_CANDIDATES, *([] if decision == ERASE else [REQUEST])]
    rows = rows.drop(columns=[c for c in unused if c in rows.columns])
    rows = rows.astype({"email_masked": "string", "id": "string"})
    return dg.Output(
        rows,
        metadata={"count": dg.MetadataValue.int(len(rows)), "preview": candidates_preview(rows)},
    )


def _candidate_asset(
    name: str, decision: Decision, dagster_type: dg.DagsterType, description: str
) -> dg.AssetsDefinition:
    """The users of one decision, typed, with their count and a masked preview."""

    @dg.asset(
        name=name,
        group_name=GROUP,
        dagster_type=dagster_type,
        kinds={"pandas"},
        retry_policy=IDEMPOTENT_STEP_RETRY,
        description=description,
    )
    def candidates(user_decisions: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        return _candidates(user_decisions, decision)

    return candidates


notify_candidates = _candidate_asset(
    "notify_candidates",
    NOTIFY,
    NotifyCandidates,
    "Users inactive past the warning threshold who have not been warned in this episode.",
)
deletion_candidates = _candidate_asset(
    "deletion_candidates",
    DELETE,
    DeletionCandidates,
    "Users warned more than the grace period ago who never came back.",
)
erasure_candidates = _candidate_asset(
    "erasure_candidates",
    ERASE,
    ErasureCandidates,
    "Users who asked to be erased (an open erase request), neither held nor paying: erased "
    "whatever their activity, without a warning.",
)

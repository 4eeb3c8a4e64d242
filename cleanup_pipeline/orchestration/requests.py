"""Requests from the people themselves in Dagster: the open requests every run reads, with their
deadline counts (numbers the UI plots across runs), a table of what is due when, the check that
fails on an overdue request and its alert; and the jobs that open, list and answer requests from
the UI. No email address is read or shown: a request names its user by id only."""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from cleanup_pipeline.actions.export import answer_export_request
from cleanup_pipeline.aws.requests_table import new_request_id, open_request, scan_requests
from cleanup_pipeline.core.as_of import format_ms, now_ms
from cleanup_pipeline.core.data_map import DataMapError
from cleanup_pipeline.core.requests import (
    DEADLINE_CHECK,
    DUE_SOON_DAYS,
    EXPORT_VARIABLE,
    REQUESTS_OFF,
    OpenRequests,
    Request,
    RequestError,
    RequestKind,
    new_request,
)
from cleanup_pipeline.observability.run_alerts import report_overdue_requests
from cleanup_pipeline.orchestration.jobs import GROUP, IDEMPOTENT_STEP_RETRY
from cleanup_pipeline.orchestration.resources import AwsEnvironment

ASSET = "erasure_requests"
# Rows of the open-requests table in the UI, most urgent first; the counts cover them all.
_SHOWN = 100
_COLUMNS = {
    "id": "string",
    "user_id": "string",
    "kind": "string",
    "received": "string",
    "due": "string",
    "days_left": "float",
}


def _row(request: Request, now: int) -> dict[str, object]:
    return {
        "id": request.id,
        "user_id": request.user_id,
        "kind": str(request.kind),
        "received": format_ms(request.received_at),
        "due": format_ms(request.due_at),
        "days_left": request.days_left(now),
    }


def open_requests_table(found: OpenRequests) -> dg.MetadataValue:
    rows = [_row(request, found.read_at) for request in found.by_due_date()[:_SHOWN]]
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in _COLUMNS.items()])
    return dg.MetadataValue.table(records=[dg.TableRecord(row) for row in rows], schema=schema)


def read_open_requests(aws: AwsEnvironment) -> OpenRequests:
    """The open requests of the requests table (every page), read now; none without a table.
    A table that does not exist fails the step in one line, and is not retried."""
    settings, now = aws.settings(), now_ms()
    if settings.requests_table is None:
        return OpenRequests(now)
    try:
        stored = scan_requests(aws.clients().dynamodb, settings.requests_table)
    except RequestError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    return OpenRequests(now, tuple(r for r in stored if r.is_open), settings.requests_table)


@dg.asset(
    name=ASSET,
    group_name=GROUP,
    kinds={"dynamodb"},
    retry_policy=IDEMPOTENT_STEP_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            DEADLINE_CHECK,
            asset=ASSET,
            description="No open request is past its due date (received + "
            "REQUEST_DEADLINE_DAYS); blocks nothing, alerts the operator.",
        )
    ],
)
def erasure_requests(
    context: dg.AssetExecutionContext, aws: AwsEnvironment
) -> Iterator[dg.Output[OpenRequests] | dg.AssetCheckResult]:
    """The open requests from the people themselves (`REQUESTS_TABLE_NAME`), each with its due
    date and days left, and how many are open, due within 3 days, and overdue. An overdue
    request fails the check `erasure_requests_within_deadline` and reaches Sentry, once per
    run, by request id: the person's user and address never leave the table."""
    found = read_open_requests(aws)
    counts = found.counts()
    overdue = found.overdue()
    context.log.info(
        ", ".join(f"{name} {n}" for name, n in counts.items()) + f" at {format_ms(found.read_at)}"
    )
    yield dg.Output(
        found,
        metadata={
            **{name: dg.MetadataValue.int(n) for name, n in counts.items()},
            "table": dg.MetadataValue.text(found.table or "(none: requests are off)"),
            "read_at": dg.MetadataValue.text(format_ms(found.read_at)),
            "due_soon_days": dg.MetadataValue.int(DUE_SOON_DAYS),
            "open_requests": open_requests_table(found),
        },
    )
    late = [_row(request, found.read_at) for request in overdue]
    yield dg.AssetCheckResult(
        check_name=DEADLINE_CHECK,
        passed=not overdue,
        # Non-blocking, but a missed legal deadline is an error, not a warning.
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"overdue": len(overdue), "open": len(found.requests)},
        description="; ".join(f"{r['id']} was due {r['due']}" for r in late[:20])
        if overdue
        else "no open request is past its due date",
    )
    # Last, after the step's results: nothing that follows can fail the step and have a retry
    # send the alert again.
    if overdue:
        report_overdue_requests(
            context.run.run_id,
            context.run.job_name,
            DEADLINE_CHECK,
            [{key: r[key] for key in ("id", "kind", "due", "days_left")} for r in late],
            counts,
        )


REQUEST_ERASE_JOB = "request_erase"
REQUEST_LIST_JOB = "request_list"
REQUEST_EXPORT_JOB = "request_export"


class EraseRequestConfig(dg.Config):
    user_id: str = Field(description="the user's id in the users table")
    ref: str = Field(
        "", description="free text: the ticket or message the request came with (optional)"
    )
    received: str = Field(
        "",
        description="when the request arrived, ISO 8601 or epoch ms, not in the future; empty: now",
    )


@dg.op
def open_erase_request(
    context: dg.OpExecutionContext, config: EraseRequestConfig, aws: AwsEnvironment
) -> None:
    """Opens an erase request in the requests table, due `REQUEST_DEADLINE_DAYS` after it was
    received; the user's erase request already open is returned instead of a second one. Bad
    input is refused with the command line's own error, before anything is written."""
    settings, now = aws.settings(), now_ms()
    try:
        request = new_request(
            new_request_id(),
            config.user_id,
            RequestKind.ERASE,
            now=now,
            deadline_days=settings.request_deadline_days,
            received=config.received or None,
            ref=config.ref or None,
        )
        if settings.requests_table is None:
            raise RequestError(REQUESTS_OFF)
        stored, opened = open_request(aws.clients().dynamodb, settings.requests_table, request)
    except RequestError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    shown = stored.as_json(now)
    context.log.info(
        f"opened erase request {stored.id}, due {shown['due']}"
        if opened
        else f"an erase request of this user is already open: {stored.id}; nothing was added"
    )
    context.add_output_metadata(
        {
            "request_id": stored.id,
            "user_id": stored.user_id,
            "opened": opened,
            "received": format_ms(stored.received_at),
            "due": str(shown["due"]),
            "days_left": dg.MetadataValue.float(stored.days_left(now)),
            "request": dg.MetadataValue.json(shown),
        }
    )


@dg.job(
    name=REQUEST_ERASE_JOB,
    description="Open a person's erase request (user_id, optional ref and received time); the "
    "daily run then erases the user, within the deadline.",
    tags={"cleanup_pipeline/job": REQUEST_ERASE_JOB},
)
def request_erase() -> None:
    open_erase_request()


request_list = dg.define_asset_job(
    name=REQUEST_LIST_JOB,
    selection=dg.AssetSelection.assets(ASSET),
    description="Read the requests table now: the open requests with their due dates and days "
    "left, the deadline counts, and the check that none is overdue.",
    tags={"cleanup_pipeline/job": REQUEST_LIST_JOB},
)


class ExportRequestConfig(EraseRequestConfig):
    out: str = Field(
        "",
        description=f"a private local folder or s3://bucket/prefix; empty: {EXPORT_VARIABLE}",
    )


@dg.op
def export_user_data(
    context: dg.OpExecutionContext, config: ExportRequestConfig, aws: AwsEnvironment
) -> None:
    """Writes one zip of everything the user has in every store, as `request export` does (the
    same code, the same checks first): bad config, an unknown user, a destination that is a
    file or lies in the reports or archive location, or a data map whose stores are missing
    fails the run in one line, with nothing written. The metadata says where the zip went, its
    size and the counts per store; never what it holds."""
    try:
        done = answer_export_request(
            aws.clients(),
            aws.settings(),
            config.user_id,
            config.out or None,
            ref=config.ref or None,
            received=config.received or None,
            run_id=context.run.run_id,
        )
    except (RequestError, DataMapError) as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    for line in done.lines():
        context.log.info(line)
    exported = done.exported
    context.add_output_metadata(
        {
            "user_id": done.user_id,
            "export": dg.MetadataValue.text(exported.location),
            "size_bytes": dg.MetadataValue.int(exported.size),
            "records": dg.MetadataValue.int(sum(exported.counts.values())),
            **{f"count/{name}": dg.MetadataValue.int(n) for name, n in exported.counts.items()},
            "request_id": done.request.id if done.request else "(none: requests are off)",
        }
    )


@dg.job(
    name=REQUEST_EXPORT_JOB,
    description="Answer a person's access request: one zip of everything the user has (user_id; "
    f"out, a folder or s3://bucket/prefix, or else {EXPORT_VARIABLE}), recorded as done.",
    tags={"cleanup_pipeline/job": REQUEST_EXPORT_JOB},
)
def request_export() -> None:
    export_user_data()

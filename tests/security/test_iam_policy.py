"""deploy/iam-policy.json grants exactly what the job uses: every AWS call of a full run is
allowed, and every grant is needed by some call."""

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import dagster as dg
import pytest
from botocore import xform_name
from moto.s3.models import s3_backends

from cleanup_pipeline.actions import purge
from cleanup_pipeline.actions.ledger import write_journal
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.aws.clients import make_clients, shared_clients
from cleanup_pipeline.cli import requests as request_commands
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.recovery import DAY_MS, JournalEntry, journal_key
from cleanup_pipeline.core.requests import EXPORT_VARIABLE
from cleanup_pipeline.core.settings import STEP_OUTPUTS_VARIABLE, load_settings
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.jobs import RunScopedS3PickleIOManager
from tests.support import recording
from tests.support.iam import (
    CALLED_BY_STEP_OUTPUTS,
    MAPPED,
    Call,
    Request,
    UnknownOperation,
    allowed,
    denied,
    requests_for,
    unused_grants,
)
from tests.support.jobs import metadata, restore_with_service_recording, run_with_service_recording
from tests.support.policy_render import (
    ACCOUNT,
    REPORTS_BUCKET,
    STEP_OUTPUTS,
    full_policy,
    render_policy,
    rendered_policy,
)
from tests.support.recording import ServiceRecordingS3Resource
from tests.support.world import DELETED, seed_world

ROOT = Path(__file__).resolve().parents[2]


OLD_REPORTS = (
    "cleanup/2026-01-01_earlier-run.parquet",
    "cleanup/2026-01-01_earlier-run.csv",
    "cleanup/2026-01-01_earlier-run.summary.md",
)


def put_aged(s3: Any, key: str, days: int) -> None:
    """An object in the reports bucket last modified `days` ago (set in the emulator, since S3
    itself always stamps the time of the write)."""
    s3.put_object(Bucket=REPORTS_BUCKET, Key=key, Body=b"x")
    stored = s3_backends[ACCOUNT]["aws"].get_object(REPORTS_BUCKET, key)
    stored.last_modified = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)


def journal_of_a_crashed_run(user_id: str, sent_at: str) -> None:
    """What a run that died right after archiving `user_id` leaves in the archive."""
    settings = load_settings()
    store = open_archive(settings.archive_location, make_clients(settings).s3)
    entry = JournalEntry(user_id, sent_at, files=3)
    write_journal(store, journal_key("crashed-run", "b0"), "crashed-run", 0, [entry])


def dies_after_putting_back(user_id: str) -> dg.ExecuteInProcessResult:
    """A `restore_account` run of `user_id` that dies right after its PutItem put the user item
    back (both recorders saw the call)."""
    dynamodb = shared_clients(load_settings()).dynamodb

    def die(**_: Any) -> None:
        raise RuntimeError("the restore died after putting the item back")

    dynamodb.meta.events.register("after-call.dynamodb.PutItem", die)
    try:
        return restore_with_service_recording(user_id)
    finally:
        dynamodb.meta.events.unregister("after-call.dynamodb.PutItem", die)


def manage_hold(**config: str) -> dg.ExecuteInProcessResult:
    """One run of the `manage_hold` job, its AWS calls recorded like the cleanup job's."""
    return defs.resolve_job_def("manage_hold").execute_in_process(
        run_config={"ops": {"change_hold": {"config": config}}},
        resources={"aws": recording.ServiceRecordingAwsEnvironment()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def open_and_list_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cleanup-pipeline request erase` twice for one user (the second finds the open request)
    and `request list`, their AWS calls recorded like the job's."""
    monkeypatch.setattr(
        request_commands,
        "make_clients",
        lambda _settings: recording.ServiceRecordingAwsEnvironment().clients(),
    )
    for args in (["erase", "asks-1", "--ref", "ticket 7"], ["erase", "asks-1"], ["list"]):
        assert main(["request", *args]) == 0


def export_a_user(monkeypatch: pytest.MonkeyPatch, destination: str) -> None:
    """`cleanup-pipeline request export` of one user to `destination`, declared as the export
    location, its AWS calls recorded like the job's."""
    monkeypatch.setenv(EXPORT_VARIABLE, destination)
    monkeypatch.setattr(
        request_commands,
        "make_clients",
        lambda _settings: recording.ServiceRecordingAwsEnvironment().clients(),
    )
    assert main(["request", "export", "u1"]) == 0


@pytest.mark.parametrize("reports", ["local", "s3"])
def test_every_call_of_a_full_run_is_allowed_and_every_grant_is_used(
    aws, monkeypatch, tmp_path, reports
) -> None:
    """A run that finishes what a crashed run began (S3 archive), a restore, and the next run
    once the restore window ended, which purges."""
    clients, settings = aws
    steps = None  # step outputs in the run's folder
    if reports == "s3":
        clients.s3.create_bucket(Bucket=REPORTS_BUCKET)
        monkeypatch.setenv("CLEANUP_REPORTS_DIR", f"s3://{REPORTS_BUCKET}/cleanup")
        monkeypatch.setenv("CLEANUP_ARCHIVE_DIR", f"s3://{REPORTS_BUCKET}/archive")
        clients.s3.create_bucket(Bucket=STEP_OUTPUTS.bucket)
        monkeypatch.setenv(STEP_OUTPUTS_VARIABLE, STEP_OUTPUTS.uri)
        steps = RunScopedS3PickleIOManager(
            s3_resource=ServiceRecordingS3Resource(),
            s3_bucket=STEP_OUTPUTS.bucket,
            s3_prefix=STEP_OUTPUTS.prefix,
        )
        for key in (*OLD_REPORTS, "cleanup/notes.md"):
            put_aged(clients.s3, key, days=100)  # past the 90-day retention: removed, but notes
    seeded = seed_world(clients, settings, big_folder=3)
    # The holds the run reads, added and one removed again by the job operators use for it.
    for user_id in ("held-1", "held-2"):
        assert manage_hold(action="add", user_id=user_id, reason="legal").success
    assert manage_hold(action="remove", user_id="held-2").success
    open_and_list_requests(monkeypatch)
    exports = f"s3://{REPORTS_BUCKET}/exports" if reports == "s3" else str(tmp_path / "exports")
    export_a_user(monkeypatch, exports)
    instance = dg.DagsterInstance.ephemeral()
    approved_run_id = None
    if reports == "s3":
        sent_at = seeded.users["u1"]["accountDeletionEmailSentAt"]["N"]
        journal_of_a_crashed_run("u1", sent_at)
        # A reviewed dry run, approved: the approval reads its candidate report from S3.
        reviewed = run_with_service_recording(instance, io_manager=steps, dry_run=True)
        assert reviewed.success
        approved_run_id = reviewed.run_id
    result = run_with_service_recording(instance, io_manager=steps, approved_run_id=approved_run_id)
    assert result.success
    user_listings = [
        c.params["Prefix"]
        for c in recording.SERVICE_CALLS
        if c.operation == "ListObjectVersions" and c.params["Bucket"] == settings.public_bucket_name
    ]
    assert set(user_listings) == {f"{uid}/" for uid in DELETED}
    assert restore_with_service_recording("u1").success
    restored = ["u1"]
    if reports == "s3":
        # A restore that dies right after putting the item back, finished by the next one.
        other = next(uid for uid in DELETED if uid != "u1")
        assert not dies_after_putting_back(other).success
        assert restore_with_service_recording(other).success
        restored.append(other)
    after_the_window = purge.now_ms() + 31 * DAY_MS
    monkeypatch.setattr(purge, "now_ms", lambda: after_the_window)
    purging = run_with_service_recording(io_manager=steps)
    assert purging.success
    purged = metadata(purging, "purged_deletions")["purged_users"]
    assert purged == len(DELETED) - len(restored)

    policy = rendered_policy()
    optional = render_policy.REPORTS_SIDS | render_policy.STEP_OUTPUTS_SIDS
    optional_sids = {s["Sid"] for s in policy["Statement"]} & optional
    assert optional_sids == (optional if reports == "s3" else set())
    # The same calls in both records; their order may differ, since the warnings' sending
    # threads can interleave between a call's two recorders.
    assert sorted(c.operation for c in recording.SERVICE_CALLS) == sorted(
        name for name, _ in recording.CALLS
    )
    requests = [r for call in recording.SERVICE_CALLS for r in requests_for(call, ACCOUNT)]
    assert denied(policy, requests) == []
    assert unused_grants(policy, requests) == []
    if reports == "s3":
        # Per run, the candidate report, its CSV copy and summary, then the final ones, at the
        # same keys; the approved run reads the reviewed run's candidate report.
        report_puts = [
            c
            for c in recording.SERVICE_CALLS
            if c.operation == "PutObject" and "cleanup/" in c.params["Key"]
        ]
        assert len(report_puts) == 18
        reads = [
            c.params["Key"]
            for c in recording.SERVICE_CALLS
            if c.operation == "GetObject" and c.params["Key"].startswith("cleanup/")
        ]
        assert reads == [f"cleanup/2026-06-01_{approved_run_id}.parquet"]
        listed = clients.s3.list_objects_v2(Bucket=REPORTS_BUCKET, Prefix="cleanup/")
        assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
            [
                *(
                    f"cleanup/2026-06-01_{run}.{kind}"
                    for run in (approved_run_id, result.run_id, purging.run_id)
                    for kind in ("csv", "parquet", "summary.md")
                ),
                "cleanup/notes.md",
            ]
        )
        ledger_puts = [
            c
            for c in recording.SERVICE_CALLS
            if c.operation == "PutObject" and "/ledger/" in c.params["Key"]
        ]
        assert ledger_puts and all(c.params.get("IfNoneMatch") == "*" for c in ledger_puts)
        # Each run's steps stored their outputs under the run's own folder, and read them back.
        step_calls = {
            (c.operation, c.params["Key"].split("/")[1])
            for c in recording.SERVICE_CALLS
            if c.params.get("Bucket") == STEP_OUTPUTS.bucket and "Key" in c.params
        }
        runs = {reviewed.run_id, result.run_id, purging.run_id}
        assert {(op, run) for op in ("PutObject", "GetObject") for run in runs} <= step_calls


def test_the_policy_denies_what_the_job_must_not_do() -> None:
    """The evaluator is strict: neighbouring resources, other actions and unconditioned
    listings are denied, so the run test above cannot pass by accident."""
    policy = full_policy()
    bucket, table = "increaser-public", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table"

    def s3(action: str, arn: str, **context: str) -> Request:
        return Request(action, f"arn:aws:s3:::{arn}", context)

    sender = {"ses:FromAddress": "noreply@increaser.local"}
    identity = f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/increaser.local"
    assert allowed(policy, s3("s3:DeleteObject", f"{bucket}/u1/a.txt"))
    assert allowed(policy, Request("ses:SendEmail", identity, sender))
    assert allowed(policy, Request("dynamodb:DeleteItem", f"{table}/users"))
    report = f"{REPORTS_BUCKET}/cleanup/2026-06-01_0f3c9a.parquet"
    assert allowed(policy, s3("s3:GetObject", report))
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert allowed(policy, s3(action, report))
        assert allowed(policy, s3(action, report.replace(".parquet", ".summary.md")))
        assert allowed(policy, s3(action, report.replace(".parquet", ".csv")))
    assert allowed(policy, s3("s3:ListBucket", REPORTS_BUCKET, **{"s3:prefix": "cleanup/"}))
    assert allowed(policy, s3("s3:ListBucketVersions", bucket, **{"s3:prefix": "u1/"}))
    assert allowed(policy, s3("s3:DeleteObjectVersion", f"{bucket}/u1/a.txt"))
    ledger = f"{REPORTS_BUCKET}/archive/ledger/u1/1.deleted.json"
    encrypted = {"s3:x-amz-server-side-encryption": "AES256"}
    assert allowed(policy, s3("s3:PutObject", ledger, **encrypted))
    for key in ("manifests/g/000.json", "pending/r_b.json", "restoring/h.1.json"):
        assert allowed(policy, s3("s3:PutObject", f"{REPORTS_BUCKET}/archive/{key}", **encrypted))
        # The archive holds addresses: an object written unencrypted is refused.
        assert not allowed(policy, s3("s3:PutObject", f"{REPORTS_BUCKET}/archive/{key}"))
    assert not allowed(
        policy, s3("s3:PutObject", ledger, **{"s3:x-amz-server-side-encryption": "aws:kms"})
    )
    steps = f"{STEP_OUTPUTS.bucket}/{STEP_OUTPUTS.prefix}"
    for action in ("s3:PutObject", "s3:GetObject"):
        assert allowed(policy, s3(action, f"{steps}/run-1/user_decisions"))
    assert allowed(
        policy,
        s3("s3:ListBucket", STEP_OUTPUTS.bucket, **{"s3:prefix": f"{STEP_OUTPUTS.prefix}/r"}),
    )
    assert allowed(policy, s3("s3:DeleteObject", f"{REPORTS_BUCKET}/archive/manifests/g/000.json"))
    for request in (
        s3("s3:ListBucket", bucket, **{"s3:prefix": "u1/"}),  # versions are listed instead
        s3("s3:DeleteObject", ledger),  # the ledger is never removed by the job
        s3("s3:PutObject", f"{REPORTS_BUCKET}/archive/other.json"),
        s3("s3:GetObject", f"{REPORTS_BUCKET}/cleanup/notes.md"),
        s3("s3:ListBucket", REPORTS_BUCKET, **{"s3:prefix": "archive/"}),
        s3("s3:ListBucketVersions", bucket),
        s3("s3:DeleteObject", f"{steps}/run-1/user_decisions"),  # outputs are not removed
        s3("s3:PutObject", f"{STEP_OUTPUTS.bucket}/elsewhere/run-1/user_decisions"),
        s3("s3:GetObject", f"{steps}-other/run-1/user_decisions"),
        s3("s3:ListBucket", STEP_OUTPUTS.bucket),
        s3("s3:ListBucket", STEP_OUTPUTS.bucket, **{"s3:prefix": "elsewhere/"}),
        s3("s3:ListBucketVersions", bucket, **{"s3:prefix": ""}),
        s3("s3:DeleteObjectVersion", f"{bucket}/index.html"),
        s3("s3:DeleteObjectVersion", f"{REPORTS_BUCKET}/archive/ledger/u1/1.deleted.json"),
        s3("s3:PutBucketVersioning", bucket),
        s3("s3:ListBucket", bucket),  # the whole bucket
        s3("s3:ListBucket", bucket, **{"s3:prefix": ""}),
        s3("s3:ListBucket", "another-bucket", **{"s3:prefix": "u1/"}),
        s3("s3:DeleteObject", f"{bucket}/index.html"),  # not in a user folder
        s3("s3:DeleteObject", f"{REPORTS_BUCKET}/cleanup/x.parquet"),  # not named as a report
        s3("s3:DeleteObject", f"{REPORTS_BUCKET}/cleanup/notes.md"),
        s3("s3:DeleteObject", f"{REPORTS_BUCKET}/elsewhere/2026-06-01_r.parquet"),
        s3("s3:ListBucket", REPORTS_BUCKET),
        s3("s3:ListBucket", REPORTS_BUCKET, **{"s3:prefix": ""}),
        s3("s3:ListBucket", REPORTS_BUCKET, **{"s3:prefix": "elsewhere/"}),
        s3("s3:GetObject", f"{bucket}/u1/a.txt"),
        s3("s3:GetObject", f"{REPORTS_BUCKET}/cleanup/notes.md"),
        s3("s3:GetObject", f"{REPORTS_BUCKET}/cleanup/2026-06-01_r.summary.md"),
        s3("s3:PutObject", f"{REPORTS_BUCKET}/elsewhere/x.parquet"),
        s3("s3:PutObject", f"{bucket}/u1/x.parquet"),
        Request("ses:SendEmail", identity, {"ses:FromAddress": "ceo@increaser.local"}),
        Request("ses:SendEmail", identity),
        Request("ses:SendEmail", f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/other.com", sender),
        Request("dynamodb:DeleteItem", f"{table}/emails"),
        Request("dynamodb:UpdateItem", f"{table}/holds"),
        Request("dynamodb:GetItem", f"{table}/holds"),
        Request("dynamodb:Scan", f"{table}/holds-archive"),
        # Requests are opened, read and closed in their own table only.
        Request("dynamodb:DeleteItem", f"{table}/requests-old"),
        Request("dynamodb:UpdateItem", f"{table}/requests-old"),
        Request("dynamodb:Scan", f"{table}/requests-old"),
        Request("dynamodb:DeleteItem", f"{table}/features"),
        Request("dynamodb:Scan", f"{table}/emails"),
        Request("dynamodb:PutItem", f"{table}/features"),
        Request("dynamodb:DeleteItem", f"{table}/scoreboards"),
        Request("dynamodb:DeleteTable", f"{table}/users"),
        Request("dynamodb:UpdateItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/users"),
        Request("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:999999999999:table/users"),
    ):
        assert not allowed(policy, request), request


def test_an_unused_grant_is_reported() -> None:
    policy = full_policy()
    policy["Statement"][0]["Action"].append("dynamodb:GetItem")
    scoreboard = Request("dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/x")
    assert f"UsersTable: dynamodb:GetItem on {policy['Statement'][0]['Resource']}" in (
        unused_grants(policy, [scoreboard])
    )


def test_a_transaction_is_authorised_action_by_action_on_each_table() -> None:
    """A conditional put in TransactWriteItems needs dynamodb:PutItem on its table (AWS has no
    TransactWriteItems action): the emails table's puts pass, any other table or a condition
    check (dynamodb:ConditionCheckItem, not granted) does not."""
    policy = full_policy()

    def transaction(*actions: tuple[str, str]) -> list[Request]:
        items = [{kind: {"TableName": table}} for kind, table in actions]
        call = Call("dynamodb", "us-east-1", "TransactWriteItems", {"TransactItems": items})
        return requests_for(call, ACCOUNT)

    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table"
    assert (
        transaction(("Put", "emails"), ("Put", "emails"))
        == [Request("dynamodb:PutItem", f"{table}/emails", {}, "dynamodb:TransactWriteItems")] * 2
    )
    assert all(allowed(policy, r) for r in transaction(("Put", "emails"), ("Put", "emails")))
    for refused in (
        ("Put", "features"),  # (a put on users is granted: the restore writes the user item)
        ("Update", "emails"),
        ("Delete", "emails"),
        ("ConditionCheck", "emails"),
    ):
        requests = transaction(("Put", "emails"), refused)
        assert [allowed(policy, r) for r in requests] == [True, False], refused


def test_an_operation_outside_the_mapping_is_an_error() -> None:
    with pytest.raises(UnknownOperation, match="dynamodb:DeleteTable"):
        requests_for(Call("dynamodb", "us-east-1", "DeleteTable", {"TableName": "users"}), ACCOUNT)


def _operations_named_in_code() -> set[tuple[str, str]]:
    """(service, operation) for every boto3 client method the job's code refers to, including
    paginators; the emulator and demo-data code under local/ is not part of the job."""
    models = {
        name: botocore.session.get_session().get_service_model(name)
        for name in ("dynamodb", "s3", "sesv2")
    }
    by_method = {
        xform_name(operation): (service, operation)
        for service, model in models.items()
        for operation in model.operation_names
    }
    found: set[tuple[str, str]] = set()
    package = ROOT / "cleanup_pipeline"
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] == "local":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in by_method:
                found.add(by_method[node.attr])
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_paginator"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(by_method[node.args[0].value])
    return found


def test_the_mapping_covers_exactly_the_operations_the_code_uses() -> None:
    """A new boto3 call anywhere in the job's code fails here until it is mapped (and the policy
    reviewed), even on code paths the run above does not take."""
    assert _operations_named_in_code() | CALLED_BY_STEP_OUTPUTS == MAPPED
    assert not _operations_named_in_code() & CALLED_BY_STEP_OUTPUTS


def test_rendering_fills_every_placeholder_and_refuses_a_widening_value(monkeypatch) -> None:
    monkeypatch.setenv("PUBLIC_BUCKET_USER_FOLDER", "users/{id}/")
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", "s3://ops-reports/cleanup/")
    policy = rendered_policy()
    text = json.dumps(policy)
    assert "${" not in text
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ListUserFolders"]["Condition"]["StringLike"]["s3:prefix"] == "users/*/"
    assert by_sid["DeleteUserFiles"]["Resource"] == "arn:aws:s3:::increaser-public/users/*/*"
    reports = [
        "arn:aws:s3:::ops-reports/cleanup/????-??-??_*.parquet",
        "arn:aws:s3:::ops-reports/cleanup/????-??-??_*.csv",
        "arn:aws:s3:::ops-reports/cleanup/????-??-??_*.summary.md",
    ]
    assert by_sid["WriteReports"]["Resource"] == reports
    assert by_sid["ExpireReports"]["Resource"] == reports
    assert by_sid["ListReports"]["Condition"] == {"StringEquals": {"s3:prefix": "cleanup/"}}
    assert by_sid["SendWarnings"]["Resource"] == (
        f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/increaser.local"
    )
    monkeypatch.setenv("USERS_TABLE_NAME", "users*")
    with pytest.raises(ValueError, match="must not contain"):
        rendered_policy()


def test_the_holds_statements_name_the_holds_table_and_go_without_one(monkeypatch) -> None:
    monkeypatch.setenv("HOLDS_TABLE_NAME", "ops-holds")
    by_sid = {s["Sid"]: s for s in rendered_policy()["Statement"]}
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ops-holds"
    assert by_sid["ReadHolds"]["Action"] == ["dynamodb:Scan", "dynamodb:BatchGetItem"]
    assert by_sid["ManageHolds"]["Action"] == ["dynamodb:PutItem", "dynamodb:DeleteItem"]
    assert by_sid["ReadHolds"]["Resource"] == by_sid["ManageHolds"]["Resource"] == table
    monkeypatch.delenv("HOLDS_TABLE_NAME")
    sids = {s["Sid"] for s in rendered_policy()["Statement"]}
    assert not sids & render_policy.HOLDS_SIDS
    assert "${" not in json.dumps(rendered_policy())


def test_the_requests_statement_names_the_requests_table_and_goes_without_one(
    monkeypatch,
) -> None:
    monkeypatch.setenv("REQUESTS_TABLE_NAME", "ops-requests")
    by_sid = {s["Sid"]: s for s in rendered_policy()["Statement"]}
    assert by_sid["ManageRequests"] == {
        "Sid": "ManageRequests",
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Scan"],
        "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ops-requests",
    }
    monkeypatch.delenv("REQUESTS_TABLE_NAME")
    policy = rendered_policy()
    assert not {s["Sid"] for s in policy["Statement"]} & render_policy.REQUESTS_SIDS
    assert "${" not in json.dumps(policy)


def test_the_step_outputs_statements_name_their_location_and_go_without_one(monkeypatch) -> None:
    monkeypatch.setenv(STEP_OUTPUTS_VARIABLE, "s3://ops-steps/cleanup/outputs/")
    by_sid = {s["Sid"]: s for s in rendered_policy()["Statement"]}
    assert by_sid["StepOutputs"]["Resource"] == "arn:aws:s3:::ops-steps/cleanup/outputs/*"
    assert by_sid["ListStepOutputs"]["Resource"] == "arn:aws:s3:::ops-steps"
    assert by_sid["ListStepOutputs"]["Condition"] == {
        "StringLike": {"s3:prefix": "cleanup/outputs/*"}
    }
    monkeypatch.setenv(STEP_OUTPUTS_VARIABLE, "s3://ops-steps/out*")
    with pytest.raises(ValueError, match="must not contain"):
        rendered_policy()
    monkeypatch.delenv(STEP_OUTPUTS_VARIABLE)
    sids = {s["Sid"] for s in rendered_policy()["Statement"]}
    assert not sids & render_policy.STEP_OUTPUTS_SIDS

"""No email address in logs, the run's event log (UI metadata, check descriptions, errors),
Sentry events or the report, on a run where users fail with their address in the error."""

import logging
import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from cleanup_pipeline.core.settings import STEP_OUTPUTS_VARIABLE
from cleanup_pipeline.orchestration.jobs import RunScopedS3PickleIOManager, step_io_manager
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_calls import client_error, ses_refuses
from tests.support.jobs import read_report, run_with_service_recording
from tests.support.sentry_capture import CapturingTransport
from tests.support.world import DELETED, NOTIFIED, seed_world


def archive_fails_for(address: str) -> Any:
    """A fault: the emails table rejects the address, naming it in the error."""

    def fault(operation: str, params: dict[str, Any]) -> None:
        puts = params.get("TransactItems", []) if operation == "TransactWriteItems" else []
        if any(p["Put"]["Item"]["id"] == {"S": address} for p in puts):
            message = f"One or more parameter values were invalid: item {address} is too large"
            raise client_error("ValidationException", operation, message)

    return fault


def leaked(addresses: list[str], text: str) -> list[str]:
    return [address for address in addresses if address in text]


STEP_OUTPUTS_BUCKET, STEP_OUTPUTS_PREFIX = "cleanup-step-outputs", "steps"


@pytest.fixture
def instance(tmp_path):
    with dg.DagsterInstance.ephemeral(tempdir=str(tmp_path)) as instance:
        yield instance


def stored_step_values(
    where: str, instance: dg.DagsterInstance, clients: Any, run_id: str
) -> dict[str, bytes]:
    """Every value the run's I/O manager stored, by file path or S3 key."""
    if where == "filesystem":
        files = [p for p in Path(instance.storage_directory()).rglob("*") if p.is_file()]
        return {str(p): p.read_bytes() for p in files}
    pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=STEP_OUTPUTS_BUCKET)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    # Every key is under the prefix and the run's own folder.
    assert keys and all(k.startswith(f"{STEP_OUTPUTS_PREFIX}/{run_id}/") for k in keys), keys
    return {
        key: clients.s3.get_object(Bucket=STEP_OUTPUTS_BUCKET, Key=key)["Body"].read()
        for key in keys
    }


@pytest.mark.parametrize("where", ["filesystem", "s3"])
def test_no_address_leaves_the_run(
    aws,
    instance: dg.DagsterInstance,
    sentry_events: CapturingTransport,
    caplog,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients, settings = aws
    io_manager = None
    if where == "s3":
        clients.s3.create_bucket(Bucket=STEP_OUTPUTS_BUCKET)
        monkeypatch.setenv(
            STEP_OUTPUTS_VARIABLE, f"s3://{STEP_OUTPUTS_BUCKET}/{STEP_OUTPUTS_PREFIX}"
        )
        io_manager = step_io_manager()
        assert isinstance(io_manager, RunScopedS3PickleIOManager)
    seeded = seed_world(clients, settings, big_folder=3)
    addresses = sorted(i["email"]["S"] for i in seeded.users.values() if "email" in i)
    refused, unarchivable = f"{NOTIFIED[0]}@example.com", f"{DELETED[0]}@example.com"
    recording.FAULTS += [ses_refuses(refused), archive_fails_for(unarchivable)]

    caplog.set_level(logging.DEBUG)
    # Small batches: the deletions fan out, and every batch's values are stored too.
    policy = CleanupPolicy(send_rate_per_second=500, deletion_batch_size=2)
    result = run_with_service_recording(instance=instance, policy=policy, io_manager=io_manager)
    assert not result.success

    report = read_report(result)
    failed = report[report["outcome"] == "failed"]
    assert {"send", "emails"} <= set(failed["step"])
    assert failed["error"].str.contains("***@example.com", regex=False).all()  # masked, present
    assert sentry_events.events()
    # The error paths did log (masked); Dagster's own console lines are the event log below.
    assert f"{refused[0]}***@example.com" in caplog.text

    records = instance.all_logs(result.run_id)
    kinds = {r.dagster_event.event_type for r in records if r.dagster_event}
    assert dg.DagsterEventType.ASSET_MATERIALIZATION in kinds
    assert dg.DagsterEventType.ASSET_CHECK_EVALUATION in kinds
    event_log = "\n".join(dg.serialize_value(record) for record in records)
    run = dg.serialize_value(instance.get_run_by_id(result.run_id))
    assert leaked(addresses, event_log) == []
    assert leaked(addresses, run) == []
    assert leaked(addresses, caplog.text) == []
    assert leaked(addresses, sentry_events.serialized()) == []
    assert leaked(addresses, report.to_csv()) == []
    assert leaked(addresses, read_report(result, "candidate_report").to_csv()) == []

    # The report assets' preview carries masked emails and the failed users' errors, inside
    # the event log checked above; the summary file next to the report carries none.
    for asset in ("candidate_report", "cleanup_report"):
        metadata = next(
            e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key.path == [asset]
        )
        preview = [r.data for r in metadata["preview"].records]
        assert any(str(row["email_masked"]).endswith("***@example.com") for row in preview)
        assert leaked(addresses, dg.serialize_value(metadata["preview"])) == []
        summary = Path(metadata["summary"].value).read_text(encoding="utf-8")
        assert leaked(addresses, summary) == []
    final = next(
        e.materialization.metadata["preview"]
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["cleanup_report"]
    )
    failed_rows = [r.data for r in final.records if r.data["outcome"] == "failed"]
    assert failed_rows and all("***@example.com" in row["error"] for row in failed_rows)

    # What flows between steps, stored by the I/O manager for the run: ids and outcomes only.
    stored = stored_step_values(where, instance, clients, result.run_id)
    # (dagster-aws writes `delete_account_batch[batch_0000]` as `delete_account_batch--batch_0000`)
    batch_outputs = [p for p in stored if re.search(r"delete_account_batch(\[|--)batch_", p)]
    assert len(batch_outputs) >= 3
    assert any(p.endswith("users_snapshot") for p in stored)
    values = b"".join(stored.values())
    assert [a for a in addresses if a.encode() in values] == []

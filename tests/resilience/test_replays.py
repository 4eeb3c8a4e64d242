"""Replays: an idempotent step that fails once on a transient fault is tried again and the run
succeeds; the warnings step is never retried automatically; a re-execution from failure decides
at the `as_of` of the run it re-executes. Real runs (`execute_job`) against in-process moto."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from botocore.exceptions import EndpointConnectionError

from cleanup_pipeline.actions.outcomes import WARNED
from cleanup_pipeline.aws.clients import shared_clients
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.definitions import cleanup_job
from cleanup_pipeline.orchestration.jobs import run_config_for
from tests.support.aws_state import sent_to
from tests.support.world import AS_OF_ISO, NOTIFIED, seed_world

RETRY = dg.DagsterEventType.STEP_UP_FOR_RETRY


def _fail_once(
    client: Any, operation: str, error: Exception, table: str | None = None
) -> list[str]:
    """Make the next `operation` call of `client` (on `table`, if given) raise `error`; returns
    the list the fault appends to when it fires."""
    fired: list[str] = []

    def fault(params: dict[str, Any], **_: Any) -> None:
        if not fired and table in (None, params.get("TableName")):
            fired.append(operation)
            raise error

    client.meta.events.register(f"before-parameter-build.*.{operation}", fault)
    return fired


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _run_config(as_of: str | None = None) -> dict[str, Any]:
    # Without as_of every seeded user is long inactive, so the size guards are lifted.
    config = run_config_for(as_of, allow_mass_action=as_of is None)
    config["execution"] = {"config": {"in_process": {}}}
    return config


def _events(instance: dg.DagsterInstance, run_id: str, step: str) -> list[dg.DagsterEventType]:
    return [e.dagster_event_type for e in instance.all_logs(run_id) if e.step_key == step]


def _final_report(result: dg.JobExecutionResult) -> pd.DataFrame:
    events = result.get_asset_materialization_events()
    (event,) = [e for e in events if e.asset_key.path == ["cleanup_report"]]
    return pd.read_parquet(event.materialization.metadata["path"].value)


def _created(instance: dg.DagsterInstance, run_id: str) -> str:
    record = instance.get_run_record_by_id(run_id)
    return format_ms(int(record.create_timestamp.timestamp() * 1000))


def test_a_transient_fault_in_the_scan_is_retried_and_the_run_succeeds(
    aws, instance: dg.DagsterInstance
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    unreachable = EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
    fired = _fail_once(
        shared_clients(load_settings()).dynamodb, "Scan", unreachable, settings.users_table
    )

    result = dg.execute_job(
        dg.reconstructable(cleanup_job), instance=instance, run_config=_run_config(AS_OF_ISO)
    )

    assert fired == ["Scan"]
    assert result.success
    steps = _events(instance, result.run_id, "users_snapshot")
    assert steps.count(RETRY) == 1
    assert steps.count(dg.DagsterEventType.STEP_SUCCESS) == 1
    assert sorted(sent_to()) == sorted(f"{uid}@example.com" for uid in NOTIFIED)


def test_reexecution_from_failure_keeps_the_original_as_of(
    aws, instance: dg.DagsterInstance
) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=1)
    # The warnings step, which has no retry policy, fails before sending anything.
    crash = RuntimeError("worker lost")
    fired = _fail_once(shared_clients(load_settings()).sesv2, "GetAccount", crash)
    job = dg.reconstructable(cleanup_job)

    failed = dg.execute_job(job, instance=instance, run_config=_run_config(), raise_on_error=False)

    assert fired == ["GetAccount"] and not failed.success
    warnings = _events(instance, failed.run_id, "warning_emails")
    assert dg.DagsterEventType.STEP_FAILURE in warnings and RETRY not in warnings
    assert sent_to() == []

    replay = dg.execute_job(
        job,
        instance=instance,
        run_config=_run_config(),
        reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, instance),
    )

    assert replay.success
    assert replay.dagster_run.root_run_id == failed.run_id
    # Only the failed step and what follows it ran again, on the first run's decisions...
    assert _events(instance, replay.run_id, "user_decisions") == []
    assert dg.DagsterEventType.STEP_SUCCESS in _events(instance, replay.run_id, "warning_emails")
    # ... and at the first run's as_of, not at the re-execution's own creation time.
    original = _created(instance, failed.run_id)
    assert instance.get_run_by_id(failed.run_id).tags["as_of"] == original
    report = _final_report(replay)
    assert report.attrs["as_of"] == original
    assert _created(instance, replay.run_id) != original
    warned = report.loc[report["outcome"] == WARNED, "id"]
    assert len(warned) > 0
    assert sorted(sent_to()) == sorted(f"{uid}@example.com" for uid in warned)

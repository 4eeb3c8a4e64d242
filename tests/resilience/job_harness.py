"""The real job executed in process against in-process moto, and the AWS state around a run.

Runs are expensive, so a test module runs the job once in a module-scoped fixture, captures
everything (users, files, features, scoreboards, archived emails, sent mail, report) and lets
many small tests assert on the capture.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.local.emulator import LOCAL_ENV
from cleanup_pipeline.local.provision import provision
from cleanup_pipeline.orchestration.job import JOB_NAME, run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from tests.e2e import recording
from tests.e2e.world import list_keys, scan_all

Item = dict[str, Any]
HOUR = 3_600_000


def wall_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def moto_world(reports_dir: Path) -> Iterator[tuple[AwsClients, Settings]]:
    """The job's environment and provisioned AWS resources, for a module-scoped fixture (the
    function-scoped `aws` fixture of tests/conftest.py cannot outlive one test)."""
    recording.FAULTS.clear()
    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_ENDPOINT_URL", "SENTRY_DSN", "SENTRY_KEY", "AWS_PROFILE"):
            patch.delenv(key, raising=False)
        for key, value in LOCAL_ENV.items():
            patch.setenv(key, value)
        patch.setenv("CLEANUP_REPORTS_DIR", str(reports_dir))
        with mock_aws():
            settings = load_settings()
            clients = make_clients(settings)
            provision(clients, settings)
            try:
                yield clients, settings
            finally:
                recording.FAULTS.clear()


def put_items(client: Any, table: str, items: list[Item]) -> None:
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def put_files(client: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")


def sent_to() -> list[str]:
    messages = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    return [to for message in messages for to in message.destinations["ToAddresses"]]


@dataclass(frozen=True)
class AwsState:
    users: dict[str, Item]
    keys: set[str]
    features: dict[str, Item]
    scoreboards: dict[str, Item]
    emails: dict[str, Item]
    sent_to: list[str]


def read_state(clients: AwsClients, settings: Settings) -> AwsState:
    ddb = clients.dynamodb
    return AwsState(
        users=scan_all(ddb, settings.users_table),
        keys=list_keys(clients.s3, settings.public_bucket_name),
        features=scan_all(ddb, settings.features_table),
        scoreboards=scan_all(ddb, settings.scoreboards_table),
        emails=scan_all(ddb, settings.emails_table),
        sent_to=sent_to(),
    )


def execute(as_of: int, policy: CleanupPolicy, dry_run: bool = False) -> dg.ExecuteInProcessResult:
    recording.CALLS.clear()
    return defs.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config_for(str(as_of), dry_run=dry_run),
        resources={
            "aws": recording.RecordingAwsEnvironment(),
            "cleanup_policy": policy,
            "run_options": RunOptions(),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    assert events, f"{asset} was not materialized"
    return {key: value.value for key, value in events[-1].materialization.metadata.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def read_report(result: dg.ExecuteInProcessResult, asset: str = "cleanup_report") -> pd.DataFrame:
    return pd.read_parquet(metadata(result, asset)["path"])


@dataclass(frozen=True)
class FinishedRun:
    """One run and the AWS state around it, read before the moto context closes."""

    result: dg.ExecuteInProcessResult
    before: AwsState
    after: AwsState
    report: pd.DataFrame
    writes: list[str]

    def report_row(self, user_id: str) -> dict[str, Any]:
        rows = self.report[self.report["id"] == user_id]
        assert len(rows) == 1, f"{user_id!r}: {len(rows)} report rows"
        return rows.iloc[0].to_dict()


def run_and_capture(
    clients: AwsClients, settings: Settings, as_of: int, policy: CleanupPolicy
) -> FinishedRun:
    before = read_state(clients, settings)
    result = execute(as_of, policy)
    after = read_state(clients, settings)
    report = read_report(result) if _materialized(result) else pd.DataFrame()
    return FinishedRun(result, before, after, report, recording.writes())


def _materialized(result: dg.ExecuteInProcessResult, asset: str = "cleanup_report") -> bool:
    return any(e.asset_key.path == [asset] for e in result.get_asset_materialization_events())

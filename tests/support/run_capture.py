"""One run of the real job in process against in-process moto, with the AWS state around it.

Runs are expensive, so a test module runs the job once in a module-scoped fixture, captures
everything (users, files, features, scoreboards, archived emails, sent mail, report) and lets
many small tests assert on the capture.
"""

from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.orchestration.jobs import run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import AwsState, read_state
from tests.support.jobs import execute_job, materialized, read_report

HOUR = 3_600_000


def execute(as_of: int, policy: CleanupPolicy, dry_run: bool = False) -> dg.ExecuteInProcessResult:
    """A run at `as_of` (epoch ms), its AWS calls recorded afresh."""
    recording.CALLS.clear()
    return execute_job(run_config_for(str(as_of), dry_run=dry_run), policy=policy)


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
    report = read_report(result) if materialized(result) else pd.DataFrame()
    return FinishedRun(result, before, after, report, recording.writes())

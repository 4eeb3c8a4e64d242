"""Arranging and recognising a run the history guard stops, for the guard tests on every kind
of instance."""

import dagster as dg

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write
from tests.support.items import user, warned
from tests.support.jobs import check_results, evaluation
from tests.support.world import A

# Size guards opened wide so that only the history guard can stop a run.
OPEN = {"max_delete_fraction": 0.9, "max_notify_fraction": 0.9, "send_rate_per_second": 500}


def add_delete_candidates(clients: AwsClients, settings: Settings, count: int) -> None:
    users = [user(f"extra-{i:03d}", **warned(A - 45 * DAY_MS)) for i in range(count)]
    batch_write(clients.dynamodb, settings.users_table, users)


def assert_blocked_by_history(blocked: dg.ExecuteInProcessResult, count: int, median: int) -> None:
    """The run failed on `deletions_match_history` alone among the deletion limits."""
    assert not blocked.success
    assert check_results(blocked)["deletions_match_history"] is False
    assert check_results(blocked)["deletions_within_limit"] is True
    history = evaluation(blocked, "deletions_match_history").metadata
    assert history["count"].value == count
    assert f"median ({median})" in history["why"].value

"""The cascade run on one batch as the job runs it, for the tests of its steps."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cleanup_pipeline.actions.archive import Recovery
from cleanup_pipeline.actions.cascade import (
    CascadeContext,
    RunReferences,
    delete_accounts,
    run_lists,
)
from cleanup_pipeline.actions.outcomes import Outcomes
from cleanup_pipeline.aws import references
from cleanup_pipeline.aws.archive_store import open_archive
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.data_map import load_data_map
from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.settings import Settings


def cascade_context(
    clients: AwsClients,
    settings: Settings,
    as_of: int,
    on_failure: Callable[[str, str, BaseException], None] | None = None,
    run_id: str = "test-run",
    recovery: Recovery | None = None,
) -> CascadeContext:
    """As the job builds it for a batch (with the data map `CLEANUP_DATA_MAP` names, the
    built-in one when unset); the archive is the test's own folder."""
    recovery = recovery or Recovery(open_archive(settings.archive_location, clients.s3), run_id)
    return CascadeContext(
        dynamodb=clients.dynamodb,
        s3=clients.s3,
        settings=settings,
        as_of=as_of,
        policy=Policy(),
        on_failure=on_failure,
        recovery=recovery,
        mapped=load_data_map(settings),
    )


def read_references(clients: AwsClients, settings: Settings, user_ids: list[str]) -> RunReferences:
    """What the job reads once per run for its delete candidates."""
    return RunReferences(
        features=references.features_by_proposer(
            clients.dynamodb, settings.features_table, user_ids
        ),
        lists=run_lists(clients.dynamodb, load_data_map(settings), settings, user_ids),
    )


def run_cascade(
    clients: AwsClients,
    settings: Settings,
    as_of: int,
    user_ids: list[str],
    *,
    on_failure: Callable[[str, str, BaseException], None] | None = None,
    before_final_delete: Callable[[], None] | None = None,
    recovery: Recovery | None = None,
    run_id: str = "test-run",
) -> Outcomes:
    """The cascade as the job runs one batch: references read for the candidates, then the
    cascade's entry point. `before_final_delete` runs once, right before the first DeleteItem of
    a user item (the cascade's last step)."""
    refs = read_references(clients, settings, user_ids)
    ctx = replace(
        cascade_context(clients, settings, as_of, on_failure, run_id, recovery), lists=refs.lists
    )
    if before_final_delete is None:
        return delete_accounts(ctx, user_ids, refs.features)
    events, event, done = clients.dynamodb.meta.events, "before-call.dynamodb.DeleteItem", []

    def once(**_: Any) -> None:
        if not done:
            done.append(True)
            before_final_delete()

    events.register(event, once)
    try:
        return delete_accounts(ctx, user_ids, refs.features)
    finally:
        events.unregister(event, once)


def outcome_of(outcomes: Outcomes, user_id: str) -> dict[str, Any]:
    rows = [row for row in outcomes.rows if row["id"] == user_id]
    assert len(rows) == 1, rows
    return rows[0]

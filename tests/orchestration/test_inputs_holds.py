"""Persistent holds through one real run of the job (SPEC §10): honoured by the scan's decisions
and again by each batch's consistent re-read, expiring at `until`, reported with their reason."""

import threading
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from cleanup_pipeline.aws.holds_table import put_hold
from cleanup_pipeline.core.decisions import EXEMPT_USER_IDS, Hold
from cleanup_pipeline.local.batch_write import batch_write as put_items
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import put_objects as put_files
from tests.support.items import DAY, n
from tests.support.items import now_ms as wall_ms
from tests.support.jobs import metadata
from tests.support.malformed_corpus import candidate, warnable
from tests.support.moto_env import moto_world
from tests.support.run_capture import HOUR, FinishedRun, run_and_capture

HELD = {"held-delete": "legal case 12", "held-notify": "support ticket 7"}
# Holds added by a hook right before the batch's re-read of the users table reads them.
LATE = {"late-delete": "legal hold added mid-run", "late-notify": "complaint added mid-run"}
CONFIG_HELD = "config-held"
WARNED = ("expired-notify", "free-notify")
DELETED = ("free-delete",)


@dataclass
class HeldRun:
    run: FinishedRun
    late_fired: dict[str, int]


@pytest.fixture(scope="module")
def held_run(tmp_path_factory) -> HeldRun:
    as_of = wall_ms() - HOUR
    deletes = ["held-delete", "late-delete", CONFIG_HELD, *DELETED]
    notifies = ["held-notify", "late-notify", *WARNED]
    pads = [candidate(f"pad-{i}", as_of, lastVisitAt=n(as_of - DAY)) for i in range(4)]
    fired = dict.fromkeys(LATE, 0)
    lock = threading.Lock()
    with moto_world(tmp_path_factory.mktemp("reports")) as (clients, settings):
        ddb = clients.dynamodb
        users = [candidate(u, as_of) for u in deletes] + [warnable(u, as_of) for u in notifies]
        put_items(ddb, settings.users_table, users + pads)
        put_files(clients.s3, settings.public_bucket_name, [f"{u}/a.txt" for u in deletes])
        put_hold(ddb, settings.holds_table, Hold("held-delete", HELD["held-delete"]))
        put_hold(
            ddb, settings.holds_table, Hold("held-notify", HELD["held-notify"], wall_ms() + DAY)
        )
        put_hold(ddb, settings.holds_table, Hold("expired-notify", "ended", until=wall_ms() - 1))

        def add_late_hold(operation: str, params: dict[str, Any]) -> None:
            keys = params.get("RequestItems", {}).get(settings.users_table, {}).get("Keys", [])
            with lock:
                for user_id, reason in LATE.items():
                    if operation == "BatchGetItem" and {"id": {"S": user_id}} in keys:
                        if not fired[user_id]:
                            put_hold(ddb, settings.holds_table, Hold(user_id, reason))
                        fired[user_id] += 1

        recording.FAULTS.append(add_late_hold)
        try:
            run = run_and_capture(
                clients,
                settings,
                as_of,
                CleanupPolicy(send_rate_per_second=200, exempt_user_ids=[CONFIG_HELD]),
            )
        finally:
            recording.FAULTS.clear()
    return HeldRun(run, fired)


def test_the_run_succeeds_and_each_late_hold_was_added_at_its_re_read(held_run: HeldRun):
    assert held_run.run.result.success
    assert held_run.late_fired == dict.fromkeys(LATE, 1)


def test_held_users_are_neither_warned_nor_deleted_and_keep_their_files(held_run: HeldRun):
    run = held_run.run
    for user_id in [*HELD, *LATE, CONFIG_HELD]:
        assert run.after.users[user_id] == run.before.users[user_id], user_id
        assert run.before.users[user_id]["email"]["S"] not in run.after.sent_to
    for user_id in ("held-delete", "late-delete", CONFIG_HELD):
        assert f"{user_id}/a.txt" in run.after.keys


def test_an_expired_hold_is_ignored_and_unheld_users_are_acted_on(held_run: HeldRun):
    run = held_run.run
    assert sorted(run.after.sent_to) == sorted(run.before.users[u]["email"]["S"] for u in WARNED)
    for user_id in DELETED:
        assert user_id not in run.after.users
        assert run.report_row(user_id)["outcome"] == "deleted"
    assert run.report_row("expired-notify")["outcome"] == "warned"


def test_the_report_says_who_was_held_and_why(held_run: HeldRun):
    run = held_run.run
    expected = {**HELD, CONFIG_HELD: EXEMPT_USER_IDS}
    for user_id, reason in expected.items():
        row = run.report_row(user_id)
        assert (row["decision"], row["reason"], row["hold_reason"], row["outcome"]) == (
            "exempt",
            "hold",
            reason,
            "no_action",
        )
    assert pd.isna(run.report_row("free-delete")["hold_reason"])
    assert "@" not in run.report["hold_reason"].dropna().str.cat()


def test_a_hold_added_mid_run_is_reported_at_the_re_read(held_run: HeldRun):
    for user_id, reason in LATE.items():
        row = held_run.run.report_row(user_id)
        assert row["decision"] in {"delete", "notify"}  # what the scan decided
        assert (row["outcome"], row["step"]) == ("skipped", "recheck")
        assert row["error"] == f"now exempt (hold: {reason})"


def test_the_holds_asset_shows_what_was_in_force_at_the_start(held_run: HeldRun):
    shown = metadata(held_run.run.result, "active_holds")
    assert (shown["held"], shown["expired"], shown["table"]) == (2, 1, "holds")
    assert metadata(held_run.run.result, "user_decisions")["exempt"] == 3

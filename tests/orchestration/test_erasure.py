"""A person's own erasure through real runs of the job against in-process moto: an open erase
request decides `erase` before the inactivity rules (no warning), except for an invalid, held or
paying user, whose request stays open with why; the cascade and its proof with the erasure's
restore window (0 by default: nothing restorable); the ledger names the request; the request is
`done` only once verified, or for a user that does not exist; a leftover keeps it open until the
next run verifies it; its own bound, lifted by an approval; a dry run writes nothing."""

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.aws.holds_table import put_hold
from cleanup_pipeline.aws.requests_table import (
    close_request,
    new_request_id,
    open_request,
    scan_requests,
)
from cleanup_pipeline.core.decisions import Hold
from cleanup_pipeline.core.requests import Request, RequestStatus, new_request
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.jobs import run_config_for, summarize
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.aws_state import keys_under, put_objects
from tests.support.items import (
    DAY,
    active_user,
    delete_candidate,
    notify_candidate,
    now_ms,
    s,
)
from tests.support.jobs import execute_job, metadata, read_report
from tests.support.moto_env import moto_world
from tests.support.recovery_world import archive, journals, ledger, manifests, versions_under
from tests.support.run_capture import HOUR

AS_OF = now_ms() - HOUR
POLICY = CleanupPolicy(send_rate_per_second=200, exempt_user_ids=["e-config"])
# Erased: a recent visitor, a notify candidate (never warned), a delete candidate.
ERASED = ("e-active", "e-notify", "e-delete")
# Kept open, with the report's reason.
KEPT_OPEN = {
    "e-invalid": "invalid: email: missing or empty",
    "e-held": "held: legal case 12",
    "e-config": "held: exempt_user_ids",
    "e-lifetime": "active subscription",
    "e-subscriber": "active subscription",
}
GHOST = "e-ghost"  # no such user


@dataclass
class Run:
    result: dg.ExecuteInProcessResult
    summary: dict[str, Any]

    @property
    def report(self) -> pd.DataFrame:
        return read_report(self.result)

    def row(self, user_id: str) -> dict[str, Any]:
        rows = self.report[self.report["id"] == user_id]
        assert len(rows) == 1, f"{user_id!r}: {len(rows)} report rows"
        return rows.iloc[0].to_dict()


def execute(
    instance: dg.DagsterInstance,
    *,
    dry_run: bool = False,
    policy: CleanupPolicy = POLICY,
    approved: str | None = None,
) -> Run:
    recording.CALLS.clear()
    result = execute_job(
        run_config_for(str(AS_OF), dry_run=dry_run, approved_run_id=approved),
        policy=policy,
        instance=instance,
    )
    return Run(result, summarize(instance, result.run_id, result.success, None, dry_run))


def ask(clients: AwsClients, settings: Settings, user_id: str) -> Request:
    assert settings.requests_table is not None
    request = new_request(
        new_request_id(), user_id, "erase", now=now_ms(), deadline_days=30, ref="ticket 1"
    )
    return open_request(clients.dynamodb, settings.requests_table, request)[0]


def requests_by_user(clients: AwsClients, settings: Settings) -> dict[str, Request]:
    assert settings.requests_table is not None
    return {r.user_id: r for r in scan_requests(clients.dynamodb, settings.requests_table)}


def pads(count: int = 120) -> list[dict[str, Any]]:
    return [active_user(f"pad-{i:03d}", AS_OF) for i in range(count)]


@dataclass
class World:
    clients: AwsClients
    settings: Settings
    asked: dict[str, Request]
    dry: Run
    after_dry: dict[str, Request]
    users_after_dry: set[str]
    run: Run
    after: dict[str, Request]
    users_after: set[str]
    # The Scans of the requests table each run made: (dry run, run).
    request_scans: tuple[int, int]


def request_scans(settings: Settings) -> int:
    """The Scans of the requests table among the calls recorded since the last run began."""
    return sum(
        1
        for name, params in recording.CALLS
        if name == "Scan" and params.get("TableName") == settings.requests_table
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    with moto_world(tmp_path_factory.mktemp("erasure") / "reports") as (clients, settings):
        db, table = clients.dynamodb, settings.users_table
        users = [
            active_user("e-active", AS_OF),
            notify_candidate("e-notify", AS_OF),
            delete_candidate("e-delete", AS_OF),
            active_user("e-invalid", AS_OF, email=""),
            active_user("e-held", AS_OF),
            active_user("e-config", AS_OF),
            active_user("e-lifetime", AS_OF, lifeTimeDeal={"BOOL": True}),
            active_user("e-subscriber", AS_OF, subscription={"M": {"id": s("sub")}}),
            delete_candidate("plain-delete", AS_OF),
            *pads(),
        ]
        batch_write(db, table, users)
        put_objects(
            clients.s3,
            settings.public_bucket_name,
            [f"{u}/a.txt" for u in (*ERASED, *KEPT_OPEN, "plain-delete")],
        )
        assert settings.holds_table is not None
        put_hold(db, settings.holds_table, Hold("e-held", "legal case 12"))
        asked = {u: ask(clients, settings, u) for u in (*ERASED, *KEPT_OPEN, GHOST)}
        instance = dg.DagsterInstance.ephemeral()
        dry = execute(instance, dry_run=True)
        dry_writes, dry_scans = recording.writes(), request_scans(settings)
        after_dry = requests_by_user(clients, settings)
        users_after_dry = set(scan_users(clients, settings))
        assert dry_writes == []
        run = execute(instance)
        scans = request_scans(settings)
        yield World(
            clients,
            settings,
            asked,
            dry,
            after_dry,
            users_after_dry,
            run,
            requests_by_user(clients, settings),
            set(scan_users(clients, settings)),
            (dry_scans, scans),
        )


def scan_users(clients: AwsClients, settings: Settings) -> list[str]:
    pages = clients.dynamodb.get_paginator("scan").paginate(TableName=settings.users_table)
    return [item["id"]["S"] for page in pages for item in page["Items"]]


def test_the_run_succeeds(world: World):
    assert world.run.result.success, world.run.summary
    assert world.run.summary["blocked"] == []


def test_an_erase_request_beats_the_inactivity_rules_and_no_warning_is_sent(world: World):
    for user_id in ERASED:
        row = world.run.row(user_id)
        request = world.asked[user_id].id
        assert (row["decision"], row["reason"], row["request"]) == (
            "erase",
            f"erasure request {request}",
            request,
        )
        assert (row["outcome"], row["request_status"]) == ("deleted", "done")
        assert user_id not in world.users_after
        assert keys_under(world.clients.s3, world.settings.public_bucket_name, f"{user_id}/") == []
    assert metadata(world.run.result, "warning_emails")["candidates"] == 0
    assert world.run.summary["counts"]["notified"] == 0
    assert world.run.summary["counts"]["erase"] == 3
    assert world.run.summary["counts"]["erased"] == 3
    # The inactivity rules still apply to everyone else.
    assert world.run.row("plain-delete")["outcome"] == "deleted"


@pytest.mark.parametrize("user_id", sorted(KEPT_OPEN))
def test_invalid_held_and_paying_users_are_kept_and_their_request_stays_open(
    world: World, user_id: str
):
    row = world.run.row(user_id)
    assert (row["request"], row["request_status"], row["request_reason"]) == (
        world.asked[user_id].id,
        "open",
        KEPT_OPEN[user_id],
    )
    assert user_id in world.users_after
    assert f"{user_id}/a.txt" in keys_under(world.clients.s3, world.settings.public_bucket_name)
    assert world.after[user_id].status == "open"
    assert world.after[user_id].done_at is None


def test_a_run_reads_the_requests_table_once(world: World):
    # The deadline counts, the decisions and the closing of the requests share one Scan.
    assert world.request_scans == (1, 1)


def test_the_request_is_done_with_when_and_by_which_run(world: World):
    for user_id in ERASED:
        request = world.after[user_id]
        assert request.status == "done"
        assert request.reason is not None and "verified" in request.reason
        assert request.run_id == world.run.result.run_id
        assert request.done_at is not None and request.done_at >= AS_OF
    assert world.run.summary["counts"]["requests_done"] == 4


def test_verified_counts_every_deletion_the_run_proved_erasures_included(world: World):
    final = metadata(world.run.result, "cleanup_report")
    # The inactive user's deletion and the three erasures.
    assert world.run.summary["counts"]["verified"] == final["verified"] == 4
    assert (final["erased_verified"], final["ledger_verified"]) == (3, 4)
    assert metadata(world.run.result, "deleted_accounts")["verified"] == 1


def test_the_open_request_counts_are_those_left_once_the_run_acted(world: World):
    counts = world.run.summary["counts"]
    final = metadata(world.run.result, "cleanup_report")
    # Nine open when the run read them; it closed four (three erased, one no such user).
    assert metadata(world.run.result, "erasure_requests")["requests_open"] == 9
    assert metadata(world.run.result, "candidate_report")["requests_open"] == 9
    assert (counts["requests_open"], counts["requests_done"]) == (5, 4)
    assert final["requests_open"] == 5
    assert "| requests_open | 5 |" in Path(final["summary"]).read_text()
    # A dry run closes nothing: what it read is what is open.
    assert world.dry.summary["counts"]["requests_open"] == 9


def test_a_request_for_a_user_that_does_not_exist_is_done_with_no_such_user(world: World):
    request = world.after[GHOST]
    assert (request.status, request.reason, request.run_id) == (
        "done",
        "no such user",
        world.run.result.run_id,
    )
    row = world.run.row(GHOST)
    assert (row["decision"], row["request_status"], row["request_reason"]) == (
        "erase",
        "done",
        "no such user",
    )


def test_without_a_window_nothing_is_restorable_and_the_ledger_names_the_request(world: World):
    store = archive(world.clients, world.settings)
    # The one manifest is the inactive user's, under the 30-day restore window.
    in_manifests = {
        user["user_id"]
        for key in manifests(world.clients, world.settings)
        for user in store.read_json(key)["users"]
    }
    assert in_manifests == {"plain-delete"}
    for user_id in ERASED:
        prefix = f"{user_id}/"
        assert versions_under(world.clients, world.settings, prefix) == []
        events = ledger(world.clients, world.settings, user_id)
        assert [e["event"] for e in events] == ["deleted", "verified"]
        request = world.asked[user_id].id
        assert [e.get("request") for e in events] == [request, request]
        assert events[0]["restorable_until"] == events[0]["at"]
    assert "request" not in ledger(world.clients, world.settings, "plain-delete")[0]


def test_a_dry_run_reports_and_writes_nothing(world: World):
    assert world.dry.result.success
    assert world.after_dry == {u: r for u, r in world.asked.items()}
    assert set(ERASED) <= world.users_after_dry
    row = world.dry.row("e-active")
    assert (row["decision"], row["outcome"], row["request_status"]) == (
        "erase",
        "dry_run",
        "open",
    )


def test_the_report_says_for_each_request_what_happened(world: World):
    report = world.run.report
    with_request = report[report["request"].notna()]
    assert set(with_request["id"]) == {*ERASED, *KEPT_OPEN, GHOST}
    assert with_request["request_reason"].notna().all()
    assert "@" not in with_request["request_reason"].str.cat()


# A leftover: the app writes a file into the erased user's folder right after the cascade hid
# their files and before the proof looks.
LEFTOVER = "l-user"


def write_after_deletion(clients: AwsClients, settings: Settings) -> Any:
    state = {"deleted": False, "written": False}
    lock = threading.Lock()

    def fault(operation: str, params: dict[str, Any]) -> None:
        with lock:
            if state["written"]:
                return
            keys = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
            if operation == "DeleteObjects" and f"{LEFTOVER}/a.txt" in keys:
                state["deleted"] = True
                return
            if state["deleted"]:
                state["written"] = True
                clients.s3.put_object(
                    Bucket=settings.public_bucket_name, Key=f"{LEFTOVER}/late.txt", Body=b"x"
                )

    return fault


@dataclass
class LeftoverRuns:
    first: Run
    status_between: str
    second: Run
    after: Request
    events: list[dict[str, Any]]


@pytest.fixture(scope="module")
def leftover(tmp_path_factory) -> Iterator[LeftoverRuns]:
    with moto_world(tmp_path_factory.mktemp("leftover") / "reports") as (clients, settings):
        batch_write(clients.dynamodb, settings.users_table, [active_user(LEFTOVER, AS_OF), *pads()])
        put_objects(clients.s3, settings.public_bucket_name, [f"{LEFTOVER}/a.txt"])
        ask(clients, settings, LEFTOVER)
        instance = dg.DagsterInstance.ephemeral()
        recording.FAULTS.append(write_after_deletion(clients, settings))
        first = execute(instance)
        recording.FAULTS.clear()
        between = requests_by_user(clients, settings)[LEFTOVER].status
        second = execute(instance)
        yield LeftoverRuns(
            first,
            between,
            second,
            requests_by_user(clients, settings)[LEFTOVER],
            ledger(clients, settings, LEFTOVER),
        )


def test_a_leftover_keeps_the_request_open_until_the_next_run_verifies(leftover: LeftoverRuns):
    assert not leftover.first.result.success
    row = leftover.first.row(LEFTOVER)
    assert (row["outcome"], row["error"]) == ("failed", "leftover in files")
    assert row["request_status"] == "open"
    assert leftover.status_between == "open"
    assert leftover.second.result.success
    assert leftover.after.status == "done"
    assert leftover.after.run_id == leftover.second.result.run_id
    assert leftover.after.reason is not None and "verified" in leftover.after.reason
    assert [e["event"] for e in leftover.events] == ["deleted", "verified"]
    assert {e.get("request") for e in leftover.events} == {leftover.after.id}


@pytest.fixture(scope="module")
def windowed(tmp_path_factory) -> Iterator[tuple[Run, list[str], list[dict], list[dict]]]:
    with (
        moto_world(tmp_path_factory.mktemp("window") / "reports") as (clients, base),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("ERASURE_RESTORE_WINDOW_DAYS", "7")
        settings = dataclasses.replace(base, erasure_restore_window_days=7.0)
        batch_write(clients.dynamodb, settings.users_table, [active_user("w-user", AS_OF), *pads()])
        put_objects(clients.s3, settings.public_bucket_name, ["w-user/a.txt"])
        ask(clients, settings, "w-user")
        run = execute(dg.DagsterInstance.ephemeral())
        yield (
            run,
            manifests(clients, settings),
            versions_under(clients, settings, "w-user/"),
            ledger(clients, settings, "w-user"),
        )


def test_with_an_erasure_window_the_erased_user_stays_restorable(windowed):
    run, written, versions, events = windowed
    assert run.result.success, run.summary
    assert run.row("w-user")["request_status"] == "done"
    assert written  # a manifest to restore from
    assert any(not v.get("IsLatest") or "VersionId" in v for v in versions)
    assert any(v["Key"] == "w-user/a.txt" and "Size" in v for v in versions)  # content kept
    deleted = events[0]
    assert deleted["event"] == "deleted"
    assert deleted["restorable_until"] > deleted["at"] + 6 * DAY


@dataclass
class Bounded:
    blocked: Run
    blocked_open: int
    users_after_block: int
    approved: Run
    done: int


MANY = 101


@pytest.fixture(scope="module")
def bounded(tmp_path_factory) -> Iterator[Bounded]:
    with moto_world(tmp_path_factory.mktemp("bound") / "reports") as (clients, settings):
        asked = [f"m-{i:03d}" for i in range(MANY)]
        users = [active_user(u, AS_OF) for u in asked]
        batch_write(clients.dynamodb, settings.users_table, [*users, *pads(10)])
        for user_id in asked:
            ask(clients, settings, user_id)
        instance = dg.DagsterInstance.ephemeral()
        blocked = execute(instance)

        # The module's other worlds may still be open in the same moto: count this one's own.
        def mine(statuses: dict[str, Request]) -> dict[str, str]:
            return {u: r.status for u, r in statuses.items() if u.startswith("m-")}

        still = mine(requests_by_user(clients, settings))
        left = len([u for u in scan_users(clients, settings) if u.startswith("m-")])
        approved = execute(instance, approved=blocked.result.run_id)
        done = list(mine(requests_by_user(clients, settings)).values()).count("done")
        yield Bounded(blocked, list(still.values()).count("open"), left, approved, done)


def test_more_than_100_erasures_block_the_run_and_an_approval_lifts_it(bounded: Bounded):
    assert not bounded.blocked.result.success
    assert bounded.blocked.summary["blocked"] == ["erasures_within_limit"]
    assert bounded.blocked_open == MANY
    assert bounded.users_after_block == MANY
    assert bounded.approved.result.success, bounded.approved.summary
    assert bounded.approved.summary["counts"]["erased"] == MANY
    assert bounded.done == MANY


def test_erase_candidates_do_not_count_toward_the_deletion_guards(bounded: Bounded):
    checks = {e.check_name: e.passed for e in bounded.blocked.result.get_asset_check_evaluations()}
    assert checks["deletions_within_limit"] and checks["deletions_match_history"]
    assert not checks["erasures_within_limit"]


# A run dies in the middle of erasures, right before the first user item's delete: each user's
# files are hidden and the batch's journal, naming the requests, is written. Between that run and
# the next, one request is withdrawn and another user is put on hold.
CRASHED = ("c-closed", "c-held", "c-user")


class Died(BaseException):
    """The process running the job died here: nothing it would still do reaches AWS."""


def dies_at_the_first_user_delete(settings: Settings) -> Any:
    state = {"dead": False}

    def fault(operation: str, params: dict[str, Any]) -> None:
        if operation == "DeleteItem" and params.get("TableName") == settings.users_table:
            state["dead"] = True
        if state["dead"]:
            raise Died

    return fault


@dataclass
class CrashedErasures:
    crashed: Run
    journalled: dict[str, str | None]  # user: the request their journal entry names
    hidden: dict[str, list[str]]  # user: their current files after the crash
    asked: dict[str, Request]
    second: Run
    after: dict[str, Request]
    users_after: set[str]
    files_after: dict[str, list[str]]
    events: dict[str, list[dict[str, Any]]]
    journals_left: list[str]
    versions_left: list[dict[str, Any]]  # every version and marker under c-user's folder


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> Iterator[CrashedErasures]:
    with (
        moto_world(tmp_path_factory.mktemp("crashed") / "reports") as (clients, settings),
        pytest.MonkeyPatch.context() as patch,
    ):
        # Gone at once, whatever window another world of this module set meanwhile.
        patch.setenv("ERASURE_RESTORE_WINDOW_DAYS", "0")
        db, bucket = clients.dynamodb, settings.public_bucket_name
        batch_write(db, settings.users_table, [*(active_user(u, AS_OF) for u in CRASHED), *pads()])
        put_objects(clients.s3, bucket, [f"{u}/a.txt" for u in CRASHED])
        asked = {u: ask(clients, settings, u) for u in CRASHED}
        instance = dg.DagsterInstance.ephemeral()
        recording.FAULTS.append(dies_at_the_first_user_delete(settings))
        first = execute(instance)
        recording.FAULTS.clear()
        store = archive(clients, settings)
        journalled = {
            entry["user_id"]: entry.get("request")
            for key in journals(clients, settings)
            for entry in store.read_json(key)["users"]
        }
        hidden = {u: keys_under(clients.s3, bucket, f"{u}/") for u in CRASHED}
        assert settings.requests_table is not None and settings.holds_table is not None
        assert close_request(
            db,
            settings.requests_table,
            asked["c-closed"],
            RequestStatus.REFUSED,
            reason="withdrawn by the person",
            done_at=now_ms(),
            run_id=None,
        )
        put_hold(db, settings.holds_table, Hold("c-held", "legal case 7"))
        second = execute(instance)
        yield CrashedErasures(
            first,
            journalled,
            hidden,
            asked,
            second,
            requests_by_user(clients, settings),
            set(scan_users(clients, settings)),
            {u: keys_under(clients.s3, bucket, f"{u}/") for u in CRASHED},
            {u: ledger(clients, settings, u) for u in CRASHED},
            journals(clients, settings),
            versions_under(clients, settings, "c-user/"),
        )


def test_a_crash_mid_erasure_leaves_each_user_and_a_journal_naming_the_request(
    crashed: CrashedErasures,
):
    assert not crashed.crashed.result.success
    assert crashed.journalled == {u: crashed.asked[u].id for u in CRASHED}
    assert crashed.hidden == {u: [] for u in CRASHED}  # files under delete markers


def test_the_next_run_carries_on_an_erasure_whose_request_is_still_open(
    crashed: CrashedErasures,
):
    assert crashed.second.result.success, crashed.second.summary
    settled = metadata(crashed.second.result, "unfinished_deletions")
    assert (settled["carried"], settled["given_back"], settled["failed"]) == (1, 2, 0)
    assert "c-user" not in crashed.users_after
    assert crashed.versions_left == []
    request = crashed.after["c-user"]
    assert (request.status, request.run_id) == ("done", crashed.second.result.run_id)
    assert request.reason is not None and "verified" in request.reason
    row = crashed.second.row("c-user")
    assert (row["outcome"], row["request_status"]) == ("deleted", "done")
    events = crashed.events["c-user"]
    assert [e["event"] for e in events] == ["deleted", "verified"]
    assert {e["request"] for e in events} == {request.id}
    # The dead run's attempt counts in the one deletion recorded.
    assert events[0]["files"] == 1 and events[0]["run_id"] == crashed.second.result.run_id
    assert crashed.journals_left == []


def test_an_erasure_whose_request_closed_or_whose_user_is_held_is_given_back(
    crashed: CrashedErasures,
):
    for user_id in ("c-closed", "c-held"):
        assert user_id in crashed.users_after
        assert crashed.files_after[user_id] == [f"{user_id}/a.txt"]
        assert crashed.events[user_id] == []
    assert crashed.after["c-closed"].status == "refused"
    assert crashed.after["c-held"].status == "open"
    assert crashed.second.row("c-held")["request_reason"] == "held: legal case 7"

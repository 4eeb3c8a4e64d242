"""A user who comes back while their deletion is under way (SPEC §4): nothing irreversible
happens before the user item's conditional delete, so when it refuses them they get back, in
the same run, everything the cascade had hidden or removed. And a user another run deletes
right before this run's delete is reported as such, deleted once and recorded once.

Each case is one run of the real job with deletion batches of 10; a botocore hook on the job's
own clients makes the change at a precise moment: right after the user's batch wrote its
journal (at the batch's first DeleteObjects, which hides its files), or right before the user's
DeleteItem.
"""

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cleanup_pipeline.actions.cascade import settle_unfinished
from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.recovery import PENDING
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.batch_write import batch_write
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.cascade import cascade_context, run_cascade
from tests.support.items import active_user, board_entry, delete_candidate, feature, n, now_ms, s
from tests.support.jobs import metadata
from tests.support.moto_env import moto_world
from tests.support.recovery_world import archive, body_of, ledger, restore, versions_under
from tests.support.run_capture import HOUR, FinishedRun, run_and_capture

BACK = "back"  # sorts first: in the first batch, beside deleted users
OTHERS = [f"c{i:02d}" for i in range(20)]  # deleted: 3 batches of 10 with BACK
KEEPER = "keeper"  # active, on the boards
POLICY = CleanupPolicy(send_rate_per_second=200, deletion_batch_size=10)
AS_OF = now_ms() - HOUR
FILES = {  # key: (body, content type); avatar.png also has an older version
    f"{BACK}/avatar.png": (bytes(range(256)), "image/png"),
    f"{BACK}/docs/notes.txt": (b"my notes", "text/plain"),
}
WEEK = [
    board_entry("c00", 9),
    board_entry(BACK, 8),
    board_entry(KEEPER, 7),
    board_entry("c01", 6),
    board_entry(BACK, 5),
    board_entry("c15", 4),
]
MONTH = [board_entry("c03", 3), board_entry("c04", 2), board_entry(BACK, 1)]


@dataclass(frozen=True)
class Case:
    window: int
    versioned: bool

    @property
    def label(self) -> str:
        versioning = "versioned" if self.versioned else "never-versioned"
        return f"window-{self.window}-{versioning}"


CASES = [Case(30, True), Case(0, True), Case(0, False)]


def seed(clients: AwsClients, settings: Settings, as_of: int, versioned: bool) -> None:
    db, s3, bucket = clients.dynamodb, clients.s3, settings.public_bucket_name
    if not versioned:  # a bucket whose versioning was never enabled
        s3.delete_bucket(Bucket=bucket)
        s3.create_bucket(Bucket=bucket)
    users = [delete_candidate(uid, as_of, name=s(uid.upper())) for uid in [BACK, *OTHERS]]
    pads = [active_user(f"pad-{i}", as_of) for i in range(500)]  # under the deletion guard
    batch_write(db, settings.users_table, [*users, active_user(KEEPER, as_of), *pads])
    s3.put_object(Bucket=bucket, Key=f"{BACK}/avatar.png", Body=b"older")
    for key, (body, kind) in FILES.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=kind, Metadata={"k": key})
    for uid in OTHERS:
        s3.put_object(Bucket=bucket, Key=f"{uid}/file.txt", Body=b"x")
    features = [
        feature("f-back", BACK, title=s("Dark mode"), votes=n(3)),
        feature("f-back-2", BACK),
        feature("f-c00", "c00"),
    ]
    batch_write(db, settings.features_table, features)
    batch_write(
        db,
        settings.scoreboards_table,
        [{"id": s("week"), "users": {"L": WEEK}}, {"id": s("month"), "users": {"L": MONTH}}],
    )


def comes_back(clients: AwsClients, settings: Settings, user_id: str) -> None:
    clients.dynamodb.update_item(
        TableName=settings.users_table,
        Key={"id": s(user_id)},
        UpdateExpression="SET lastVisitAt = :now",
        ExpressionAttributeValues={":now": n(now_ms())},
    )


@contextmanager
def world(reports: Path, window: int, versioned: bool) -> Iterator[tuple[AwsClients, Settings]]:
    """The seeded world, the job set to `window` days of restore window."""
    with moto_world(reports) as (clients, base), pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESTORE_WINDOW_DAYS", str(window))
        settings = dataclasses.replace(base, restore_window_days=window)
        seed(clients, settings, AS_OF, versioned)
        yield clients, settings


@dataclass
class ComebackRun:
    case: Case
    run: FinishedRun
    settings: Settings
    clients: AwsClients
    journalled_when_back: bool


@pytest.fixture(scope="module", params=CASES, ids=lambda case: case.label)
def comeback(request, tmp_path_factory) -> Iterator[ComebackRun]:
    case: Case = request.param
    reports = tmp_path_factory.mktemp("reports")
    with world(reports, case.window, case.versioned) as (clients, settings):
        journalled: list[bool] = []
        lock = threading.Lock()

        def right_after_the_journal(operation: str, params: dict[str, Any]) -> None:
            objects = params.get("Delete", {}).get("Objects", [])
            if operation != "DeleteObjects" or not any(
                o["Key"].startswith(f"{BACK}/") for o in objects
            ):
                return
            with lock:
                if journalled:
                    return
                store = archive(clients, settings)
                journals = [store.read_json(key) for key in store.keys(PENDING)]
                journalled.append(BACK in {u["user_id"] for j in journals for u in j["users"]})
                comes_back(clients, settings, BACK)

        recording.FAULTS.append(right_after_the_journal)
        run = run_and_capture(clients, settings, AS_OF, POLICY)
        recording.FAULTS.clear()
        yield ComebackRun(case, run, settings, clients, journalled == [True])


def test_the_user_came_back_right_after_the_journal_and_the_run_succeeded(comeback):
    assert comeback.journalled_when_back
    assert comeback.run.result.success
    assert (
        comeback.run.after.users[BACK]["lastVisitAt"]
        != comeback.run.before.users[BACK]["lastVisitAt"]
    )


def test_the_others_of_the_batches_are_deleted(comeback):
    run = comeback.run
    for uid in OTHERS:
        assert run.report_row(uid)["outcome"] == "deleted", uid
        assert uid not in run.after.users
        assert not {k for k in run.after.keys if k.startswith(f"{uid}/")}
    assert "proposedBy" not in run.after.features["f-c00"]
    if comeback.case.window == 0:  # deleted means gone: no version, no delete marker
        for uid in OTHERS:
            assert versions_under(comeback.clients, comeback.settings, f"{uid}/") == [], uid


def test_the_user_is_kept_with_the_reason(comeback):
    row = comeback.run.report_row(BACK)
    expected = "kept" if comeback.case.versioned else "kept_partial"
    assert (row["decision"], row["outcome"], row["step"]) == ("delete", expected, "user")
    assert "now active" in row["error"]
    if not comeback.case.versioned:
        assert "2 files lost" in row["error"]
        for key in FILES:
            assert key in row["error"]


def test_feature_references_and_board_entries_are_back_where_they_were(comeback):
    after = comeback.run.after
    assert after.features["f-back"] == feature("f-back", BACK, title=s("Dark mode"), votes=n(3))
    assert after.features["f-back-2"] == feature("f-back-2", BACK)
    kept = {BACK, KEEPER}
    assert after.scoreboards["week"]["users"]["L"] == [e for e in WEEK if e["M"]["id"]["S"] in kept]
    assert after.scoreboards["month"]["users"]["L"] == [e for e in MONTH if e["M"]["id"] == s(BACK)]


def test_files_are_back_byte_for_byte_unless_the_bucket_keeps_no_versions(comeback):
    clients, settings = comeback.clients, comeback.settings
    keys = sorted(k for k in comeback.run.after.keys if k.startswith(f"{BACK}/"))
    if not comeback.case.versioned:
        assert keys == []
        return
    assert keys == sorted(FILES)
    for key, (body, kind) in FILES.items():
        assert body_of(clients, settings, key) == (body, {"k": key}, kind)
    # No delete marker of the cascade is left; the older version is still there.
    found = versions_under(clients, settings, f"{BACK}/")
    assert [v for v in found if "Size" not in v] == []
    assert len(found) == 3


def test_no_ledger_event_no_journal_and_restore_says_never_deleted(comeback):
    clients, settings = comeback.clients, comeback.settings
    assert ledger(clients, settings, BACK) == []
    assert archive(clients, settings).keys(PENDING) == []
    assert restore(clients, settings, BACK)["reason"].startswith("never deleted")
    # The next run finds nothing left to settle.
    later = settle_unfinished(cascade_context(clients, settings, AS_OF, run_id="later"))
    assert later.given_back == [] and later.carried == {} and later.recorded_late == 0


OTHER_RUN = "other-run"


@pytest.mark.parametrize("window", [30, 0])
def test_user_another_run_deletes_right_before_this_run_is_reported_deleted_by_other_run(
    tmp_path, window
):
    target = "c05"
    with world(tmp_path / "reports", window, versioned=True) as (clients, settings):
        recording.FAULTS.append(_other_run_deletes(clients, settings, AS_OF, target))
        run = run_and_capture(clients, settings, AS_OF, POLICY)
        recording.FAULTS.clear()
        row = run.report_row(target)
        assert (row["outcome"], row["step"]) == ("deleted_by_other_run", "user")
        assert run.result.success
        counted = metadata(run.result, "deleted_accounts")
        assert (counted["deleted_by_other_run"], counted["deleted"]) == (1, len(OTHERS))  # + BACK
        assert target not in run.after.users
        [event, proof] = ledger(clients, settings, target)  # recorded once, by the other run
        assert (proof["event"], proof["run_id"]) == ("verified", OTHER_RUN)
        assert (event["event"], event["run_id"]) == ("deleted", OTHER_RUN)
        assert archive(clients, settings).keys(PENDING) == []
        if window == 0:  # the other run listed after this run's markers: none is left
            assert versions_under(clients, settings, f"{target}/") == []
        for uid in (u for u in OTHERS if u != target):
            assert run.report_row(uid)["outcome"] == "deleted"
            assert [e["run_id"] for e in ledger(clients, settings, uid)] != [OTHER_RUN]


def _other_run_deletes(
    clients: AwsClients, settings: Settings, as_of: int, user_id: str
) -> Callable[[str, dict[str, Any]], None]:
    """Right before this run's DeleteItem of `user_id`, another run deletes that user, with the
    test's own clients (not hooked)."""
    done: list[bool] = []

    def hook(operation: str, params: dict[str, Any]) -> None:
        if done or operation != "DeleteItem" or params.get("Key") != {"id": s(user_id)}:
            return
        done.append(True)
        outcomes = run_cascade(clients, settings, as_of, [user_id], run_id=OTHER_RUN)
        assert [row["outcome"] for row in outcomes.rows] == ["deleted"]

    return hook

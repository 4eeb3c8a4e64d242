"""The per-run candidate report (SPEC §7)."""

import pandas as pd

from cleanup_pipeline.core.reports import build_report, count_outcomes
from tests.support.classify import decide_all
from tests.support.items import ABSENT, AS_OF, DAY, inactive, n, s, user


def snapshot_decisions() -> pd.DataFrame:
    return decide_all(
        [
            inactive("invalid", lastVisitAt=ABSENT),
            inactive("exempt", lifeTimeDeal={"BOOL": True}),
            user("active"),
            user(
                "waiting",
                lastVisitAt=n(AS_OF - 70 * DAY),
                accountDeletionEmailSentAt=n(AS_OF - 5 * DAY),
            ),
            inactive("notify", email=s("nora.private@example.com")),
            user(
                "delete",
                lastVisitAt=n(AS_OF - 100 * DAY),
                accountDeletionEmailSentAt=n(AS_OF - 35 * DAY),
            ),
        ]
    )


def outcomes(rows: list[tuple[str, str, str | None, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["id", "outcome", "step", "error"])
    frame.insert(1, "action", "test")
    return frame.astype("string[pyarrow]")


def by_id(report: pd.DataFrame) -> dict[str, dict]:
    return {row["id"]: row for row in report.to_dict("records")}


def test_only_invalid_waiting_notify_and_delete_are_reported():
    report = build_report(snapshot_decisions())
    assert list(report["id"]) == ["invalid", "waiting", "notify", "delete"]
    assert list(report["decision"]) == ["invalid", "waiting", "notify", "delete"]


def test_rows_carry_reason_timestamps_and_masked_email_only():
    report = build_report(snapshot_decisions())
    rows = by_id(report)
    assert rows["invalid"]["reason"] == "lastVisitAt: missing"
    assert rows["delete"]["reason"] == "warned over 30 days ago"
    assert rows["delete"]["lastVisitAt"] == AS_OF - 100 * DAY
    assert rows["delete"]["accountDeletionEmailSentAt"] == AS_OF - 35 * DAY
    assert rows["notify"]["days_inactive"] == 100
    assert rows["notify"]["email_masked"] == "n***@example.com"
    assert "nora.private" not in report.to_csv()
    for column in ("freeTrialEnd", "subscription_endsAt", "outcome", "step", "error"):
        assert column in report.columns


def test_outcome_defaults():
    rows = by_id(build_report(snapshot_decisions()))
    assert rows["invalid"]["outcome"] == "no_action"
    assert rows["waiting"]["outcome"] == "no_action"
    assert rows["notify"]["outcome"] == "not_attempted"
    assert rows["delete"]["outcome"] == "not_attempted"
    assert all(pd.isna(row["step"]) and pd.isna(row["error"]) for row in rows.values())


def test_dry_run_marks_actions_dry_run():
    rows = by_id(build_report(snapshot_decisions(), dry_run=True))
    assert rows["notify"]["outcome"] == "dry_run"
    assert rows["delete"]["outcome"] == "dry_run"
    assert rows["invalid"]["outcome"] == "no_action"
    assert rows["waiting"]["outcome"] == "no_action"


def test_outcomes_are_merged_by_id():
    results = outcomes(
        [
            ("delete", "failed", "s3", "AccessDenied for d***@example.com"),
            ("notify", "warned", None, None),
            ("exempt", "warned", None, None),  # not a reported user: ignored
            ("ghost", "deleted", None, None),
        ]
    )
    report = build_report(snapshot_decisions(), results)
    assert list(report["id"]) == ["invalid", "waiting", "notify", "delete"]
    rows = by_id(report)
    assert rows["notify"]["outcome"] == "warned"
    assert pd.isna(rows["notify"]["step"])
    assert rows["delete"]["outcome"] == "failed"
    assert rows["delete"]["step"] == "s3"
    assert rows["delete"]["error"] == "AccessDenied for d***@example.com"
    assert rows["invalid"]["outcome"] == "no_action"
    assert rows["waiting"]["outcome"] == "no_action"


def test_later_outcome_for_the_same_id_wins():
    results = outcomes(
        [
            ("delete", "failed", "features", "throttled"),
            ("delete", "deleted", None, None),
        ]
    )
    rows = by_id(build_report(snapshot_decisions(), results))
    assert rows["delete"]["outcome"] == "deleted"
    assert pd.isna(rows["delete"]["error"])
    assert rows["notify"]["outcome"] == "not_attempted"


def test_outcomes_override_dry_run_default_only_where_reported():
    results = outcomes([("notify", "dry_run", None, None)])
    rows = by_id(build_report(snapshot_decisions(), results, dry_run=True))
    assert rows["notify"]["outcome"] == "dry_run"
    assert rows["delete"]["outcome"] == "dry_run"


def test_empty_outcomes_and_empty_decisions():
    empty = outcomes([])
    assert list(build_report(snapshot_decisions(), empty)["outcome"]) == [
        "no_action",
        "no_action",
        "not_attempted",
        "not_attempted",
    ]
    assert len(build_report(decide_all([user("a")]))) == 0
    assert len(build_report(decide_all([]))) == 0


def test_count_outcomes():
    results = outcomes(
        [("a", "deleted", None, None), ("b", "failed", "s3", "x"), ("c", "deleted", None, None)]
    )
    assert count_outcomes(results, "deleted") == 2
    assert count_outcomes(results, "failed") == 1
    assert count_outcomes(results, "warned") == 0
    assert count_outcomes(outcomes([]), "deleted") == 0


def test_each_store_of_the_map_is_a_column_after_the_reports_own():
    """`store_<name>` per store, in the map's order, after every other column: what the
    deletion removed from that store; 0 for the rest (warned, no action, not deleted)."""
    own = list(build_report(snapshot_decisions()).columns)
    warned = outcomes([("notify", "warned", None, None)])
    deleted = outcomes([("delete", "deleted", None, None)]).assign(
        store_files=pd.array([3], dtype="int64"), store_sessions=pd.array([4], dtype="int64")
    )
    results = pd.concat([warned, deleted], ignore_index=True)  # warnings: blank counts
    report = build_report(snapshot_decisions(), results, stores=["files", "sessions", "teams"])
    assert list(report.columns) == [*own, "store_files", "store_sessions", "store_teams"]
    assert report[["store_files", "store_sessions", "store_teams"]].dtypes.eq("int64").all()
    rows = by_id(report)
    assert (rows["delete"]["store_files"], rows["delete"]["store_sessions"]) == (3, 4)
    assert rows["delete"]["store_teams"] == 0
    for user_id in ("invalid", "waiting", "notify"):
        assert [rows[user_id][f"store_{n}"] for n in ("files", "sessions", "teams")] == [0, 0, 0]


def test_a_report_before_any_action_or_of_a_dry_run_counts_every_store_at_zero():
    for report in (
        build_report(snapshot_decisions(), stores=["files", "sessions"]),
        build_report(snapshot_decisions(), dry_run=True, stores=["files", "sessions"]),
    ):
        assert report[["store_files", "store_sessions"]].to_numpy().tolist() == [[0, 0]] * 4

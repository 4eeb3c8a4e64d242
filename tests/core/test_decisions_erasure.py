"""A person's own erase request in the decision rules and the report: `erase` before the
inactivity rules, except for an invalid, held or paying user, whose request stays open with why."""

import io

import pandas as pd
import pytest

from cleanup_pipeline.core.decisions import (
    ACTIVE_SUBSCRIPTION,
    Policy,
    classify,
    count_decisions,
)
from cleanup_pipeline.core.guards import (
    ERASURES_WITHIN_LIMIT,
    REVIEWABLE_GUARDS,
    GuardInputs,
    GuardLimits,
    HistoryLimits,
    erasures_within_limit,
    evaluate,
    lift_for_review,
)
from cleanup_pipeline.core.reports import build_report, reason_counts
from cleanup_pipeline.core.requests import RequestStatus, erasure_fate
from cleanup_pipeline.core.wire import decode_items
from tests.support.items import AS_OF, DAY, NOW, inactive, n, s, user, warned

REQUESTS = {
    "active": "req-a",
    "notify": "req-n",
    "delete": "req-d",
    "waiting": "req-w",
    "trial": "req-t",
    "invalid": "req-i",
    "held": "req-h",
    "config": "req-c",
    "lifetime": "req-l",
    "subscriber": "req-s",
    "ended": "req-e",
}


def _items() -> list[dict]:
    return [
        user("active"),
        inactive("notify"),
        inactive("delete", **warned(AS_OF - 40 * DAY)),
        inactive("waiting", **warned(AS_OF - DAY)),
        user("trial", freeTrialEnd=n(AS_OF + DAY)),
        inactive("invalid", email=s("")),
        user("held"),
        user("config"),
        user("lifetime", lifeTimeDeal={"BOOL": True}),
        user("subscriber", subscription={"M": {"id": s("sub"), "status": s("active")}}),
        user(
            "ended",
            subscription={"M": {"id": s("sub"), "endsAt": n(AS_OF - DAY)}},
        ),
        inactive("no-request"),
    ]


def _decide(erasures: dict[str, str] | None = REQUESTS) -> pd.DataFrame:
    return classify(
        decode_items(_items()),
        AS_OF,
        NOW,
        Policy(exempt_user_ids=frozenset({"config"})),
        {"held": "legal case 12"},
        erasures,
    )


@pytest.mark.parametrize("user_id", ["active", "notify", "delete", "waiting", "trial", "ended"])
def test_an_open_erase_request_decides_erase_whatever_the_inactivity_rules_say(user_id: str):
    row = _decide().set_index("id").loc[user_id]
    assert (row["decision"], row["reason"], row["request"]) == (
        "erase",
        f"erasure request {REQUESTS[user_id]}",
        REQUESTS[user_id],
    )


@pytest.mark.parametrize(
    ("user_id", "decision", "reason"),
    [
        ("invalid", "invalid", "email: missing or empty"),
        ("held", "exempt", "hold"),
        ("config", "exempt", "hold"),
        ("lifetime", "exempt", "lifetime"),
        ("subscriber", "exempt", "subscriber"),
    ],
)
def test_invalid_held_and_paying_users_keep_their_decision_and_their_request(
    user_id: str, decision: str, reason: str
):
    row = _decide().set_index("id").loc[user_id]
    assert (row["decision"], row["reason"], row["request"]) == (
        decision,
        reason,
        REQUESTS[user_id],
    )


def test_without_requests_nothing_changes_and_erase_is_counted():
    without = _decide(None)
    assert without["request"].isna().all()
    assert "erase" not in set(without["decision"].astype(str))
    assert without.drop(columns="request").equals(_decide({}).drop(columns="request"))
    assert count_decisions(_decide())["erase"] == 6
    assert count_decisions(without)["erase"] == 0


def test_the_report_says_why_each_request_stays_open():
    report = build_report(_decide()).set_index("id")
    why = report["request_reason"].to_dict()
    assert why["held"] == "held: legal case 12"
    assert why["config"] == "held: exempt_user_ids"
    assert why["lifetime"] == why["subscriber"] == ACTIVE_SUBSCRIPTION
    assert why["invalid"] == "invalid: email: missing or empty"
    assert why["active"] == "not attempted"
    assert set(report.loc[list(REQUESTS), "request_status"]) == {"open"}
    assert set(report.loc[list(REQUESTS), "request"]) == set(REQUESTS.values())
    assert pd.isna(report.loc["no-request", "request"])
    assert report.loc["active", "outcome"] == "not_attempted"
    dry = build_report(_decide(), dry_run=True).set_index("id")
    assert (dry.loc["active", "outcome"], dry.loc["active", "request_reason"]) == (
        "dry_run",
        "dry run: nothing erased",
    )
    # Every request id counts under one reason key, so the UI plots one series.
    assert reason_counts(report)["reason/erasure_request"] == 6


def test_a_request_is_done_only_after_a_verified_deletion():
    assert erasure_fate("deleted", None, None)[0] == RequestStatus.DONE
    assert erasure_fate("failed", "verify", "leftover in files") == (
        RequestStatus.OPEN,
        "failed at verify: leftover in files",
    )
    assert erasure_fate("skipped", "recheck", "now exempt (hold)")[0] == RequestStatus.OPEN


@pytest.mark.parametrize(("erase", "passed"), [(100, True), (101, False)])
def test_erasures_have_their_own_bound_lifted_by_an_approval(erase: int, passed: bool):
    counts = {"users": 10_000, "invalid": 0, "delete": 0, "notify": 0, "erase": erase}
    assert erasures_within_limit(counts, GuardLimits()).passed is passed
    results = evaluate(GuardInputs(counts, []), GuardLimits(), HistoryLimits(), False)
    assert [r.passed for r in results if r.name == ERASURES_WITHIN_LIMIT] == [passed]
    # Erase candidates do not count toward the deletion guards.
    assert all(r.passed for r in results if r.name != ERASURES_WITHIN_LIMIT)
    assert ERASURES_WITHIN_LIMIT in REVIEWABLE_GUARDS
    assert all(r.passed for r in lift_for_review(results, "run-1"))


def test_a_request_of_no_such_user_joins_the_report_with_whole_store_counts():
    """A request whose user the snapshot does not hold is reported as the erase step found it;
    its store columns stay whole numbers (0), so the report can be written as Parquet."""
    outcomes = pd.DataFrame(
        {
            "id": ["ghost"],
            "action": ["erase"],
            "outcome": ["no_action"],
            "step": [None],
            "error": [None],
            "request": ["req-1"],
            "request_status": ["done"],
            "request_reason": ["no such user"],
        }
    ).astype("string")
    report = build_report(_decide(), outcomes, stores=("files", "sessions"))
    ghost = report.set_index("id").loc["ghost"]
    assert (ghost["decision"], ghost["request_reason"]) == ("erase", "no such user")
    assert (ghost["store_files"], ghost["store_sessions"]) == (0, 0)
    assert str(report["store_files"].dtype) == "int64"
    report.to_parquet(io.BytesIO())

"""SPEC §10 persistent holds: expiry at `until`, what a valid hold is, and holds in the rules."""

from dataclasses import replace

import pytest

from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import (
    EXEMPT_USER_IDS,
    Hold,
    HoldError,
    Policy,
    active_holds,
    check_user_id,
    classify,
    new_hold,
)
from cleanup_pipeline.core.reports import build_report, render_summary
from cleanup_pipeline.core.wire import decode_items
from tests.support.items import AS_OF, DAY, NOW, inactive, n, s, user
from tests.support.report_facts import facts


@pytest.mark.parametrize(
    ("now", "active"),
    [(NOW - 1, True), (NOW, True), (NOW + 1, False)],
    ids=["before", "at", "after"],
)
def test_a_hold_is_active_until_the_wall_clock_passes_until(now: int, active: bool) -> None:
    assert Hold("u1", "legal", until=NOW).active_at(now) is active
    assert active_holds([Hold("u1", "legal", until=NOW)], now) == (
        {"u1": "legal"} if active else {}
    )


def test_a_hold_without_until_never_expires_and_expired_ones_are_ignored() -> None:
    holds = [
        Hold("forever", "staff"),
        Hold("old", "ended", until=NOW - DAY),
        Hold("soon", "x", NOW + 1),
    ]
    assert active_holds(holds, NOW) == {"forever": "staff", "soon": "x"}


def test_new_hold_parses_until_and_masks_addresses_in_the_reason() -> None:
    hold = new_hold(" u1 ", "asked by jane.doe@example.com", "2030-01-01T00:00:00Z", NOW)
    assert hold == Hold("u1", "asked by j***@example.com", 1_893_456_000_000)
    assert hold.as_json(NOW) == {
        "user_id": "u1",
        "reason": "asked by j***@example.com",
        "until": "2030-01-01T00:00:00Z",
        "active": True,
    }
    assert new_hold("u1", "staff", None, NOW).until is None
    assert new_hold("u1", "staff", "", NOW).until is None


@pytest.mark.parametrize(
    ("user_id", "reason", "until", "message"),
    [
        ("u1", "", None, "needs a reason"),
        ("u1", "   ", None, "needs a reason"),
        ("", "legal", None, "user id"),
        ("a/b", "legal", None, "user id"),
        ("u1", "legal", "next tuesday", "ISO 8601"),
        ("u1", "legal", format_ms(NOW), "already past"),
        ("u1", "legal", str(NOW - 1), "already past"),
        ("u1", "legal", "99999999999999999999", r"until \(--until / until\) .* out of range"),
        ("u1", "legal", "9999-01-01", "out of range"),
        ("x" * 2049, "legal", None, r"USER_ID .* longer than 2,048 bytes"),
        ("é" * 1025, "legal", None, "longer than 2,048 bytes"),
    ],
)
def test_new_hold_refuses_what_would_not_hold(user_id, reason, until, message) -> None:
    with pytest.raises(HoldError, match=message) as raised:
        new_hold(user_id, reason, until, NOW)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 200


def test_a_hold_may_last_until_the_end_of_year_9998_and_its_id_be_2048_bytes() -> None:
    hold = new_hold("é" * 1024, "legal", "9998-12-31T23:59:59.999Z", NOW)
    assert hold.as_json(NOW)["until"] == "9998-12-31T23:59:59.999000Z"


@pytest.mark.parametrize(
    ("user_id", "why"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("a/b", "contains '/'"),
        ("x" * 5000, "longer than 2,048 bytes"),
        ("bad-\udcff", "not valid UTF-8"),  # bytes of no encoding, as the shell passes them
    ],
)
def test_an_id_no_user_can_have_is_refused_naming_the_argument(user_id: str, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        check_user_id(user_id, "USER_ID")
    message = str(raised.value)
    assert message.startswith("USER_ID ") and why in message
    assert "\n" not in message and len(message) < 200


def test_a_stored_until_that_is_no_time_is_listed_as_stored_and_flagged() -> None:
    hold = Hold("u1", "legal", None, unreadable_until="99999999999999999999")
    assert hold == Hold("u1", "legal") and hold.active_at(NOW)
    shown = hold.as_json(NOW)
    assert (shown["until"], shown["active"]) == ("99999999999999999999", True)
    assert "held until removed" in str(shown["flag"])
    assert "flag" not in Hold("u1", "legal", NOW + 1).as_json(NOW)


def _decide(items, holds=None, policy=None):
    return classify(decode_items(items), AS_OF, NOW, policy or Policy(), holds).set_index("id")


def test_a_held_user_is_exempt_hold_with_the_hold_reason() -> None:
    frame = _decide(
        [inactive("held"), inactive("config"), inactive("both"), inactive("free"), user("near")],
        holds={"held": "legal case 12", "both": "from the table", "near": "staff"},
        policy=Policy(exempt_user_ids=frozenset({"config", "both"})),
    )
    assert frame.loc["held", ["decision", "reason", "hold_reason"]].tolist() == [
        "exempt",
        "hold",
        "legal case 12",
    ]
    assert frame.loc["config", "hold_reason"] == EXEMPT_USER_IDS
    assert frame.loc["both", "hold_reason"] == "from the table"
    assert frame.loc["near", ["decision", "hold_reason"]].tolist() == ["exempt", "staff"]
    assert frame.loc["free", "decision"] == "notify"
    assert frame["hold_reason"].isna()["free"]


def test_an_invalid_user_is_invalid_even_when_held_and_not_reported_as_held() -> None:
    frame = _decide([inactive("held", email=s(""))], holds={"held": "legal"})
    assert frame.loc["held", "decision"] == "invalid"
    assert frame["hold_reason"].isna()["held"]


def test_the_report_lists_held_users_with_their_reason_and_no_action() -> None:
    decisions = classify(
        decode_items(
            [
                inactive("held"),
                user("held-active"),
                inactive("plain"),
                inactive("trial", freeTrialEnd=n(AS_OF + DAY)),
            ]
        ),
        AS_OF,
        NOW,
        Policy(),
        {"held": "legal", "held-active": "staff"},
    )
    report = build_report(decisions).set_index("id")
    assert sorted(report.index) == ["held", "held-active", "plain"]
    assert report.loc["held", ["decision", "reason", "hold_reason", "outcome"]].tolist() == [
        "exempt",
        "hold",
        "legal",
        "no_action",
    ]
    assert report.loc["plain", "outcome"] == "not_attempted"


def test_the_summary_counts_held_users_by_the_hold_reason() -> None:
    decisions = classify(
        decode_items([inactive("a"), inactive("b"), inactive("c"), inactive("free")]),
        AS_OF,
        NOW,
        Policy(exempt_user_ids=frozenset({"c"})),
        {"a": "legal", "b": "legal"},
    )
    held = replace(facts(), report=build_report(decisions))
    text = render_summary(held)
    assert "| legal | 2 |" in text and f"| {EXEMPT_USER_IDS} | 1 |" in text
    assert "## Held" not in render_summary(facts())

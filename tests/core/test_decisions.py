"""SPEC §3: the decision for each user, through the real wire decoder."""

import pandas as pd
import pytest

from cleanup_pipeline.core.decisions import DECISIONS, MIN_PLAUSIBLE_MS, Policy, count_decisions
from tests.support.classify import decide, decide_all
from tests.support.items import ABSENT, AS_OF, DAY, NOW, NULL, inactive, n, s, user

GRACE = 30 * DAY
NOTIFY_AFTER = 60 * DAY


def warned(user_id: str = "u1", sent_at: int = AS_OF - 10 * DAY, **attributes):
    """A user warned at `sent_at` who has not visited since (last visit 61 days before it)."""
    return user(
        user_id,
        lastVisitAt=n(sent_at - 61 * DAY),
        accountDeletionEmailSentAt=n(sent_at),
        **attributes,
    )


# --- strict comparisons, both sides of each boundary ---------------------------------------


@pytest.mark.parametrize(
    ("trial_end", "expected"),
    [
        (AS_OF - 1, ("notify", "inactive over 60 days")),
        (AS_OF, ("notify", "inactive over 60 days")),
        (AS_OF + 1, ("exempt", "trial")),
    ],
)
def test_trial_exempts_only_when_it_ends_strictly_after_as_of(trial_end, expected):
    assert decide(inactive(freeTrialEnd=n(trial_end))) == expected


@pytest.mark.parametrize(
    ("ends_at", "expected"),
    [
        (AS_OF - 1, "notify"),
        (AS_OF, "notify"),
        (AS_OF + 1, "exempt"),
    ],
)
def test_subscription_exempts_only_while_ends_at_is_strictly_after_as_of(ends_at, expected):
    item = inactive(subscription={"M": {"id": s("sub_1"), "endsAt": n(ends_at)}})
    decision, reason = decide(item)
    assert decision == expected
    assert (reason == "subscriber") == (expected == "exempt")


@pytest.mark.parametrize(
    ("sent_at", "expected"),
    [
        (AS_OF - GRACE + 1, "waiting"),
        (AS_OF - GRACE, "waiting"),
        (AS_OF - GRACE - 1, "delete"),
        (AS_OF - GRACE - 365 * DAY, "delete"),
    ],
)
def test_delete_only_when_warning_plus_grace_is_strictly_before_as_of(sent_at, expected):
    assert decide(warned(sent_at=sent_at))[0] == expected


@pytest.mark.parametrize(
    ("last_visit", "expected"),
    [
        (AS_OF - NOTIFY_AFTER + 1, "active"),
        (AS_OF - NOTIFY_AFTER, "active"),
        (AS_OF - NOTIFY_AFTER - 1, "notify"),
    ],
)
def test_notify_only_when_inactive_strictly_longer_than_60_days(last_visit, expected):
    assert decide(user(lastVisitAt=n(last_visit)))[0] == expected


@pytest.mark.parametrize(
    ("last_visit_offset", "expected"),
    [
        (-1, "delete"),  # visited before the warning: still warned
        (0, "notify"),  # visited at the very moment of the warning: not warned, rule 6
        (1, "notify"),  # came back after the warning: starts over
    ],
)
def test_warned_only_when_last_visit_strictly_before_warning(last_visit_offset, expected):
    sent_at = AS_OF - 80 * DAY  # long enough ago for a delete, if the warning counts
    item = user(
        lastVisitAt=n(sent_at + last_visit_offset),
        accountDeletionEmailSentAt=n(sent_at),
    )
    assert decide(item)[0] == expected


def test_came_back_after_warning_and_recent_is_active():
    sent_at = AS_OF - 80 * DAY
    item = user(lastVisitAt=n(AS_OF - 5 * DAY), accountDeletionEmailSentAt=n(sent_at))
    assert decide(item) == ("active", "active")


@pytest.mark.parametrize(
    ("last_visit", "expected"),
    [
        (MIN_PLAUSIBLE_MS - 1, "invalid"),
        (MIN_PLAUSIBLE_MS, "notify"),
        (MIN_PLAUSIBLE_MS + 1, "notify"),
        (1_700_000_000, "invalid"),  # seconds, not milliseconds
    ],
)
def test_last_visit_below_year_2000_in_ms_is_invalid(last_visit, expected):
    decision, reason = decide(user(lastVisitAt=n(last_visit)))
    assert MIN_PLAUSIBLE_MS == 946_684_800_000
    assert decision == expected
    if expected == "invalid":
        assert reason.startswith("lastVisitAt")


@pytest.mark.parametrize(
    ("as_of", "last_visit", "expected"),
    [
        (NOW, NOW + DAY, "active"),
        (NOW, NOW + DAY + 1, "invalid"),
        # The future limit is measured from the wall clock, not from as_of.
        (NOW - 100 * DAY, NOW + DAY, "active"),
        (NOW - 100 * DAY, NOW + DAY + 1, "invalid"),
        (NOW + 10 * DAY, NOW + DAY + 1, "invalid"),
    ],
)
def test_last_visit_more_than_a_day_after_now_is_invalid(as_of, last_visit, expected):
    decision, reason = decide(user(lastVisitAt=n(last_visit)), as_of=as_of, now=NOW)
    assert decision == expected
    if expected == "invalid":
        assert reason.startswith("lastVisitAt")


def test_durations_are_exact_milliseconds_not_whole_days():
    # 60 days and 1 ms is over the limit even though the whole-day count is 60.
    frame = decide_all([user(lastVisitAt=n(AS_OF - NOTIFY_AFTER - 1))])
    assert frame["decision"].iloc[0] == "notify"
    assert frame["days_inactive"].iloc[0] == 60


# --- rule order -----------------------------------------------------------------------------


HOLD = Policy(exempt_user_ids=frozenset({"held", "bad/id", "dup"}))


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        pytest.param(
            [inactive("bad/id")],
            ("invalid", "id"),
            id="invalid id beats hold",
        ),
        pytest.param(
            [inactive("held", lastVisitAt=s("1700000000000"))],
            ("invalid", "lastVisitAt"),
            id="malformed beats hold",
        ),
        pytest.param(
            [inactive("held", email=s(""))],
            ("invalid", "email"),
            id="missing email beats hold",
        ),
        pytest.param(
            [inactive("dup"), inactive("dup", email=s("other@example.com"))],
            ("invalid", "id"),
            id="duplicate beats hold",
        ),
        pytest.param(
            [warned("held", sent_at=AS_OF - 100 * DAY, freeTrialEnd=n(AS_OF + DAY))],
            ("exempt", "hold"),
            id="hold beats trial and delete",
        ),
        pytest.param(
            [inactive("held")],
            ("exempt", "hold"),
            id="hold beats notify",
        ),
        pytest.param(
            [inactive(freeTrialEnd=n(AS_OF + DAY), lifeTimeDeal={"BOOL": True})],
            ("exempt", "trial"),
            id="trial beats lifetime",
        ),
        pytest.param(
            [inactive(lifeTimeDeal={"BOOL": True}, subscription={"M": {}})],
            ("exempt", "lifetime"),
            id="lifetime beats subscriber",
        ),
        pytest.param(
            [
                warned(
                    sent_at=AS_OF - 100 * DAY,
                    subscription={"M": {"endsAt": n(AS_OF + DAY)}},
                )
            ],
            ("exempt", "subscriber"),
            id="subscriber beats delete",
        ),
        pytest.param(
            [warned(sent_at=AS_OF - DAY, subscription={"M": {"status": s("active")}})],
            ("exempt", "subscriber"),
            id="subscriber beats waiting",
        ),
        pytest.param(
            [inactive(subscription={"M": {}})],
            ("exempt", "subscriber"),
            id="subscriber beats notify",
        ),
        pytest.param(
            [inactive(lifeTimeDeal={"BOOL": True})],
            ("exempt", "lifetime"),
            id="lifetime beats notify",
        ),
        pytest.param(
            [inactive(freeTrialEnd=n(AS_OF + 1))],
            ("exempt", "trial"),
            id="trial beats notify",
        ),
        pytest.param(
            [warned(sent_at=AS_OF - 100 * DAY)],
            ("delete", "warned"),
            id="delete beats notify",
        ),
        pytest.param(
            [warned(sent_at=AS_OF - DAY)],
            ("waiting", "warned"),
            id="waiting beats notify",
        ),
    ],
)
def test_first_matching_rule_decides(items, expected):
    frame = decide_all(items, policy=HOLD)
    decision, reason_prefix = expected
    assert set(frame["decision"].astype(str)) == {decision}
    assert all(str(reason).startswith(reason_prefix) for reason in frame["reason"])


def test_expired_subscription_does_not_protect_a_warned_user():
    item = warned(sent_at=AS_OF - 100 * DAY, subscription={"M": {"endsAt": n(AS_OF - DAY)}})
    assert decide(item)[0] == "delete"


def test_hold_list_is_empty_by_default_and_matches_exact_ids():
    policy = Policy(exempt_user_ids=frozenset({"alice"}))
    frame = decide_all([inactive("alice"), inactive("alice2"), inactive("Alice")], policy=policy)
    assert list(frame["decision"].astype(str)) == ["exempt", "notify", "notify"]
    assert decide(inactive("alice"))[0] == "notify"


# --- lifeTimeDeal truthiness ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        ({"BOOL": False}, False),
        (NULL, False),
        (n(0), False),
        (n("0.0"), False),
        (n("-0"), False),
        (s(""), False),
        (ABSENT, False),
        ({"BOOL": True}, True),
        (n(1), True),
        (n(-1), True),
        (n("0.5"), True),
        (s("yes"), True),
        (s("0"), True),  # a non-empty string, truthy in JavaScript
        (s("false"), True),
        ({"M": {}}, True),
        ({"L": []}, True),
        ({"M": {"x": {"BOOL": False}}}, True),
        ({"SS": ["a"]}, True),
    ],
)
def test_lifetime_deal_uses_javascript_truthiness(value, truthy):
    expected = ("exempt", "lifetime") if truthy else ("notify", "inactive over 60 days")
    assert decide(inactive(lifeTimeDeal=value)) == expected


# --- NULL counts as absent ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"accountDeletionEmailSentAt": NULL}, "notify"),
        ({"freeTrialEnd": NULL}, "notify"),
        ({"subscription": NULL}, "notify"),
        ({"lifeTimeDeal": NULL}, "notify"),
        ({"subscription": {"M": {"endsAt": NULL}}}, "exempt"),  # endsAt absent: subscriber
        ({"subscription": {"M": {}}}, "exempt"),
        ({"email": NULL}, "invalid"),
        ({"lastVisitAt": NULL}, "invalid"),
        ({"id": NULL}, "invalid"),
    ],
)
def test_null_counts_as_absent(attributes, expected):
    assert decide(inactive(**attributes))[0] == expected


def test_null_warning_time_is_not_a_warning():
    item = user(lastVisitAt=n(AS_OF - 200 * DAY), accountDeletionEmailSentAt=NULL)
    assert decide(item) == ("notify", "inactive over 60 days")


# --- invalid records ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "reason_prefix"),
    [
        ({"id": s("")}, "id"),
        ({"id": s("a/b")}, "id"),
        ({"id": s("/")}, "id"),
        ({"id": s("trailing/")}, "id"),
        ({"id": ABSENT}, "id"),
        ({"id": n(12)}, "id"),
        ({"email": ABSENT}, "email"),
        ({"email": s("")}, "email"),
        ({"email": n(1)}, "email"),
        ({"lastVisitAt": ABSENT}, "lastVisitAt"),
        ({"lastVisitAt": s("1700000000000")}, "lastVisitAt"),
        ({"lastVisitAt": {"BOOL": True}}, "lastVisitAt"),
        ({"lastVisitAt": n("1e400")}, "lastVisitAt"),
        ({"lastVisitAt": n("abc")}, "lastVisitAt"),
        ({"lastVisitAt": n(-5)}, "lastVisitAt"),
        ({"accountDeletionEmailSentAt": s("1700000000000")}, "accountDeletionEmailSentAt"),
        ({"accountDeletionEmailSentAt": {"L": []}}, "accountDeletionEmailSentAt"),
        ({"freeTrialEnd": s("2030-01-01")}, "freeTrialEnd"),
        ({"freeTrialEnd": {"BOOL": True}}, "freeTrialEnd"),
        ({"subscription": s("sub_1")}, "subscription"),
        ({"subscription": {"L": []}}, "subscription"),
        ({"subscription": {"BOOL": True}}, "subscription"),
        ({"subscription": n(1)}, "subscription"),
        ({"subscription": {"M": {"endsAt": s("2030")}}}, "subscription.endsAt"),
        ({"subscription": {"M": {"endsAt": {"BOOL": False}}}}, "subscription.endsAt"),
    ],
)
def test_invalid_records_carry_a_reason(attributes, reason_prefix):
    decision, reason = decide(inactive(**attributes))
    assert decision == "invalid"
    assert reason.startswith(reason_prefix)


def test_invalid_beats_every_exemption():
    item = inactive(
        lastVisitAt=s("x"),
        freeTrialEnd=n(AS_OF + DAY),
        lifeTimeDeal={"BOOL": True},
        subscription={"M": {}},
    )
    assert decide(item) == ("invalid", "lastVisitAt: not a number")


def test_malformed_optional_attribute_on_otherwise_exempt_user_is_invalid():
    item = inactive(lifeTimeDeal={"BOOL": True}, freeTrialEnd=s("soon"))
    assert decide(item)[0] == "invalid"


def test_duplicate_ids_are_all_invalid_and_others_unaffected():
    frame = decide_all([inactive("a"), inactive("b"), inactive("a"), inactive("c")])
    assert list(frame["id"]) == ["a", "b", "a", "c"]
    assert list(frame["decision"].astype(str)) == ["invalid", "notify", "invalid", "notify"]
    assert "dup" in str(frame["reason"].iloc[0])


def test_one_bad_row_does_not_affect_its_neighbours():
    items = [
        inactive("a"),
        inactive("b", lastVisitAt={"M": {}}),
        inactive("c", subscription=s("x")),
        user("d"),
    ]
    frame = decide_all(items)
    assert list(frame["decision"].astype(str)) == ["notify", "invalid", "invalid", "active"]


# --- custom policy ---------------------------------------------------------------------------


CUSTOM = Policy(notify_after_days=10, delete_after_days=15)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (user(lastVisitAt=n(AS_OF - 10 * DAY)), "active"),
        (user(lastVisitAt=n(AS_OF - 10 * DAY - 1)), "notify"),
        (warned(sent_at=AS_OF - 5 * DAY), "waiting"),
        (warned(sent_at=AS_OF - 5 * DAY - 1), "delete"),
    ],
)
def test_custom_policy_moves_the_boundaries(item, expected):
    assert decide(item, policy=CUSTOM)[0] == expected


def test_custom_policy_reasons_name_its_durations():
    frame = decide_all(
        [user("a", lastVisitAt=n(AS_OF - 11 * DAY)), warned("b", sent_at=AS_OF - 6 * DAY)],
        policy=CUSTOM,
    )
    assert list(frame["reason"].astype(str)) == [
        "inactive over 10 days",
        "warned over 5 days ago",
    ]


def test_default_policy_is_60_and_90_days():
    policy = Policy()
    assert (policy.notify_after_days, policy.delete_after_days) == (60, 90)
    assert policy.grace_ms == 30 * DAY
    assert policy.notify_after_ms == 60 * DAY
    assert policy.exempt_user_ids == frozenset()


@pytest.mark.parametrize(
    ("notify_after", "delete_after"),
    [(60, 60), (60, 59), (90, 60), (0, 30), (-1, 30)],
)
def test_policy_rejects_delete_not_after_notify(notify_after, delete_after):
    with pytest.raises(ValueError):
        Policy(notify_after_days=notify_after, delete_after_days=delete_after)


def test_policy_accepts_delete_one_day_after_notify():
    assert Policy(notify_after_days=60, delete_after_days=61).grace_ms == DAY


# --- output shape and counts ------------------------------------------------------------------


def one_of_each() -> list[dict]:
    return [
        inactive("i", lastVisitAt=ABSENT),
        inactive("e", lifeTimeDeal={"BOOL": True}),
        user("a"),
        warned("w", sent_at=AS_OF - DAY),
        inactive("n"),
        warned("d", sent_at=AS_OF - 40 * DAY),
    ]


def test_count_decisions_reports_all_six_decisions():
    frame = decide_all(one_of_each())
    assert list(frame["decision"].astype(str)) == [
        "invalid",
        "exempt",
        "active",
        "waiting",
        "notify",
        "delete",
    ]
    assert count_decisions(frame) == {
        "users": 6,
        "invalid": 1,
        "exempt": 1,
        "active": 1,
        "waiting": 1,
        "notify": 1,
        "delete": 1,
        "erase": 0,
    }


def test_count_decisions_includes_zero_counts():
    counts = count_decisions(decide_all([inactive("x"), inactive("y")]))
    assert counts == {
        "users": 2,
        "invalid": 0,
        "exempt": 0,
        "active": 0,
        "waiting": 0,
        "notify": 2,
        "delete": 0,
        "erase": 0,
    }
    assert set(counts) == {"users", *DECISIONS}


def test_empty_snapshot_classifies_to_empty_frame():
    frame = decide_all([])
    assert len(frame) == 0
    assert count_decisions(frame) == {"users": 0, **dict.fromkeys(DECISIONS, 0)}


def test_classify_keeps_row_order_timestamps_and_masks_emails():
    items = [
        warned("d", sent_at=AS_OF - 40 * DAY, freeTrialEnd=n(AS_OF - 50 * DAY)),
        user("a", email=s("alice.secret@example.com")),
    ]
    frame = decide_all(items)
    assert list(frame["id"]) == ["d", "a"]
    first = frame.iloc[0]
    assert first["lastVisitAt"] == AS_OF - 101 * DAY
    assert first["accountDeletionEmailSentAt"] == AS_OF - 40 * DAY
    assert first["freeTrialEnd"] == AS_OF - 50 * DAY
    assert pd.isna(first["subscription_endsAt"])
    assert first["days_inactive"] == 101
    assert list(frame["email_masked"]) == ["d***@example.com", "a***@example.com"]
    assert "alice.secret" not in frame.to_csv()


def test_days_inactive_is_missing_when_last_visit_is_missing():
    frame = decide_all([inactive("x", lastVisitAt=ABSENT)])
    assert pd.isna(frame["days_inactive"].iloc[0])


def test_large_snapshot_mixed_decisions_match_per_row_decisions():
    items = [item for k in range(200) for item in one_of_each_with_suffix(k)]
    frame = decide_all(items)
    expected = ["invalid", "exempt", "active", "waiting", "notify", "delete"] * 200
    assert list(frame["decision"].astype(str)) == expected


def one_of_each_with_suffix(k: int) -> list[dict]:
    items = one_of_each()
    for item in items:
        item["id"] = s(f"{item['id']['S']}{k}")
    return items

"""Guards against mass action (SPEC §5)."""

import pytest

from cleanup_pipeline.core.guards import (
    GUARD_NAMES,
    GuardInputs,
    GuardLimits,
    HistoryLimits,
    deletions_within_limit,
    evaluate,
    invalid_share,
    matches_history,
    warnings_within_limit,
)

LIMITS = GuardLimits()


def counts(users=1000, invalid=0, delete=0, notify=0) -> dict[str, int]:
    return {"users": users, "invalid": invalid, "delete": delete, "notify": notify}


def test_defaults():
    assert LIMITS.max_invalid_fraction == 0.01
    assert LIMITS.min_guarded_count == 25
    assert LIMITS.max_delete_fraction == 0.05
    assert LIMITS.max_notify_fraction == 0.20


@pytest.mark.parametrize(
    ("users", "invalid", "passed"),
    [
        (1000, 0, True),
        (1000, 10, True),
        (1000, 11, False),
        (100, 1, True),
        (100, 2, False),
        (50, 1, False),  # 1% of 50 is 0.5
        (10_000, 100, True),
        (10_000, 101, False),
    ],
)
def test_invalid_share(users, invalid, passed):
    result = invalid_share(counts(users, invalid), LIMITS)
    assert result.passed is passed
    assert result.count == invalid
    assert result.limit == pytest.approx(users / 100)


@pytest.mark.parametrize(
    ("users", "invalid", "delete", "limit"),
    [
        (1000, 0, 50, 50),  # 5% of 1000 valid users
        (1000, 0, 51, 50),
        (1010, 10, 50, 50),  # limit counts valid users only
        (1010, 10, 51, 50),
        (100, 0, 25, 25),  # floor of 25
        (100, 0, 26, 25),
        (500, 0, 25, 25),
        (500, 0, 26, 25),
        (520, 0, 26, 26),
        (520, 0, 27, 26),
        (0, 0, 0, 25),
        (20, 0, 20, 25),
    ],
)
def test_delete_limit_is_max_of_floor_and_fraction_of_valid(users, invalid, delete, limit):
    result = deletions_within_limit(counts(users, invalid, delete=delete), LIMITS)
    assert result.limit == limit
    assert result.count == delete
    assert result.passed is (delete <= limit)
    assert result.name == "deletions_within_limit"


@pytest.mark.parametrize(
    ("users", "invalid", "notify", "limit"),
    [
        (1000, 0, 200, 200),
        (1000, 0, 201, 200),
        (1005, 5, 200, 200),
        (1005, 5, 201, 200),
        (100, 0, 25, 25),
        (100, 0, 26, 25),
        (125, 0, 25, 25),
        (130, 0, 26, 26),
        (130, 0, 27, 26),
    ],
)
def test_notify_limit_is_max_of_floor_and_fraction_of_valid(users, invalid, notify, limit):
    result = warnings_within_limit(counts(users, invalid, notify=notify), LIMITS)
    assert result.limit == limit
    assert result.passed is (notify <= limit)
    assert result.name == "warnings_within_limit"


def test_custom_limits():
    limits = GuardLimits(min_guarded_count=3, max_delete_fraction=0.1, max_notify_fraction=0.5)
    assert deletions_within_limit(counts(100, delete=10), limits).passed
    assert not deletions_within_limit(counts(100, delete=11), limits).passed
    assert deletions_within_limit(counts(10, delete=3), limits).passed
    assert not deletions_within_limit(counts(10, delete=4), limits).passed
    assert warnings_within_limit(counts(100, notify=50), limits).passed
    assert not warnings_within_limit(counts(100, notify=51), limits).passed


@pytest.mark.parametrize("fraction", [0.07, 0.29, 0.57, 0.58, 0.13])
def test_limit_is_exact_for_decimal_fractions(fraction):
    # fraction * 100 valid users is a whole number: exactly that many candidates pass.
    exact = round(fraction * 100)
    limits = GuardLimits(
        max_invalid_fraction=fraction,
        min_guarded_count=0,
        max_delete_fraction=fraction,
        max_notify_fraction=fraction,
    )
    assert deletions_within_limit(counts(100, delete=exact), limits).passed
    assert not deletions_within_limit(counts(100, delete=exact + 1), limits).passed
    assert warnings_within_limit(counts(100, notify=exact), limits).passed
    assert not warnings_within_limit(counts(100, notify=exact + 1), limits).passed
    assert invalid_share(counts(100, invalid=exact), limits).passed
    assert not invalid_share(counts(100, invalid=exact + 1), limits).passed


def test_allow_mass_action_lifts_size_guards():
    huge = counts(1000, delete=1000, notify=1000)
    assert not deletions_within_limit(huge, LIMITS).passed
    assert not warnings_within_limit(huge, LIMITS).passed
    lifted_delete = deletions_within_limit(huge, LIMITS, allow_mass_action=True)
    lifted_notify = warnings_within_limit(huge, LIMITS, allow_mass_action=True)
    assert lifted_delete.passed and lifted_notify.passed
    assert "allow_mass_action" in lifted_delete.reason
    assert lifted_delete.count == 1000


def test_allow_mass_action_does_not_lift_invalid_share():
    # invalid_share takes no override at all: the data-quality guard always applies.
    with pytest.raises(TypeError):
        invalid_share(counts(1000, invalid=500), LIMITS, allow_mass_action=True)  # type: ignore[call-arg]
    assert not invalid_share(counts(1000, invalid=500), LIMITS).passed


def test_failure_reason_explains_the_limit():
    result = deletions_within_limit(counts(1000, delete=51), LIMITS)
    assert "51" in result.reason and "50" in result.reason
    assert "over" in result.reason
    bad = invalid_share(counts(1000, invalid=11), LIMITS)
    assert "11" in bad.reason and "1,000" in bad.reason


def test_reasons_state_the_numbers_and_the_settings_behind_the_limit():
    """What an operator reads in a failed check's description and in the report summary."""
    size = deletions_within_limit(counts(20_100, invalid=100, delete=1234), LIMITS)
    assert size.reason == (
        "1,234 delete candidates is over the limit of 1,000 (the larger of min_guarded_count "
        "25 and max_delete_fraction 5% of 20,000 valid users)"
    )
    bad = invalid_share(counts(20_000, invalid=250), LIMITS)
    assert bad.reason == (
        "250 of 20,000 users are invalid (1.25%); the limit is 200 (max_invalid_fraction 1% of "
        "users): the snapshot looks wrong"
    )
    history = matches_history(
        "deletions_match_history", "delete candidates", 1234, [10, 12, 11], LIMITS, HistoryLimits()
    )
    assert history.reason == (
        "1,234 delete candidates is over the limit of 55 (history_factor 5 x the median (11) of "
        "the last 3 successful runs)"
    )
    odd = warnings_within_limit(counts(1001, notify=300), GuardLimits(max_notify_fraction=0.25))
    assert odd.reason.startswith("300 notify candidates is over the limit of 250.25 (")


def test_one_evaluation_gives_every_guard_of_the_run_deletions_first():
    history = [counts(1000, delete=5, notify=10)] * 3
    inputs = GuardInputs(counts(1000, delete=60, notify=10), history)
    results = evaluate(inputs, LIMITS, HistoryLimits(), allow_mass_action=False)
    assert (
        [r.name for r in results]
        == list(GUARD_NAMES)
        == [
            "invalid_share_within_limit",
            "deletions_within_limit",
            "deletions_match_history",
            "warnings_within_limit",
            "warnings_match_history",
            "erasures_within_limit",
        ]
    )
    failed = {r.name for r in results if not r.passed}
    assert failed == {"deletions_within_limit", "deletions_match_history"}
    lifted = evaluate(inputs, LIMITS, HistoryLimits(), allow_mass_action=True)
    assert all(r.passed for r in lifted)

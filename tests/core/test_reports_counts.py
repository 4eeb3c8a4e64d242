"""Counts of a report by outcome and reason, under stable metadata keys (SPEC §7)."""

import pandas as pd
import pytest

from cleanup_pipeline.actions import outcomes
from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.reports import (
    KNOWN_REASON_KEYS,
    OUTCOMES,
    build_report,
    outcome_counts,
    outcome_totals,
    reason_counts,
    reason_key,
)
from tests.support.classify import decide_all
from tests.support.items import ABSENT, AS_OF, DAY, NOW, inactive, n, s, user
from tests.support.malformed_corpus import malformed_corpus


def items() -> list[dict]:
    return [
        inactive("no-visit", lastVisitAt=ABSENT),
        inactive("seconds", lastVisitAt=n(1_700_000_000)),
        inactive("bad-type", lastVisitAt=s("yesterday")),
        user("waiting", lastVisitAt=n(AS_OF - 70 * DAY), accountDeletionEmailSentAt=n(AS_OF - DAY)),
        inactive("notify-1"),
        inactive("notify-2"),
        user(
            "delete",
            lastVisitAt=n(AS_OF - 100 * DAY),
            accountDeletionEmailSentAt=n(AS_OF - 35 * DAY),
        ),
        user("active"),
    ]


def test_every_known_outcome_is_counted_zero_included():
    counts = outcome_counts(build_report(decide_all(items())))
    assert list(counts) == [f"outcome/{o}" for o in OUTCOMES]
    assert counts["outcome/not_attempted"] == 3  # 2 notify + 1 delete
    assert counts["outcome/no_action"] == 4  # 3 invalid + 1 waiting
    assert counts["outcome/warned"] == counts["outcome/failed"] == 0
    assert sum(counts.values()) == 7


def test_every_action_outcome_is_a_known_report_outcome():
    produced = {outcomes.WARNED, outcomes.DELETED, outcomes.SKIPPED, outcomes.FAILED}
    assert produced | {outcomes.DRY_RUN} <= set(OUTCOMES)


def test_an_unforeseen_outcome_is_still_counted():
    report = pd.DataFrame({"outcome": ["warned", "mystery", "mystery"]})
    assert outcome_totals(report)["mystery"] == 2
    assert outcome_totals(report)["warned"] == 1
    assert outcome_totals(report)["deleted"] == 0


def test_reasons_are_counted_under_stable_keys_zero_included():
    counts = reason_counts(build_report(decide_all(items())))
    assert set(KNOWN_REASON_KEYS) <= set(counts)
    assert counts["reason/lastVisitAt_missing"] == 1
    assert counts["reason/lastVisitAt_too_small_looks_like_seconds"] == 1
    assert counts["reason/lastVisitAt_not_a_number"] == 1
    assert counts["reason/inactive_over_n_days"] == 2
    assert counts["reason/warned_over_n_days_ago"] == 1
    assert counts["reason/warned_within_the_n_day_grace_period"] == 1
    assert counts["reason/id_contains_slash"] == 0
    assert sum(counts.values()) == 7


def test_reason_keys_survive_a_policy_change():
    """A shorter policy words its reasons with other numbers; the series stays the same."""
    policy = Policy(notify_after_days=45, delete_after_days=60)
    report = build_report(decide_all(items(), policy=policy))
    assert "inactive over 45 days" in set(report["reason"])
    counts = reason_counts(report)
    assert counts["reason/inactive_over_n_days"] == 2
    assert set(counts) == set(KNOWN_REASON_KEYS)


@pytest.mark.parametrize(
    ("reason", "key"),
    [
        ("id: contains '/'", "reason/id_contains_slash"),
        ("subscription.endsAt: not a number", "reason/subscription_endsAt_not_a_number"),
        ("warned, within the 30-day grace period", "reason/warned_within_the_n_day_grace_period"),
    ],
)
def test_reason_key(reason, key):
    assert reason_key(reason) == key


def test_every_reason_of_the_malformed_corpus_has_a_known_key():
    """A reason the decoder or the rules start giving fails here until it is listed, so its
    plot starts with the first run rather than when it first occurs."""
    corpus = [item for entry in malformed_corpus(AS_OF, NOW) for item in entry.items]
    report = build_report(decide_all(corpus))
    assert len(report) == len(corpus)
    unknown = {r for r in report["reason"] if reason_key(r) not in KNOWN_REASON_KEYS}
    assert unknown == set()

"""The days-inactive histogram: whole days since lastVisitAt at as_of, in fixed buckets."""

import numpy as np
import pandas as pd
import pytest

from cleanup_pipeline.core.decisions import DAY_MS, LABELS, days_inactive_histogram, histogram_keys

AS_OF = 1_780_000_000_000


def bucket_of(last_visit: int | None, invalid: bool = False) -> str:
    histogram = days_inactive_histogram(
        pd.Series([last_visit], dtype="Int64"), AS_OF, np.array([invalid])
    )
    assert sum(histogram.values()) == 1
    return next(label for label, n in histogram.items() if n)


@pytest.mark.parametrize(
    ("days", "label"),
    [
        (0, "<30"),
        (29, "<30"),
        (30, "30-59"),
        (59, "30-59"),
        (60, "60-74"),
        (74, "60-74"),
        (75, "75-89"),
        (89, "75-89"),
        (90, "90-119"),
        (119, "90-119"),
        (120, "120-179"),
        (179, "120-179"),
        (180, "180-364"),
        (364, "180-364"),
        (365, "≥365"),
        (5000, "≥365"),
    ],
)
def test_bucket_edges_in_whole_days(days, label):
    assert bucket_of(AS_OF - days * DAY_MS) == label


def test_a_day_is_whole_only_when_complete():
    assert bucket_of(AS_OF - 30 * DAY_MS + 1) == "<30"
    assert bucket_of(AS_OF - 60 * DAY_MS - 1) == "60-74"


def test_visit_after_as_of_counts_as_recent_and_missing_or_invalid_as_invalid():
    assert bucket_of(AS_OF + DAY_MS) == "<30"
    assert bucket_of(None) == "invalid"
    assert bucket_of(AS_OF - 100 * DAY_MS, invalid=True) == "invalid"


def test_every_bucket_present_in_order_and_counts_add_up():
    visits = pd.Series([AS_OF - d * DAY_MS for d in (1, 2, 65, 400)] + [None], dtype="Int64")
    histogram = days_inactive_histogram(visits, AS_OF, np.zeros(5, dtype=bool))
    assert list(histogram) == list(LABELS)
    assert histogram == {
        "<30": 2,
        "30-59": 0,
        "60-74": 1,
        "75-89": 0,
        "90-119": 0,
        "120-179": 0,
        "180-364": 0,
        "≥365": 1,
        "invalid": 1,
    }
    keys = histogram_keys(histogram)
    assert keys["days_inactive/lt_30"] == 2
    assert keys["days_inactive/365_plus"] == 1
    assert keys["days_inactive/invalid"] == 1
    assert len(keys) == len(LABELS)


def test_empty_snapshot_gives_every_bucket_zero():
    histogram = days_inactive_histogram(pd.Series([], dtype="Int64"), AS_OF, np.array([], bool))
    assert histogram == dict.fromkeys(LABELS, 0)

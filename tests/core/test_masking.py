"""Email masking for everything an operator sees."""

import pandas as pd
import pytest

from cleanup_pipeline.core.masking import mask_email, mask_emails, scrub_emails

CASES = [
    ("jane@example.com", "j***@example.com"),
    ("j@example.com", "j***@example.com"),
    ("jane.doe+tag@mail.example.co.uk", "j***@mail.example.co.uk"),
    ("élodie@exemple.fr", "é***@exemple.fr"),
    ("@example.com", "@example.com"),
    ("no-at-sign", "n***"),
    ("", ""),
]


@pytest.mark.parametrize(("address", "masked"), CASES)
def test_mask_email_keeps_first_letter_and_domain(address, masked):
    assert mask_email(address) == masked


def test_mask_emails_matches_mask_email_and_keeps_missing_values():
    index = pd.Index([10, 20, 30, 40, 50, 60, 70, 80])
    addresses = pd.Series([a for a, _ in CASES] + [None], index=index, dtype=object)
    masked = mask_emails(addresses)
    assert list(masked.index) == list(index)
    assert list(masked.iloc[:-1]) == [m for _, m in CASES]
    assert pd.isna(masked.iloc[-1])


def test_mask_emails_on_empty_series():
    assert len(mask_emails(pd.Series([], dtype="string"))) == 0


def test_masked_value_never_contains_the_local_part():
    masked = mask_emails(pd.Series(["secretname@example.com", "another.person@example.org"]))
    assert not any("secretname" in m or "another.person" in m for m in masked)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "SES rejected jane.doe@example.com: throttled",
            "SES rejected j***@example.com: throttled",
        ),
        (
            "to: <bob+x@example.org>; cc: carol_1@example.net",
            "to: <b***@example.org>; cc: c***@example.net",
        ),
        ("no address here, only 50% @ noon", "no address here, only 50% @ noon"),
        ("", ""),
    ],
)
def test_scrub_emails_masks_every_address_in_text(text, expected):
    assert scrub_emails(text) == expected


def test_scrub_emails_leaves_no_local_part():
    text = "failed for alice.smith@example.com and for bob.jones@example.com"
    scrubbed = scrub_emails(text)
    assert "alice.smith" not in scrubbed
    assert "bob.jones" not in scrubbed
    assert scrubbed.count("***@example.com") == 2

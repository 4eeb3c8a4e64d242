"""The fast path of `decode_items` against the reference decoder it stands in for."""

import pandas as pd
import pyarrow as pa
import pytest

from cleanup_pipeline.core import wire
from cleanup_pipeline.core.wire import decode_exact, decode_items
from tests.support.items import AS_OF, DAY, NULL, n, s, user
from tests.support.malformed_corpus import malformed_corpus, odd_but_valid

CORPUS = [item for entry in malformed_corpus(AS_OF, AS_OF) for item in entry.items]
ODD = [entry.item for entry in odd_but_valid(AS_OF)]


def usual_users(count: int) -> list[dict]:
    """Users of every usual shape: the three required attributes alone, and with each
    optional attribute as the app writes it."""
    shapes = [
        {},
        {"accountDeletionEmailSentAt": n(AS_OF - 40 * DAY)},
        {"freeTrialEnd": n(f"{AS_OF}.5")},
        {"lifeTimeDeal": {"BOOL": True}},
        {"lifeTimeDeal": n(0)},
        {"subscription": {"M": {"status": s("active"), "endsAt": n(AS_OF + DAY)}}},
        {"subscription": NULL, "freeTrialEnd": NULL},
        {"subscription": {}, "freeTrialEnd": {}, "lifeTimeDeal": {}},
    ]
    return [
        user(f"u{i}", lastVisitAt=n(AS_OF - i * DAY), **shapes[i % len(shapes)])
        for i in range(count)
    ]


def test_every_shape_decodes_as_the_reference_decoder_does():
    items = usual_users(30)
    mixed = items[:10] + CORPUS + items[10:20] + ODD + items[20:]
    for batch in (CORPUS, ODD, items, mixed):
        pd.testing.assert_frame_equal(decode_items(batch), decode_exact(batch))


def test_unusual_items_keep_their_position_among_usual_ones():
    items = usual_users(6)
    items.insert(2, user("no-email", email=NULL))
    items.insert(5, user("bad-visit", lastVisitAt=s("yesterday")))
    frame = decode_items(items)
    assert list(frame["id"]) == [item["id"]["S"] for item in items]
    assert list(frame["malformed"].isna()) == [True, True, True, True, True, False, True, True]
    assert frame["malformed"].iloc[5] == "lastVisitAt: not a number"
    assert not frame["has_email"].iloc[2]


def test_chunks_are_joined_in_order_with_their_reasons(monkeypatch):
    items = usual_users(7) + CORPUS + usual_users(5)
    whole = decode_items(items)
    monkeypatch.setattr(wire, "CHUNK_ITEMS", 4)
    chunked = decode_items(items)
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked["malformed"].notna().sum() == whole["malformed"].notna().sum() > 10


def test_a_chunk_the_fast_path_refuses_is_decoded_by_the_reference(monkeypatch):
    """Only the chunk holding the item the fast path raises on falls back."""
    items = usual_users(12)
    refused = items[5]
    fast = wire._decode_fast
    calls = {"fast": 0, "fallback": 0}

    def refusing(chunk: list[dict]) -> pd.DataFrame:
        if any(item is refused for item in chunk):
            raise pa.ArrowInvalid("refused")
        calls["fast"] += 1
        return fast(chunk)

    def reference(chunk: list[dict]) -> pd.DataFrame:
        calls["fallback"] += 1
        return decode_exact(chunk)

    monkeypatch.setattr(wire, "CHUNK_ITEMS", 4)
    monkeypatch.setattr(wire, "_decode_fast", refusing)
    monkeypatch.setattr(wire, "decode_exact", reference)
    frame = decode_items(items)
    assert calls == {"fast": 2, "fallback": 1}
    pd.testing.assert_frame_equal(frame, decode_exact(items))


def test_a_value_neither_path_can_read_still_raises():
    """A member of the wrong Python type is no DynamoDB wire value: not silently dropped."""
    with pytest.raises((TypeError, pa.ArrowException)):
        decode_items([user("a"), {**user("b"), "id": {"S": 5}}])

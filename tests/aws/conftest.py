"""DynamoDB applies a conditional write atomically; moto checks the condition and then writes
in separate Python steps, so two threads can both pass the same condition. Serialising moto's
item writes restores DynamoDB's behaviour for the concurrency tests."""

import threading

import pytest
from moto.dynamodb.models import DynamoDBBackend

_WRITES = ("put_item", "update_item", "delete_item")


@pytest.fixture(autouse=True)
def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.RLock()
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        def atomic(self, *args, __original=original, **kwargs):
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)

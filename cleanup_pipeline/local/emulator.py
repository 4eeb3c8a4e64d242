"""AWS emulated by a moto server on 127.0.0.1, for the quick start and end-to-end tests."""

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.server import ThreadedMotoServer

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "APP_URL": "https://app.increaser.local",
    "EMAIL_DOMAIN": "increaser.local",
    "PUBLIC_BUCKET_NAME": "increaser-public",
    "HOLDS_TABLE_NAME": "holds",
}


# A transaction too: moto backs up the whole table before it and puts the backup back when the
# transaction is cancelled, which would undo another thread's write made in between.
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_write_lock = threading.RLock()


def make_conditional_writes_atomic() -> None:
    """DynamoDB applies a conditional write atomically; moto checks the condition and writes in
    separate Python steps, so two requests served on two threads can both pass one condition.
    Serialising moto's item writes restores DynamoDB's behaviour (idempotent)."""
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_atomic", False):
            continue

        def atomic(
            self: DynamoDBBackend, *args: Any, __original: Any = original, **kwargs: Any
        ) -> Any:
            with _write_lock:
                return __original(self, *args, **kwargs)

        atomic._atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start a moto server on 127.0.0.1 (any free port by default); yields its endpoint URL and
    stops it on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    make_conditional_writes_atomic()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound_port = server.get_host_and_port()
        yield f"http://{host}:{bound_port}"
    finally:
        server.stop()


def local_environment(endpoint: str) -> dict[str, str]:
    """Environment for the job against the emulator; values already set in the shell win."""
    env = {**LOCAL_ENV, "AWS_ENDPOINT_URL": endpoint}
    return {
        key: os.environ.get(key, value) if key != "AWS_ENDPOINT_URL" else value
        for key, value in env.items()
    }

"""Counting AWS calls with botocore event hooks on every client created in this process.

`before-call` fires once per API call (each page of a paginator is one call); `before-send`
once per HTTP attempt, so attempts minus calls are retries.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3.session


@dataclass(frozen=True)
class Call:
    at: float  # time.time()
    service: str
    operation: str
    label: str

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class CallRecorder:
    calls: list[Call] = field(default_factory=list)
    attempts: int = 0
    label: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _on_call(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        call = Call(time.time(), service, operation, self.label)
        with self._lock:
            self.calls.append(call)

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1

    def hook(self, client: Any) -> None:
        """Idempotent: a resource's client is created through `Session.client` too."""
        tag = f"bench-{id(self)}"
        client.meta.events.register("before-call", self._on_call, unique_id=f"{tag}-call")
        client.meta.events.register("before-send", self._on_send, unique_id=f"{tag}-send")

    def reset(self) -> None:
        with self._lock:
            self.calls = []
            self.attempts = 0

    @contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        previous, self.label = self.label, label
        try:
            yield
        finally:
            self.label = previous

    def count(self, predicate: Callable[[Call], bool] | None = None) -> Counter[str]:
        return Counter(c.name for c in self.calls if predicate is None or predicate(c))


@contextmanager
def recording() -> Iterator[CallRecorder]:
    """Hook every boto3 client and resource created while the block runs (the job creates its
    clients through `boto3.Session().client`, the baseline through `boto3.client` and
    `boto3.resource`)."""
    recorder = CallRecorder()
    original_client = boto3.session.Session.client
    original_resource = boto3.session.Session.resource

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        created = original_client(self, *args, **kwargs)
        recorder.hook(created)
        return created

    def resource(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        created = original_resource(self, *args, **kwargs)
        recorder.hook(created.meta.client)
        return created

    boto3.session.Session.client = client  # type: ignore[method-assign]
    boto3.session.Session.resource = resource  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        boto3.session.Session.client = original_client  # type: ignore[method-assign]
        boto3.session.Session.resource = original_resource  # type: ignore[method-assign]

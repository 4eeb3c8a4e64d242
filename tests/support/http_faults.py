"""Faults and crashes injected into every AWS call the job makes, at the HTTP layer.

`FaultyAwsEnvironment` gives each op the job's own clients (adaptive mode, `max_attempts` 8:
one attempt and up to 8 retries) with one change: moto's in-process stubber, the `before-send`
handler that answers HTTP requests, is replaced by `answer`, which either lets moto answer or
returns a synthetic error response *instead of* processing the request, as AWS does when it
throttles. (botocore calls every `before-send` handler, so a handler merely placed before moto's
would still let moto process the request.) boto3's retry logic then sees a real HTTP error and
decides on its own whether and when to retry.

- transient faults: a seeded share of HTTP attempts is answered with a retryable error
  (DynamoDB ThrottlingException / ProvisionedThroughputExceeded / 500, S3 SlowDown / 500,
  SES TooManyRequests / 500);
- persistent faults: a seeded share of API calls is answered so on *every* attempt, so the
  caller gets the error after boto3's retries are exhausted;
- lost answers: a seeded share of attempts is processed by AWS, then the connection drops
  before the answer arrives (ConnectionClosedError), so the caller cannot know the outcome;
- crash: right before the n-th call matching a predicate, `Crash` (a BaseException, which the
  per-user `except Exception` isolation does not catch) is raised, and from then on every call
  raises it too: the process is dead, nothing it would still do reaches AWS.
"""

import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.retries import bucket
from botocore.retries.standard import ExponentialBackoff
from moto.core.models import botocore_stubber

from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.local.emulator import make_conditional_writes_atomic
from cleanup_pipeline.orchestration.resources import AwsEnvironment

Params = dict[str, Any]
_INFO = "resilience.call"

# (HTTP status, error code) per service; `error_response` words the body as each protocol does.
_DYNAMODB_PREFIX = "com.amazonaws.dynamodb.v20120810#"
RETRYABLE_ERRORS: dict[str, list[tuple[int, str]]] = {
    "dynamodb": [
        (400, "ThrottlingException"),
        (400, "ProvisionedThroughputExceededException"),
        (500, "InternalServerError"),
    ],
    "s3": [(503, "SlowDown"), (500, "InternalError")],
    "sesv2": [(429, "TooManyRequestsException"), (500, "InternalFailure")],
}


class Crash(BaseException):
    """The process running the job died at this point."""


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


def error_response(url: str, service: str, status: int, code: str) -> AWSResponse:
    message = f"injected {code}"
    headers = {"x-amzn-RequestId": "injected-fault"}
    if service == "dynamodb":
        headers["Content-Type"] = "application/x-amz-json-1.0"
        body = json.dumps({"__type": _DYNAMODB_PREFIX + code, "message": message}).encode()
    elif service == "s3":
        headers["Content-Type"] = "application/xml"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            "<RequestId>injected-fault</RequestId></Error>"
        ).encode()
    else:
        headers["Content-Type"] = "application/json"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"message": message}).encode()
    return AWSResponse(url, status, headers, _Body(body))


@dataclass(frozen=True)
class CrashPoint:
    """Crash right before the `nth` (1-based) call of `operation` whose params match."""

    label: str
    operation: str
    nth: int = 1
    matches: Callable[[Params], bool] = lambda _params: True


@dataclass
class FaultPlan:
    transient: float = 0.0
    persistent: float = 0.0
    seed: int = 0
    crash: CrashPoint | None = None
    # operations persistent faults apply to; None: every operation
    persistent_ops: frozenset[str] | None = None
    lost: float = 0.0
    lost_ops: frozenset[str] = frozenset()
    active: bool = True
    crashed: bool = False
    # (service, operation, status, code) of every injected error response
    injected: list[tuple[str, str, int, str]] = field(default_factory=list)
    # (operation, params) of the calls made to fail on every attempt
    exhausted: list[tuple[str, Params]] = field(default_factory=list)
    # (operation, params) of the attempts AWS processed but whose answer was lost
    lost_answers: list[tuple[str, Params]] = field(default_factory=list)
    # (operation, params) of every call the job made, in order
    calls: list[tuple[str, Params]] = field(default_factory=list)
    _matched: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _draw(self, *parts: Any) -> float:
        """A number in [0, 1) that depends only on the seed and `parts`: the same request meets
        the same fate whatever the thread scheduling."""
        text = json.dumps([self.seed, *parts], sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def on_call(self, operation: str, params: Params, context: dict[str, Any]) -> None:
        """Once per API call, before its first attempt."""
        with self._lock:
            if self.crashed:
                raise Crash(f"process already dead: {operation}")
            crash = self.crash
            hit = crash is not None and crash.operation == operation and crash.matches(params)
            if self.active and crash is not None and hit:
                self._matched += 1
                if self._matched == crash.nth:
                    self.crashed = True
                    raise Crash(f"died right before {crash.label}")
            persistent = (
                self.active
                and (self.persistent_ops is None or operation in self.persistent_ops)
                and self._draw("call", operation, params) < self.persistent
            )
            if persistent:
                self.exhausted.append((operation, params))
            self.calls.append((operation, params))
            context[_INFO] = {"operation": operation, "params": params, "persistent": persistent}

    def fault_for(self, service: str, request: Any) -> tuple[int, str] | None:
        """Per HTTP attempt: the error to answer with, or None to let AWS answer."""
        with self._lock:
            if self.crashed:
                raise Crash("process already dead")
            info = request.context.get(_INFO)
            if not self.active or info is None:
                return None
            attempt = request.context.get("retries", {}).get("attempt", 1)
            operation, params = info["operation"], info["params"]
            draw = self._draw("attempt", operation, params, attempt)
            if not info["persistent"] and draw >= self.transient:
                return None
            choices = RETRYABLE_ERRORS[service]
            kind = self._draw("kind", operation, params, attempt)
            status, code = choices[int(kind * len(choices))]
            self.injected.append((service, operation, status, code))
            return status, code

    def loses_answer(self, request: Any) -> bool:
        """Per processed attempt: whether its answer never reaches the caller."""
        with self._lock:
            info = request.context.get(_INFO)
            if not self.active or info is None or info["operation"] not in self.lost_ops:
                return False
            attempt = request.context.get("retries", {}).get("attempt", 1)
            operation, params = info["operation"], info["params"]
            if self._draw("lost", operation, params, attempt) >= self.lost:
                return False
            self.lost_answers.append((operation, params))
            return True


PLAN = FaultPlan(active=False)
_SESSIONS: list[boto3.Session] = []


def _shared_session() -> boto3.Session:
    """One boto3 session for all tests, so service models are loaded once; each op still gets
    new clients with their own retry state, as in production."""
    if not _SESSIONS:
        _SESSIONS.append(boto3.Session())
    return _SESSIONS[0]


def _instrument(client: Any) -> None:
    service = client.meta.service_model.service_id.hyphenize()
    events = client.meta.events

    def on_call(params: Params, model: Any, context: dict[str, Any], **_: Any) -> None:
        PLAN.on_call(model.name, params, context)

    def answer(request: Any, event_name: str, **kwargs: Any) -> Any:
        fault = PLAN.fault_for(service, request)
        if fault is not None:
            return error_response(request.url, service, *fault)
        response = botocore_stubber(event_name, request, **kwargs)
        if PLAN.loses_answer(request):
            raise ConnectionClosedError(endpoint_url=request.url, request=request)
        return response

    events.register_first(f"before-parameter-build.{service}", on_call)
    events.unregister("before-send", botocore_stubber)
    events.register_first("before-send", answer)


class FaultyAwsEnvironment(AwsEnvironment):
    def clients(self) -> AwsClients:
        clients = make_clients(self.settings(), session=_shared_session())
        for client in (clients.dynamodb, clients.s3, clients.sesv2):
            _instrument(client)
        return clients


@contextmanager
def faults(
    transient: float = 0.0,
    persistent: float = 0.0,
    seed: int = 0,
    crash: CrashPoint | None = None,
    persistent_ops: frozenset[str] | None = None,
    lost: float = 0.0,
    lost_ops: frozenset[str] = frozenset(),
) -> Iterator[FaultPlan]:
    """Turn faults on for the job runs inside the block; the plan records what happened."""
    global PLAN
    PLAN = FaultPlan(
        transient=transient,
        persistent=persistent,
        seed=seed,
        crash=crash,
        persistent_ops=persistent_ops,
        lost=lost,
        lost_ops=lost_ops,
    )
    try:
        yield PLAN
    finally:
        PLAN = FaultPlan(active=False)


TIME_SCALE = 100.0


class _FastClock(bucket.Clock):
    def sleep(self, amount: float) -> None:
        time.sleep(amount / TIME_SCALE)

    def current_time(self) -> float:
        return time.time() * TIME_SCALE


def prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per test: faults off, and moto's item writes serialised (DynamoDB applies a conditional
    write atomically, moto checks and writes in separate Python steps; see the emulator).

    boto3's retry machinery runs unchanged but on a clock `TIME_SCALE` times faster, so tests
    stay fast: the backoff delays, and the adaptive mode's client-side rate limiter (which
    drops a client that got throttled to as little as 0.5 requests a second)."""
    global PLAN
    PLAN = FaultPlan(active=False)
    delay = ExponentialBackoff.delay_amount
    sleep_amount = bucket.TokenBucket._sleep_amount

    def shorter_delay(self: ExponentialBackoff, context: Any) -> float:
        return delay(self, context) / TIME_SCALE

    def shorter_sleep(self: bucket.TokenBucket, amount: int) -> float:
        return sleep_amount(self, amount) / TIME_SCALE

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", shorter_delay)
    monkeypatch.setattr(bucket, "Clock", _FastClock)
    monkeypatch.setattr(bucket.TokenBucket, "_sleep_amount", shorter_sleep)
    make_conditional_writes_atomic()

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
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import dagster as dg
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.retries import bucket
from botocore.retries.standard import ExponentialBackoff
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.models import botocore_stubber
from moto.dynamodb.models import DynamoDBBackend
from moto.ses.models import ses_backends

from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.aws.users_table import CLAIMED_AT, CLAIMED_BY, SENT_AT
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.job import JOB_NAME, run_config_for
from cleanup_pipeline.orchestration.resources import AwsEnvironment, CleanupPolicy, RunOptions
from tests.e2e.world import (
    AS_OF_ISO,
    DELETED,
    NOTIFIED,
    Seeded,
    assert_final_state,
    list_keys,
    scan_all,
)

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
    write atomically, moto checks and writes in separate Python steps).

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
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


def run_job(policy: CleanupPolicy | None = None) -> dg.ExecuteInProcessResult:
    """The real job, in process, at the world's `as_of`, with the faulty AWS environment;
    Dagster's console log shows warnings and errors only."""
    run_config = {
        **run_config_for(AS_OF_ISO),
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    return defs.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config,
        resources={
            "aws": FaultyAwsEnvironment(),
            # Small deletion batches, so that crashes and faults land between and within them.
            "cleanup_policy": policy
            or CleanupPolicy(send_rate_per_second=200, deletion_batch_size=2),
            "run_options": RunOptions(),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def sent_to() -> Counter[str]:
    """Messages SES accepted, per recipient."""
    messages = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    return Counter(to for m in messages for to in m.destinations["ToAddresses"])


def address(user_id: str) -> str:
    return f"{user_id}@example.com"


CLAIM = (CLAIMED_BY, CLAIMED_AT)


def claimed(clients: AwsClients, settings: Settings) -> set[str]:
    users = scan_all(clients.dynamodb, settings.users_table)
    return {uid for uid, item in users.items() if CLAIMED_AT in item}


def age_claims(clients: AwsClients, settings: Settings, minutes: int) -> set[str]:
    """Move every warning claim `minutes` into the past, as if that much time went by."""
    users = scan_all(clients.dynamodb, settings.users_table)
    aged = set()
    for uid, item in users.items():
        if CLAIMED_AT in item:
            old = int(item[CLAIMED_AT]["N"]) - minutes * 60_000
            clients.dynamodb.update_item(
                TableName=settings.users_table,
                Key={"id": {"S": uid}},
                UpdateExpression="SET #at = :old",
                ExpressionAttributeNames={"#at": CLAIMED_AT},
                ExpressionAttributeValues={":old": {"N": str(old)}},
            )
            aged.add(uid)
    return aged


@dataclass(frozen=True)
class InFlight:
    """Warnings a failed or dead run left claimed: sent but not confirmed, or not sent."""

    sent: frozenset[str]
    unsent: frozenset[str]


def assert_safe(clients: AwsClients, settings: Settings, seeded: Seeded) -> InFlight:
    """What must hold after any run, however it ended: nobody deleted who should not be; no
    file, feature reference or scoreboard entry left of a deleted user; nobody else's data
    touched; `accountDeletionEmailSentAt` only on people emailed; no warning sent twice; an
    emailed person without a send time holds a claim (so no run sends again within the lease)."""
    users = scan_all(clients.dynamodb, settings.users_table)
    gone = set(seeded.users) - set(users)
    assert gone <= set(DELETED), sorted(gone - set(DELETED))

    keys = list_keys(clients.s3, settings.public_bucket_name)
    for uid, files in seeded.files.items():
        if uid in gone:
            assert not {k for k in keys if k.startswith(f"{uid}/")}, uid
        elif uid not in DELETED:
            assert set(files) <= keys, uid
    assert keys <= {k for files in seeded.files.values() for k in files}

    features = scan_all(clients.dynamodb, settings.features_table)
    assert set(features) == set(seeded.features)
    for fid, original in seeded.features.items():
        proposer = original.get("proposedBy", {}).get("S")
        current = features[fid]
        if proposer in DELETED and "proposedBy" not in current:
            current = {**current, "proposedBy": original["proposedBy"]}
        assert current == original, fid
        if proposer in gone:
            assert "proposedBy" not in features[fid], fid

    boards = scan_all(clients.dynamodb, settings.scoreboards_table)
    for period, original in seeded.scoreboards.items():
        entries = boards[period]["users"]["L"]
        assert not [e for e in entries if e["M"]["id"]["S"] in gone], period
        kept = [e for e in original["users"]["L"] if e["M"]["id"]["S"] not in DELETED]
        assert [e for e in entries if e["M"]["id"]["S"] not in DELETED] == kept, period
        assert {**boards[period], "users": None} == {**original, "users": None}, period

    emails = scan_all(clients.dynamodb, settings.emails_table)
    assert emails[address("u1")] == {"id": {"S": address("u1")}, "source": {"S": "signup"}}
    assert set(emails) <= {address(uid) for uid in DELETED}
    assert {address(uid) for uid in gone} <= set(emails)
    for addr, item in emails.items():
        if addr != address("u1"):
            assert item == {"id": {"S": addr}}, addr

    sent = sent_to()
    assert set(sent) <= {address(uid) for uid in NOTIFIED}, sorted(sent)
    assert max(sent.values(), default=0) <= 1, sent
    in_flight_sent, in_flight_unsent = set(), set()
    for uid, item in users.items():
        original = seeded.users[uid]
        bookkeeping = (SENT_AT, *CLAIM)
        assert {k: v for k, v in item.items() if k not in bookkeeping} == {
            k: v for k, v in original.items() if k not in bookkeeping
        }, uid
        if uid not in NOTIFIED:
            assert item == original, uid
            continue
        assert (CLAIMED_BY in item) == (CLAIMED_AT in item), uid
        newly_sent = item.get(SENT_AT) != original.get(SENT_AT)
        if newly_sent:
            assert sent[address(uid)] >= 1, f"{uid}: send time written but never emailed"
            assert CLAIMED_AT not in item, uid
        elif sent[address(uid)]:
            assert CLAIMED_AT in item, f"{uid}: emailed, no send time and no claim"
            in_flight_sent.add(uid)
        elif CLAIMED_AT in item:
            in_flight_unsent.add(uid)
    return InFlight(frozenset(in_flight_sent), frozenset(in_flight_unsent))


def recover(
    clients: AwsClients, settings: Settings, seeded: Seeded, before: int, in_flight: InFlight
) -> None:
    """After a failed or dead run: a clean run finishes everything except the warnings still
    claimed (none sent again within the lease); once the lease is over, a clean run finishes
    those too. Only a warning SES accepted but that was never confirmed goes out twice."""
    lease = CleanupPolicy().warning_claim_lease_minutes
    within = run_job()
    assert within.success, failed_steps(within)
    assert claimed(clients, settings) == in_flight.sent | in_flight.unsent
    assert_safe(clients, settings, seeded)
    sent_within = sent_to()
    for uid in in_flight.unsent:
        assert sent_within[address(uid)] == 0, uid
    if in_flight.sent or in_flight.unsent:
        assert age_claims(clients, settings, lease + 1) == in_flight.sent | in_flight.unsent
        later = run_job()
        assert later.success, failed_steps(later)
    sent = sent_to()
    assert {uid: sent[address(uid)] for uid in NOTIFIED} == {
        uid: 2 if uid in in_flight.sent else 1 for uid in NOTIFIED
    }
    assert_final_state(clients, settings, seeded, list(set(sent.elements())), before, now_ms())


def failed_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    return [event.step_key for event in result.all_events if event.is_step_failure]

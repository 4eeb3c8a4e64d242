"""Sending the warning through SES v2, never faster than the account's send rate."""

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from cleanup_pipeline.core.as_of import now_ms
from cleanup_pipeline.core.warning_email import WarningEmail

DEFAULT_SEND_RATE = 14.0

# Errors after which the request certainly never reached SES.
NEVER_SENT = (EndpointConnectionError, ConnectTimeoutError)
# Errors after which SES certainly did not accept the message: safe to try again next run.
NOT_ACCEPTED = (ClientError, *NEVER_SENT)


class SendRateLimiter:
    """Hands out send slots spaced 1/rate seconds apart, shared by all sending threads, so that
    no one-second window ever holds more than `rate` sends."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("send rate must be positive")
        self.interval = 1.0 / rate * (1 + 1e-6)
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        # The lock is held through the wait and the next slot counts from when this one really
        # began, so a late wake-up never lets the following send come less than 1/rate after it.
        with self._lock:
            delay = self._next - self._clock()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._clock(), self._next) + self.interval


def account_send_rate(client: Any) -> float | None:
    """MaxSendRate of the SES account, or None where it cannot be read."""
    try:
        quota = client.get_account().get("SendQuota", {})
    except (ClientError, BotoCoreError, NotImplementedError):  # no permission, or an emulator
        return None
    rate = quota.get("MaxSendRate")
    return float(rate) if rate else None


def effective_send_rate(configured: float | None, account: float | None) -> float:
    """The configured rate, never above what the account allows; 14/s when neither is known."""
    candidates = [rate for rate in (configured, account) if rate]
    return min(candidates) if candidates else DEFAULT_SEND_RATE


def _no_resend_after_lost_answer(caught_exception: Exception | None = None, **_: Any) -> Any:
    """`needs-retry` handler for SendEmail. When the answer was lost (read timeout, connection
    closed mid-request), SES may have accepted the message, and sending it again could warn the
    person twice: returning False stops botocore from retrying. Error answers from SES and
    requests that never left are retried as usual (None lets the retry handler decide)."""
    if caught_exception is not None and not isinstance(caught_exception, NEVER_SENT):
        return False
    return None


def send_warning(client: Any, message: WarningEmail, to: str) -> int:
    """Send one warning; returns the wall-clock time (ms) at which SES accepted it.

    Never sent twice by the client's own retries: a send whose answer was lost raises (the
    caller keeps the warning pending) instead of being resent."""
    # Registered first (once per client), so that its "no retry" wins over the retry handler.
    client.meta.events.register_first(
        "needs-retry.sesv2.SendEmail",
        _no_resend_after_lost_answer,
        unique_id="cleanup_pipeline.no_resend_after_lost_answer",
    )
    client.send_email(
        FromEmailAddress=message.sender,
        Destination={"ToAddresses": [to]},
        Content={
            "Simple": {
                "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                "Body": {
                    "Html": {"Data": message.html, "Charset": "UTF-8"},
                    "Text": {"Data": message.text, "Charset": "UTF-8"},
                },
            }
        },
    )
    return now_ms()

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

from cleanup_pipeline.core.warning_email import WarningEmail

DEFAULT_SEND_RATE = 14.0

# Errors after which SES certainly did not accept the message: safe to try again next run.
NOT_ACCEPTED = (ClientError, EndpointConnectionError, ConnectTimeoutError)


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
        with self._lock:
            slot = max(self._clock(), self._next)
            self._next = slot + self.interval
        delay = slot - self._clock()
        if delay > 0:
            time.sleep(delay)


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


def send_warning(client: Any, message: WarningEmail, to: str) -> int:
    """Send one warning; returns the wall-clock time (ms) at which SES accepted it."""
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
    return int(time.time() * 1000)

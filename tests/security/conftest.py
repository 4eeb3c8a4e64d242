"""Fixtures: recorded AWS calls, and Sentry initialised with an in-memory transport."""

from collections.abc import Iterator

import pytest
import sentry_sdk

from cleanup_pipeline.observability import sentry as observability
from tests.support.sentry_capture import DSN, CapturingTransport


@pytest.fixture(autouse=True)
def recording_per_test(fresh_recording: None) -> None:
    """Every test starts with no recorded call and no fault, and leaves no fault behind."""


def _shut_down_sentry() -> None:
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture(autouse=True)
def sentry_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts and ends with Sentry not initialised."""
    _shut_down_sentry()
    monkeypatch.setattr(observability, "_initialised_dsn", None)
    yield
    _shut_down_sentry()


@pytest.fixture
def sentry_events(monkeypatch: pytest.MonkeyPatch, sentry_off: None) -> CapturingTransport:
    """Sentry on, as the job would start it with `SENTRY_DSN` set, capturing in memory."""
    transport = CapturingTransport()
    monkeypatch.setenv("SENTRY_DSN", DSN)
    assert observability.init_sentry(DSN, transport=transport)
    return transport

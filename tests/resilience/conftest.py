"""Fixtures of the fault and crash tests."""

import pytest

from tests.support.http_faults import prepare


@pytest.fixture
def fault_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults off and boto3's retry clock sped up, for this test only."""
    prepare(monkeypatch)

"""moto made to apply conditional writes atomically, as DynamoDB does, for the concurrency tests
that run several threads against in-process moto."""

import pytest

from cleanup_pipeline.local.emulator import make_conditional_writes_atomic


@pytest.fixture(autouse=True)
def atomic_moto_writes() -> None:
    make_conditional_writes_atomic()

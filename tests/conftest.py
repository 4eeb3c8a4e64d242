"""Shared fixtures: the job's environment, AWS emulated in process or by a moto server, and
clean call recording."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from cleanup_pipeline.aws.clients import AwsClients, clear_shared_clients
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.local.emulator import make_conditional_writes_atomic
from tests.support import recording
from tests.support.moto_env import moto_server_env, provisioned_moto, set_job_env


@pytest.fixture(autouse=True)
def job_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Every test starts with the required variables set and no real AWS endpoint or Sentry."""
    set_job_env(monkeypatch, tmp_path / "reports")


@pytest.fixture(autouse=True)
def fresh_shared_clients() -> Iterator[None]:
    """Clients shared by the job's steps (and the hooks tests put on them) stay in their test."""
    clear_shared_clients()
    yield
    clear_shared_clients()


@pytest.fixture
def aws() -> Iterator[tuple[AwsClients, Settings]]:
    """In-process moto with the users, features, scoreboards and emails tables, the public
    bucket and a verified SES domain."""
    with provisioned_moto() as world:
        yield world


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A moto server on loopback, the job's environment pointing at it, a fresh DAGSTER_HOME."""
    with moto_server_env(monkeypatch, tmp_path / "dagster_home") as endpoint:
        yield endpoint


@pytest.fixture
def fresh_recording() -> Iterator[None]:
    """No AWS call recorded and no fault installed before the test, and no fault after it."""
    recording.reset()
    yield
    recording.FAULTS.clear()


@pytest.fixture(autouse=True)
def atomic_moto_writes() -> None:
    """moto made to apply conditional writes atomically, as DynamoDB does, for the tests that run
    several threads against in-process moto."""
    make_conditional_writes_atomic()

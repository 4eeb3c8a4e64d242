"""Shared fixtures: a fake AWS environment (moto in-process) with the job's resources created."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from moto import mock_aws

from cleanup_pipeline.aws.clients import AwsClients, clear_shared_clients, make_clients
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.local.emulator import LOCAL_ENV, local_environment, moto_server
from cleanup_pipeline.local.provision import provision


@pytest.fixture(autouse=True)
def job_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Every test starts with the required variables set and no real AWS endpoint or Sentry."""
    for key in ("AWS_ENDPOINT_URL", "SENTRY_DSN", "SENTRY_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in LOCAL_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("CLEANUP_ARCHIVE_DIR", str(tmp_path / "archive"))


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
    with mock_aws():
        settings = load_settings()
        clients = make_clients(settings)
        provision(clients, settings)
        yield clients, settings


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A moto server on loopback, the job's environment pointing at it, a fresh DAGSTER_HOME."""
    with moto_server() as endpoint:
        # moto keeps its state per process, across servers: start from nothing.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        for key, value in local_environment(endpoint).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        (tmp_path / "dagster_home").mkdir()
        yield endpoint

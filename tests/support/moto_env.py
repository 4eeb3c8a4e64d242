"""The job's environment for tests: local variables, no real AWS or Sentry, and AWS emulated by
in-process moto or by a moto server on 127.0.0.1."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from moto import mock_aws

from cleanup_pipeline.aws.clients import AwsClients, make_clients
from cleanup_pipeline.core.settings import Settings, load_settings
from cleanup_pipeline.local.emulator import LOCAL_ENV, local_environment, moto_server
from cleanup_pipeline.local.provision import provision
from tests.support import recording

# Variables that would reach a real endpoint, account or Sentry project.
OUTSIDE_WORLD = ("AWS_ENDPOINT_URL", "SENTRY_DSN", "SENTRY_KEY", "AWS_PROFILE")


def set_job_env(patch: pytest.MonkeyPatch, reports_dir: Path) -> None:
    """The required variables set for the local emulator, reports under `reports_dir`, and no
    real AWS endpoint or Sentry."""
    for key in OUTSIDE_WORLD:
        patch.delenv(key, raising=False)
    for key, value in LOCAL_ENV.items():
        patch.setenv(key, value)
    patch.setenv("CLEANUP_REPORTS_DIR", str(reports_dir))


@contextmanager
def provisioned_moto() -> Iterator[tuple[AwsClients, Settings]]:
    """In-process moto with the users, features, scoreboards and emails tables, the public
    bucket and a verified SES domain."""
    with mock_aws():
        settings = load_settings()
        clients = make_clients(settings)
        provision(clients, settings)
        yield clients, settings


@contextmanager
def moto_world(reports_dir: Path) -> Iterator[tuple[AwsClients, Settings]]:
    """The job's environment and provisioned AWS resources, for a module-scoped fixture (the
    function-scoped `aws` fixture cannot outlive one test); no recorded fault outlives it."""
    recording.FAULTS.clear()
    with pytest.MonkeyPatch.context() as patch:
        set_job_env(patch, reports_dir)
        with provisioned_moto() as world:
            try:
                yield world
            finally:
                recording.FAULTS.clear()


@contextmanager
def moto_server_env(patch: pytest.MonkeyPatch, dagster_home: Path) -> Iterator[str]:
    """A moto server on loopback holding nothing, the job's environment pointing at it, and
    `dagster_home` (created) as DAGSTER_HOME; yields the endpoint."""
    with moto_server() as endpoint:
        # moto keeps its state per process, across servers: start from nothing.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        for key, value in local_environment(endpoint).items():
            patch.setenv(key, value)
        patch.setenv("DAGSTER_HOME", str(dagster_home))
        dagster_home.mkdir()
        yield endpoint

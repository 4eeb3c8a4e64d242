"""A real PostgreSQL server for the session, and a fresh database in it for each test."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dagster_instances import load_instance
from tests.support.postgres_server import PostgresServer, postgres_server


def point_at(monkeypatch: pytest.MonkeyPatch, server: PostgresServer, db_name: str) -> None:
    """The variables the instance files of deploy/ read."""
    monkeypatch.setenv("DAGSTER_PG_HOST", server.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", server.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", server.password)
    monkeypatch.setenv("DAGSTER_PG_DB", db_name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def dagster_schema(postgres: PostgresServer) -> str:
    """A database holding Dagster's empty tables. Creating them takes seconds; copying this
    database takes a fraction of one."""
    db_name = postgres.create_database()
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        tempfile.TemporaryDirectory() as home,
    ):
        point_at(monkeypatch, postgres, db_name)
        with load_instance("dagster-postgres.yaml", Path(home)) as instance:
            _ = instance.run_storage, instance.event_log_storage, instance.schedule_storage
    return db_name


@pytest.fixture
def postgres_env(
    postgres: PostgresServer, dagster_schema: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The instance files' variables pointing at a database of its own, with no run in it."""
    db_name = postgres.create_database(template=dagster_schema)
    point_at(monkeypatch, postgres, db_name)
    return db_name

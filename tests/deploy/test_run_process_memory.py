"""What a run process loads and keeps, for its memory: no Sentry SDK without a DSN, Arrow's
buffers from the system allocator with the deployed settings, and no S3 client for the reports
until a step asks for one. Import-time cases run in a fresh interpreter."""

import os
import subprocess
import sys
from typing import Any

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.resources import ReportsS3Resource

RUN_PATH = "import cleanup_pipeline.cli.main, cleanup_pipeline.definitions, sys\n"


def fresh_interpreter(code: str, **env: str) -> str:
    """stdout of `code` run in a new interpreter with the test's environment plus `env`."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_PATH + code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_a_dsn_the_run_path_never_imports_the_sentry_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    code = (
        "from cleanup_pipeline.observability import run_alerts, sentry\n"
        "from cleanup_pipeline.orchestration.resources import AwsEnvironment\n"
        "import dagster as dg\n"
        "AwsEnvironment().setup_for_execution(dg.build_init_resource_context())\n"
        "sentry.report_failure('u-1', 'notify.send', 'run-1', RuntimeError('x'))\n"
        "sentry.report_guard_failure('max_delete_fraction', 9, 5.0, 'too many', 'run-1')\n"
        "print(sentry.is_active(), run_alerts.check_in('m', 'run-1', 'ok', '0 3 * * *', 'UTC'))\n"
        "print('sentry_sdk' in sys.modules)\n"
    )
    assert fresh_interpreter(code).splitlines() == ["False False", "False"]


def test_the_deployed_pool_setting_gives_arrow_the_system_allocator() -> None:
    code = "import pyarrow as pa\nprint(pa.default_memory_pool().backend_name)\n"
    assert fresh_interpreter(code, ARROW_DEFAULT_MEMORY_POOL="system") == "system"


class CountingSession(boto3.session.Session):
    created = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        CountingSession.created += 1
        super().__init__(*args, **kwargs)


def _on_the_context(resource: S3Resource, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """What a step that names `reports_s3` finds on its context, and the boto3 sessions made."""
    monkeypatch.setattr(boto3.session, "Session", CountingSession)
    CountingSession.created = 0
    seen: list[Any] = []

    @dg.asset(required_resource_keys={"reports_s3"})
    def names_reports_s3(context: dg.AssetExecutionContext) -> None:
        seen.append(context.resources.reports_s3)

    assert dg.materialize([names_reports_s3], resources={"reports_s3": resource}).success
    return seen[0], CountingSession.created


def test_a_step_naming_the_reports_resource_builds_no_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resource = defs.resources["reports_s3"]
    assert isinstance(resource, ReportsS3Resource) and resource.max_attempts == 8

    on_context, sessions = _on_the_context(resource, monkeypatch)

    assert sessions == 0
    assert isinstance(on_context, ReportsS3Resource)
    # Asked for, it builds the same client as dagster-aws's resource, in a session of its own.
    assert on_context.get_client().meta.service_model.service_name == "s3"
    assert CountingSession.created == 1


def test_dagster_aws_resource_builds_a_client_for_every_step_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ReportsS3Resource avoids: the plain resource's session, for a step that never asked."""
    on_context, sessions = _on_the_context(S3Resource(max_attempts=8), monkeypatch)
    assert sessions == 1
    assert on_context.meta.service_model.service_name == "s3"

"""Each instance file of deploy/, loaded through Dagster: storage, run queue and run launcher."""

import re
from pathlib import Path

import boto3
import pytest
import yaml
from dagster_aws.ecs import EcsRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_shared.check import CheckError
from moto import mock_aws

from bench.run import DEPLOYED_MEMORY_SETTINGS
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.jobs import JOB_NAME
from tests.support.dagster_instances import (
    DEPLOY,
    assert_one_run_and_one_send_slot,
    load_instance,
)
from tests.support.postgres_server import PostgresServer

POSTGRES_FILES = ["dagster-postgres.yaml", "dagster-ecs.yaml"]


@pytest.mark.parametrize("name", ["dagster.yaml", *POSTGRES_FILES])
def test_every_instance_file_queues_runs_and_allows_one_run_of_the_job(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if name in POSTGRES_FILES:
        request.getfixturevalue("postgres_env")
    with load_instance(name, tmp_path) as instance:
        assert_one_run_and_one_send_slot(instance)
    # The limit only bites because every run of the job carries the tag.
    assert defs.resolve_job_def(JOB_NAME).tags["cleanup_pipeline/job"] == JOB_NAME


@pytest.mark.parametrize("name", POSTGRES_FILES)
def test_postgres_files_keep_runs_events_and_schedules_in_postgres(
    name: str, tmp_path: Path, postgres: PostgresServer, postgres_env: str
) -> None:
    with load_instance(name, tmp_path) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    # Loading the instance created Dagster's tables in the database the variables named.
    connection = postgres.connect(postgres_env)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()
    assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables


@pytest.mark.parametrize("name", POSTGRES_FILES)
def test_postgres_files_hold_no_connection_setting_only_variable_names(name: str) -> None:
    storage = yaml.safe_load((DEPLOY / name).read_text())["storage"]["postgres"]["postgres_db"]
    settings = {key: value for key, value in storage.items() if key != "scheme"}
    assert set(settings) == {"hostname", "port", "db_name", "username", "password"}
    assert all(set(value) == {"env"} for value in settings.values()), settings


def test_ecs_file_starts_each_run_as_a_task_of_the_named_task_definition(
    tmp_path: Path, postgres_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto answers the one ECS call the launcher makes when it loads (DescribeTaskDefinition).
    with mock_aws():
        registered = boto3.client("ecs").register_task_definition(
            family="cleanup-pipeline-run",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="1024",
            memory="4096",
            containerDefinitions=[{"name": "run", "image": "cleanup-pipeline:latest"}],
        )["taskDefinition"]["taskDefinitionArn"]
        monkeypatch.setenv("DAGSTER_ECS_RUN_TASK_DEFINITION", "cleanup-pipeline-run")
        with load_instance("dagster-ecs.yaml", tmp_path) as instance:
            launcher = instance.run_launcher
            assert isinstance(launcher, EcsRunLauncher)
            assert launcher.task_definition == registered
            assert launcher.container_name == "run"
            assert launcher.use_current_ecs_task_config is True
            assert launcher.secrets_tags == []
            assert launcher.propagate_tags == {"allow_list": ["cleanup_pipeline/job"]}


def test_ecs_file_refuses_a_task_definition_without_the_run_container(
    tmp_path: Path, postgres_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        boto3.client("ecs").register_task_definition(
            family="other",
            containerDefinitions=[{"name": "web", "image": "web:latest", "memory": 512}],
        )
        monkeypatch.setenv("DAGSTER_ECS_RUN_TASK_DEFINITION", "other")
        with (
            load_instance("dagster-ecs.yaml", tmp_path) as instance,
            pytest.raises(CheckError, match="container is not defined"),
        ):
            _ = instance.run_launcher


def _within(part: object, whole: object) -> bool:
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and _within(value, whole[key]) for key, value in part.items()
        )
    return part == whole


def test_scale_out_examples_are_excerpts_of_the_tested_files() -> None:
    page = (DEPLOY.parent / "docs" / "scale-out.md").read_text()
    examples = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", page, re.S)]
    files = [
        yaml.safe_load((DEPLOY / name).read_text()) for name in ["dagster.yaml", *POSTGRES_FILES]
    ]
    assert len(examples) == 3
    for example in examples:
        assert any(_within(example, config) for config in files), example


def test_every_run_environment_of_deploy_sets_the_benchmarked_memory_settings() -> None:
    expected = [f"{name}={value}" for name, value in DEPLOYED_MEMORY_SETTINGS.items()]
    ecs = yaml.safe_load((DEPLOY / "dagster-ecs.yaml").read_text())
    assert ecs["run_launcher"]["config"]["env_vars"] == expected
    helm = yaml.safe_load((DEPLOY / "helm-values.yaml").read_text())
    assert helm["runLauncher"]["config"]["k8sRunLauncher"]["envVars"] == expected
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    assert [f"{env['name']}={env['value']}" for env in deployment["env"]] == expected

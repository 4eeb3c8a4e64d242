"""Steps on separate workers: the run configs of deploy/ for dagster-aws's ECS executor and
dagster-k8s's Kubernetes job executor, validated against the job, and the Helm chart values
whose instance starts runs and steps as Kubernetes Jobs, loaded in Dagster."""

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.executor.step_delegating import StepDelegatingExecutor
from dagster_k8s import K8sRunLauncher
from dagster_k8s.executor import K8sStepHandler
from dagster_postgres import PostgresRunStorage
from dagster_shared.check import CheckError

from cleanup_pipeline.definitions import cleanup_job, defs
from cleanup_pipeline.orchestration.jobs import (
    DEFAULT_EXECUTION,
    FORKED_STEPS,
    JOB_NAME,
    selectable_executor,
)
from tests.support import helm_chart
from tests.support.dagster_instances import DEPLOY, assert_one_run_and_one_send_slot
from tests.support.postgres_server import PostgresServer

JOB = defs.resolve_job_def(JOB_NAME)


def run_config(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / name).read_text())


def executor_config(config: dict[str, Any]) -> dict[str, Any]:
    """The executor config Dagster resolves for `config` on the job (defaults filled in)."""
    resolved = dg.validate_run_config(JOB, config)
    return resolved["execution"][selectable_executor.name]


def build_executor(config: dict[str, Any], instance: dg.DagsterInstance) -> Any:
    assert selectable_executor.executor_creation_fn is not None
    return selectable_executor.executor_creation_fn(
        dg.InitExecutorContext(
            job=dg.reconstructable(cleanup_job),
            executor_def=selectable_executor,
            executor_config=executor_config(config),
            instance=instance,
        )
    )


def test_the_default_runs_every_step_in_the_run_process() -> None:
    assert DEFAULT_EXECUTION == {"in_process": {}}
    assert executor_config({}) == {"in_process": {"retries": {"enabled": {}}}}


def test_forked_steps_preload_the_module_the_workspace_loads() -> None:
    resolved = executor_config({"execution": {"config": FORKED_STEPS}})
    assert resolved == {
        "multiprocess": {
            "max_concurrent": None,
            "start_method": {"forkserver": {"preload_modules": ["cleanup_pipeline.definitions"]}},
            "retries": {"enabled": {}},
        }
    }
    workspace = yaml.safe_load((DEPLOY.parent / "workspace.yaml").read_text())
    preloaded = FORKED_STEPS["multiprocess"]["start_method"]["forkserver"]["preload_modules"]
    assert preloaded == [workspace["load_from"][0]["python_module"]]


@pytest.mark.parametrize("name", ["in_process", "multiprocess", "ecs", "k8s"])
def test_every_executor_is_chosen_in_run_config(name: str) -> None:
    assert set(executor_config({"execution": {"config": {name: {}}}})) == {name}


def test_an_unknown_executor_is_refused_naming_the_choices() -> None:
    with pytest.raises(dg.DagsterInvalidConfigError, match='unexpected config entry "celery"'):
        executor_config({"execution": {"config": {"celery": {}}}})


def test_ecs_run_config_selects_dagster_aws_ecs_executor(tmp_path: Path) -> None:
    config = executor_config(run_config("run-ecs-executor.yaml"))
    assert config == {
        "ecs": {"cpu": 1024, "memory": 4096, "max_concurrent": 4, "retries": {"enabled": {}}}
    }
    # It is dagster-aws's own executor that is built: outside an ECS run it refuses to start.
    with (
        dg.DagsterInstance.ephemeral(tempdir=str(tmp_path)) as instance,
        pytest.raises(CheckError, match="requires that the run be launched in an ECS task"),
    ):
        build_executor(run_config("run-ecs-executor.yaml"), instance)


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: not-a-secret}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: cleanup}}]
current-context: x
"""


def test_k8s_run_config_builds_dagster_k8s_step_handler(tmp_path: Path) -> None:
    config = run_config("run-k8s-executor.yaml")
    resolved = executor_config(config)["k8s"]
    assert resolved["max_concurrent"] == 4
    resources = resolved["step_k8s_config"]["container_config"]["resources"]
    assert resources == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    # Outside the cluster, pointed at a kubeconfig (the file of deploy/ says in-cluster, the
    # run launcher's default): the executor and its step handler are dagster-k8s's own.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    config["execution"]["config"]["k8s"] |= {
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }
    with dg.DagsterInstance.ephemeral(tempdir=str(tmp_path)) as instance:
        executor = build_executor(config, instance)
    assert isinstance(executor, StepDelegatingExecutor)
    assert isinstance(executor._step_handler, K8sStepHandler)
    assert executor._max_concurrent == 4
    step_config = executor._step_handler._executor_container_context.run_k8s_config
    assert step_config.container_config["resources"] == resources


def helm_values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "helm-values.yaml").read_text())


def test_helm_values_use_only_fields_of_the_chart() -> None:
    values = helm_values()
    assert helm_chart.unknown_fields(values) == []
    assert values["runLauncher"]["type"] in helm_chart.RUN_LAUNCHER_TYPES
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    # The instance's concurrency is the one of dagster.yaml, pools and run limits alike.
    plain = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert values["additionalInstanceConfig"]["concurrency"] == plain["concurrency"]


def test_helm_code_server_loads_the_definitions_of_the_workspace() -> None:
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[0] == "-m"
    workspace = yaml.safe_load((DEPLOY.parent / "workspace.yaml").read_text())
    assert args[1] == workspace["load_from"][0]["python_module"]
    # Runs and their steps get the same environment as the code server.
    launcher = helm_values()["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envSecrets"] == deployment["envSecrets"]


def test_helm_values_render_an_instance_dagster_loads(
    tmp_path: Path, postgres: PostgresServer, postgres_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = helm_values()
    # As `helm install --set ...` would, for a database and a cluster reachable from here.
    values["postgresql"] |= {
        "postgresqlHost": postgres.host,
        "postgresqlUsername": postgres.username,
        "postgresqlDatabase": postgres_env,
        "service": {"port": postgres.port},
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher |= {"loadInclusterConfig": False, "kubeconfigFile": str(kubeconfig)}
    # The variables the chart sets on its pods.
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", postgres.password)
    monkeypatch.setenv("DAGSTER_K8S_INSTANCE_CONFIG_MAP", "cleanup-dagster-instance")
    monkeypatch.setenv("DAGSTER_K8S_PG_PASSWORD_SECRET", "dagster-postgresql-secret")
    monkeypatch.setenv("DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP", "cleanup-pipeline-run-env")

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    rendered = helm_chart.render_instance(values, namespace="cleanup")
    (home / "dagster.yaml").write_text(yaml.safe_dump(rendered))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert_one_run_and_one_send_slot(instance)
        run_launcher = instance.run_launcher
        assert isinstance(run_launcher, K8sRunLauncher)
        assert run_launcher.job_namespace == "cleanup"
        assert run_launcher.service_account_name == "cleanup-pipeline"
        assert run_launcher.env_secrets == ["cleanup-pipeline-env"]
        assert instance.run_monitoring_enabled


def test_helm_run_launcher_config_is_valid_for_dagster_k8s(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher config the chart renders for the values as shipped (in-cluster)."""
    for name in ("DAGSTER_HOME", "DAGSTER_K8S_INSTANCE_CONFIG_MAP"):
        monkeypatch.setenv(name, "set-by-the-chart")
    monkeypatch.setenv("DAGSTER_K8S_PG_PASSWORD_SECRET", "dagster-postgresql-secret")
    monkeypatch.setenv("DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP", "cleanup-pipeline-run-env")
    rendered = helm_chart.render_instance(helm_values(), namespace="cleanup")["run_launcher"]
    result = process_config(K8sRunLauncher.config_type(), rendered["config"])
    assert result.success, [e.message for e in result.errors or []]
    assert result.value["load_incluster_config"] is True

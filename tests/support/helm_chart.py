"""What Dagster's official Helm chart (dagster/dagster 1.13) does with deploy/helm-values.yaml.

The chart is not installed here (no cluster, no helm). This module holds, for the parts of the
values the chart reads, the field names of the chart's own schema
(`helm/dagster/schema/schema/charts/...` in dagster-io/dagster) and the instance file its
templates render from them (`templates/configmap-instance.yaml` and, in
`templates/helpers/instance/`, `_run-launcher.tpl`, `_run-coordinator.tpl`, `_postgresql.tpl`),
so that a test can load that instance in Dagster.
"""

from typing import Any

# DagsterHelmValues: the chart's top-level values.
TOP_LEVEL = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
    "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
    "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount", "global",
    "retention", "additionalInstanceConfig",
}  # fmt: skip
GLOBAL = {
    "postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName",
    "dagsterInstanceConfigMap",
}  # fmt: skip
USER_DEPLOYMENTS = {"enabled", "enableSubchart", "imagePullSecrets", "deployments"}
USER_DEPLOYMENT = {
    "name", "image", "port", "dagsterApiGrpcArgs", "codeServerArgs",
    "includeConfigInLaunchedRuns", "env", "envConfigMaps", "envSecrets", "annotations",
    "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
    "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
    "volumes", "schedulerName",
}  # fmt: skip
IMAGE = {"repository", "tag", "pullPolicy"}
RUN_LAUNCHER_TYPES = {"CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"}
K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
POSTGRESQL = {
    "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
    "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service",
}  # fmt: skip
DAEMON = {
    "schedulerName", "volumeMounts", "volumes", "enabled", "image", "runCoordinator",
    "heartbeatTolerance", "env", "envConfigMaps", "envSecrets", "deploymentLabels", "labels",
    "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
    "resources", "livenessProbe", "readinessProbe", "startupProbe", "annotations",
    "runMonitoring", "runRetries", "sensors", "schedules",
}  # fmt: skip
RUN_COORDINATOR = {"enabled", "type", "config"}
QUEUED = {
    "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
    "dequeueUseThreads",
}  # fmt: skip
TELEMETRY = {"enabled"}


def unknown_fields(values: dict[str, Any]) -> list[str]:
    """Every key of `values` the chart's schema does not have, as a dotted path."""
    found: list[str] = []

    def check(where: str, part: dict[str, Any], allowed: set[str]) -> None:
        found.extend(f"{where}{key}" for key in part if key not in allowed)

    check("", values, TOP_LEVEL)
    check("global.", values.get("global", {}), GLOBAL)
    deployments = values.get("dagster-user-deployments", {})
    check("dagster-user-deployments.", deployments, USER_DEPLOYMENTS)
    for n, deployment in enumerate(deployments.get("deployments", [])):
        check(f"dagster-user-deployments.deployments[{n}].", deployment, USER_DEPLOYMENT)
        check(f"dagster-user-deployments.deployments[{n}].image.", deployment["image"], IMAGE)
    launcher = values.get("runLauncher", {}).get("config", {}).get("k8sRunLauncher", {})
    check("runLauncher.config.k8sRunLauncher.", launcher, K8S_RUN_LAUNCHER)
    check("postgresql.", values.get("postgresql", {}), POSTGRESQL)
    daemon = values.get("dagsterDaemon", {})
    check("dagsterDaemon.", daemon, DAEMON)
    coordinator = daemon.get("runCoordinator", {})
    check("dagsterDaemon.runCoordinator.", coordinator, RUN_COORDINATOR)
    queued = coordinator.get("config", {}).get("queuedRunCoordinator", {})
    check("dagsterDaemon.runCoordinator.config.queuedRunCoordinator.", queued, QUEUED)
    check("telemetry.", values.get("telemetry", {}), TELEMETRY)
    return found


def render_instance(values: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The parts of the chart's dagster.yaml these values decide: storage, run coordinator, run
    launcher, run monitoring, telemetry; as the chart's templates write them."""
    pg = values["postgresql"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    coordinator_values = values["dagsterDaemon"]["runCoordinator"].get("config", {})
    queued = coordinator_values.get("queuedRunCoordinator", {})
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    postgres_db: dict[str, Any] = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams", {}),
    }
    if pg.get("postgresqlScheme"):
        postgres_db["scheme"] = pg["postgresqlScheme"]
    launcher_config: dict[str, Any] = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher.get("jobNamespace") or namespace,
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}]
        + [c["name"] for c in launcher.get("envConfigMaps", []) if "name" in c],
    }
    if launcher.get("kubeconfigFile"):
        launcher_config["kubeconfig_file"] = launcher["kubeconfigFile"]
    if launcher.get("envSecrets"):
        launcher_config["env_secrets"] = [s["name"] for s in launcher["envSecrets"] if "name" in s]
    coordinator: dict[str, Any] = {}
    if queued.get("maxConcurrentRuns"):
        coordinator["max_concurrent_runs"] = queued["maxConcurrentRuns"]
    if queued.get("tagConcurrencyLimits"):
        coordinator["tag_concurrency_limits"] = queued["tagConcurrencyLimits"]
    return {
        "storage": {"postgres": {"postgres_db": postgres_db}},
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": coordinator,
        },
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": launcher_config,
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
        # Appended last, as it is (`configmap-instance.yaml`).
        **values.get("additionalInstanceConfig", {}),
    }

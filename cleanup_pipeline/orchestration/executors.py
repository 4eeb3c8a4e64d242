"""The job's executor, chosen per run in the `execution:` run config, without a code change.

    execution:
      config:
        in_process: {}          # every step in the run's process (the default)
        multiprocess: {...}     # one process per step on the run's machine
        ecs: {...}              # one ECS task per step (dagster-aws), runs by EcsRunLauncher
        k8s: {...}              # one Kubernetes Job per step (dagster-k8s, the `k8s` extra)

Each choice is Dagster's own executor, with its own config schema, requirements and behaviour;
this only picks one. Steps on separate workers need the step outputs on S3
(`CLEANUP_STEP_OUTPUTS_S3_URI`, see step_outputs.py).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.definitions.executor_definition import ExecutorRequirement
from dagster._core.executor.base import Executor
from dagster_aws.ecs import ecs_executor

# A launch from the UI or the schedule with the default config runs every step in the run's own
# process, as `cleanup-pipeline run` does: one import of Dagster, pandas and boto3 and one set of
# AWS clients for the whole run. Measured on the 400-user demo (docs/performance.md), one process
# per step, even forked from a server that preloaded the job, took about twice as long. Runs that
# should spread the deletion batches over processes or machines say so in their run config
# (`multiprocess`, `ecs`, `k8s`; deploy/ holds examples).
DEFAULT_EXECUTION: dict[str, Any] = {"in_process": {}}
# One process per step on the run's machine, each forked from a server that imported the job
# once rather than started as a fresh interpreter (Dagster's own default, `spawn`).
FORKED_STEPS: dict[str, Any] = {
    "multiprocess": {
        "start_method": {"forkserver": {"preload_modules": ["cleanup_pipeline.definitions"]}}
    }
}


def _choices() -> dict[str, dg.ExecutorDefinition]:
    choices = {
        "in_process": dg.in_process_executor,
        "multiprocess": dg.multiprocess_executor,
        "ecs": ecs_executor,
    }
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError:  # the `k8s` extra is not installed: no Kubernetes choice
        pass
    else:
        choices["k8s"] = k8s_job_executor
    return choices


CHOICES = _choices()


def _chosen(config: Mapping[str, Any]) -> tuple[dg.ExecutorDefinition, Mapping[str, Any]]:
    name, sub_config = next(iter(config.items()))
    return CHOICES[name], sub_config


def _requirements(config: Mapping[str, Any]) -> Sequence[ExecutorRequirement]:
    chosen, sub_config = _chosen(config)
    return chosen.get_requirements(sub_config)


@dg.executor(
    name="in_process_multiprocess_ecs_or_k8s",
    config_schema=dg.Field(
        dg.Selector({name: d.config_schema.as_field() for name, d in CHOICES.items()}),
        default_value=DEFAULT_EXECUTION,
    ),
    requirements=_requirements,
)
def selectable_executor(init_context: dg.InitExecutorContext) -> Executor:
    """The executor named in the run config, built by Dagster from its own config."""
    chosen, sub_config = _chosen(init_context.executor_config)
    assert chosen.executor_creation_fn is not None
    return chosen.executor_creation_fn(
        dg.InitExecutorContext(
            job=init_context.job,
            executor_def=chosen,
            executor_config=sub_config,
            instance=init_context.instance,
        )
    )

"""Module-level job accessor so Dagster can reconstruct the job in step processes."""

import dagster as dg

from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.job import JOB_NAME


def cleanup_job() -> dg.JobDefinition:
    return defs.resolve_job_def(JOB_NAME)

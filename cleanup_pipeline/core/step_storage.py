"""Where the values that flow between the job's steps are stored (SPEC §8, scale-out).

Unset, each run keeps them in a folder of the machine that runs it, which only works while every
step of a run runs on that machine. `CLEANUP_STEP_OUTPUTS_S3_URI=s3://bucket/prefix` stores them
on S3 instead, so that steps can run on separate workers (ECS tasks, Kubernetes pods) and a
re-execution on another worker finds the values of the run it re-executes.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

STEP_OUTPUTS_VARIABLE = "CLEANUP_STEP_OUTPUTS_S3_URI"

# S3 bucket naming rules: 3-63 characters, lowercase letters, digits, dots and hyphens, starting
# and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3StepStorage:
    """Step outputs under `s3://bucket/prefix/`; `prefix` has no leading or trailing slash."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def step_storage_from_env(env: Mapping[str, str] | None = None) -> S3StepStorage | None:
    """The S3 location of step outputs, or None for the local folder; a malformed value is an
    error naming the variable."""
    env = os.environ if env is None else env
    value = env.get(STEP_OUTPUTS_VARIABLE, "").strip()
    if not value:
        return None
    bucket, _, prefix = value.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not value.startswith("s3://") or not _BUCKET.fullmatch(bucket) or not prefix:
        raise ValueError(
            f"{STEP_OUTPUTS_VARIABLE} must be an S3 location with a key prefix, such as "
            f"s3://my-bucket/cleanup-steps, not {value!r}"
        )
    if "//" in prefix:
        raise ValueError(f"{STEP_OUTPUTS_VARIABLE} has an empty path segment: {value!r}")
    return S3StepStorage(bucket=bucket, prefix=prefix)

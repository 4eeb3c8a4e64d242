"""`CLEANUP_STEP_OUTPUTS_S3_URI`: where step outputs go, and a clear error when it is malformed."""

import pytest

from cleanup_pipeline.core.settings import (
    STEP_OUTPUTS_VARIABLE,
    S3StepStorage,
    step_storage_from_env,
)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_or_blank_keeps_step_outputs_on_the_local_disk(value: str | None) -> None:
    env = {} if value is None else {STEP_OUTPUTS_VARIABLE: value}
    assert step_storage_from_env(env) is None


@pytest.mark.parametrize(
    ("value", "bucket", "prefix"),
    [
        ("s3://cleanup-steps/runs", "cleanup-steps", "runs"),
        ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b"),
        (" s3://abc/p ", "abc", "p"),
    ],
)
def test_an_s3_location_names_bucket_and_prefix(value: str, bucket: str, prefix: str) -> None:
    storage = step_storage_from_env({STEP_OUTPUTS_VARIABLE: value})
    assert storage == S3StepStorage(bucket=bucket, prefix=prefix)
    assert storage.uri == f"s3://{bucket}/{prefix}"


@pytest.mark.parametrize(
    "value",
    [
        "cleanup-steps/runs",  # no scheme
        "s3:/cleanup-steps/runs",
        "/var/lib/steps",  # a local folder is not a location other workers can read
        "s3://cleanup-steps",  # no prefix
        "s3://cleanup-steps/",
        "s3://Cleanup_Steps/runs",  # not a valid bucket name
        "s3://ab/runs",
        "s3:///runs",
        "s3://cleanup-steps/a//b",
    ],
)
def test_a_malformed_value_is_an_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match=STEP_OUTPUTS_VARIABLE):
        step_storage_from_env({STEP_OUTPUTS_VARIABLE: value})

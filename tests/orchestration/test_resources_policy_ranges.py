"""Every policy field is range-checked when a run starts: one short error names every bad
field, before any AWS call, whether the values come from the launchpad's run config, from
code, or from the command line."""

import annotated_types
import dagster as dg
import pytest
from pydantic import ValidationError

from cleanup_pipeline.definitions import cleanup_job, defs
from cleanup_pipeline.orchestration.jobs import JOB_NAME, run_config_for, run_job
from cleanup_pipeline.orchestration.resources import CleanupPolicy
from tests.support import recording
from tests.support.cli import cli
from tests.support.world import AS_OF_ISO

BAD_VALUES = [
    ("notify_after_days", 0),
    ("delete_after_days", 0),
    ("delete_after_days", 60),  # not after the warning: nobody would get the grace period
    ("max_invalid_fraction", -0.01),
    ("max_invalid_fraction", 1.5),
    ("min_guarded_count", -1),
    ("max_delete_fraction", 5),  # meant as 5%: would lift the deletion guard
    ("max_delete_fraction", -0.1),
    ("max_notify_fraction", 20),
    ("history_factor", 0),
    ("history_factor", 0.5),
    ("history_window", 0),
    ("history_min_runs", 0),
    ("history_min_runs", 8),  # more than the window holds: the history guard would never apply
    ("scan_segments", 0),
    ("action_batch_size", 0),
    ("deletion_batch_size", 0),
    ("deletion_batch_size", -5),
    ("send_rate_per_second", 0),
    ("send_workers", -1),
    ("warning_claim_lease_minutes", 0),
    ("report_retention_days", -1),
    ("progress_log_seconds", 0),
    ("progress_log_seconds", 31),  # SPEC §10: at least every 30 s
    # Upper bounds: a typo of a few extra digits is refused, not run with.
    ("notify_after_days", 3651),
    ("delete_after_days", 3651),
    ("min_guarded_count", 1_000_001),
    ("max_erasures_per_run", 1_000_001),
    ("max_erasures_per_run", -1),
    ("history_factor", 101),
    ("history_window", 366),
    ("scan_segments", 1001),
    ("action_batch_size", 10_001),
    ("deletion_batch_size", 100_001),
    ("send_rate_per_second", 10_001),
    ("send_workers", 257),
    ("warning_claim_lease_minutes", 10_081),
    ("approval_max_age_days", 0),
    ("approval_max_age_days", 91),
    ("report_retention_days", 3651),
]

EDGES_ALLOWED = {
    "max_invalid_fraction": 0,
    "max_delete_fraction": 1,
    "max_notify_fraction": 0,
    "min_guarded_count": 0,
    "history_factor": 1,
    "history_min_runs": 7,
    "report_retention_days": 0,
    "send_rate_per_second": 0.5,
    "delete_after_days": 61,
}


UPPER_EDGES_ALLOWED = {
    "notify_after_days": 3649,
    "delete_after_days": 3650,
    "max_invalid_fraction": 1,
    "max_delete_fraction": 1,
    "max_notify_fraction": 1,
    "min_guarded_count": 1_000_000,
    "max_erasures_per_run": 1_000_000,
    "history_factor": 100,
    "history_window": 365,
    "history_min_runs": 365,
    "scan_segments": 1000,
    "action_batch_size": 10_000,
    "deletion_batch_size": 100_000,
    "send_rate_per_second": 10_000,
    "send_workers": 256,
    "warning_claim_lease_minutes": 10_080,
    "approval_max_age_days": 90,
    "report_retention_days": 3650,
    "progress_log_seconds": 30,
}


def _message(error: ValidationError) -> str:
    [finding] = error.errors()
    return finding["msg"]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_each_out_of_range_field_is_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as raised:
        CleanupPolicy(**{field: value})
    message = _message(raised.value)
    assert message.startswith("cleanup_policy out of range: ")
    assert f"{field}={value!r} should be" in message
    assert message.count("=") == 1  # only the bad field is named
    assert "\n" not in message


def test_a_fraction_written_as_a_percentage_is_explained() -> None:
    with pytest.raises(ValidationError) as raised:
        CleanupPolicy(max_delete_fraction=5)
    assert "(a fraction: 0.05 is 5%)" in _message(raised.value)


def test_the_edges_of_each_range_are_allowed() -> None:
    policy = CleanupPolicy(**EDGES_ALLOWED)
    assert {name: getattr(policy, name) for name in EDGES_ALLOWED} == EDGES_ALLOWED


def test_the_upper_edges_of_each_range_are_allowed() -> None:
    policy = CleanupPolicy(**UPPER_EDGES_ALLOWED)
    assert {name: getattr(policy, name) for name in UPPER_EDGES_ALLOWED} == UPPER_EDGES_ALLOWED


def test_every_number_of_the_policy_has_an_upper_bound() -> None:
    """A new numeric field fails here until it has one, and its upper edge is listed above."""
    numbers = {
        name: field
        for name, field in CleanupPolicy.model_fields.items()
        if field.annotation in {int, float, float | None}
    }
    unbounded = [
        name
        for name, field in numbers.items()
        if not any(
            isinstance(rule, annotated_types.Le | annotated_types.Lt) for rule in field.metadata
        )
    ]
    assert unbounded == []
    assert set(numbers) == set(UPPER_EDGES_ALLOWED)


def test_one_error_names_every_bad_field() -> None:
    with pytest.raises(ValidationError) as raised:
        CleanupPolicy(max_delete_fraction=5, history_factor=0, send_workers=-1, history_window=0)
    assert raised.value.error_count() == 1
    message = _message(raised.value)
    for named in ("max_delete_fraction=5", "history_factor=0", "send_workers=-1"):
        assert named in message
    assert "history_window=0" in message


def _launch(aws_policy_config: dict) -> dg.ExecuteInProcessResult:
    """A launch as the launchpad makes it: the policy as run config on the job's resources."""
    run_config = run_config_for(AS_OF_ISO)
    run_config["resources"]["cleanup_policy"] = {"config": aws_policy_config}
    return defs.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config,
        resources={"aws": recording.RecordingAwsEnvironment()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_a_launch_with_bad_values_fails_before_any_aws_call(aws) -> None:
    recording.CALLS.clear()
    result = _launch({"max_delete_fraction": 5, "history_factor": 0, "send_workers": -2})
    assert not result.success
    assert recording.CALLS == []
    assert result.get_asset_materialization_events() == []
    init = dg.DagsterEventType.RESOURCE_INIT_FAILURE
    [failure] = [e for e in result.all_events if e.event_type == init]
    started = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert failure.step_key is None and started == []  # at the run's start, before any step
    error = failure.event_specific_data.error
    [line] = [line for line in error.message.splitlines() if "out of range" in line]
    assert "max_delete_fraction=5.0" in line
    assert "history_factor=0.0" in line
    assert "send_workers=-2" in line


def test_run_job_refuses_a_bad_batch_size_before_creating_a_run() -> None:
    instance = dg.DagsterInstance.ephemeral()
    for size in (0, -5):
        with pytest.raises(ValidationError, match=f"deletion_batch_size={size} should be"):
            run_job(
                None,
                False,
                False,
                instance=instance,
                deletion_batch_size=size,
                job=cleanup_job,
            )
    assert instance.get_runs() == []


@pytest.mark.e2e
@pytest.mark.parametrize("size", ["0", "-5", "five"])
def test_cli_refuses_a_bad_batch_size_in_one_line(server: str, size: str) -> None:
    code, _, output = cli("run", "--deletion-batch-size", size)
    assert code == 2
    [error] = [line for line in output.splitlines() if "error:" in line]
    assert "--deletion-batch-size" in error
    assert "Traceback" not in output
    assert dg.DagsterInstance.get().get_runs() == []  # nothing launched


@pytest.mark.e2e
def test_cli_refuses_a_bad_concurrency_in_one_line(server: str) -> None:
    code, _, output = cli("run", "--multiprocess", "--max-concurrent", "0")
    assert code == 2 and "--max-concurrent: should be at least 1, not 0" in output
    assert dg.DagsterInstance.get().get_runs() == []

"""The real job against AWS that throttles and fails: a share of DynamoDB, S3 and SES requests
answered with retryable errors at the HTTP layer (boto3's adaptive retries handle them), a share
of calls failing on every attempt (the error reaches the job after retries), and a share of
writes whose answer is lost after AWS processed them. Whatever happens, the SPEC §4 guarantees
hold after each run, and clean runs then reach exactly the state one undisturbed run gives."""

import pytest

from tests.support.http_faults import faults
from tests.support.items import now_ms
from tests.support.jobs import failed_steps, read_report
from tests.support.recovery import assert_safe, recover, run_job, sent_counts
from tests.support.world import BIG_FOLDER, DELETED, NOTIFIED, assert_final_state, seed_world

SERVICES = {"dynamodb", "s3", "sesv2"}
PER_USER_CALLS = frozenset(
    {
        "BatchGetItem",
        "UpdateItem",
        "SendEmail",
        "ListObjectsV2",
        "DeleteObjects",
        "TransactWriteItems",
        "DeleteItem",
    }
)


pytestmark = pytest.mark.usefixtures("fault_harness")


@pytest.mark.parametrize(
    ("rate", "seed", "big_folder"),
    [(0.1, 1, 3), (0.3, 4, BIG_FOLDER)],
)
def test_retryable_faults_are_absorbed_by_retries(aws, rate, seed, big_folder) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=big_folder)
    before = now_ms()
    with faults(transient=rate, seed=seed) as plan:
        first = run_job()
    assert first.success, failed_steps(first)
    assert plan.injected, "no fault injected: the case tests nothing"
    if rate >= 0.3:
        assert {service for service, *_ in plan.injected} == SERVICES, plan.injected
    assert_final_state(clients, settings, seeded, list(sent_counts().elements()), before, now_ms())
    outcomes = read_report(first).set_index("id")["outcome"]
    assert set(outcomes[outcomes == "deleted"].index) == set(DELETED)
    assert set(outcomes[outcomes == "warned"].index) == set(NOTIFIED)

    second = run_job()
    assert second.success, failed_steps(second)
    assert_final_state(clients, settings, seeded, list(sent_counts().elements()), before, now_ms())


@pytest.mark.parametrize(
    ("persistent", "transient", "seed", "operations"),
    [(0.15, 0.1, 11, None), (0.25, 0.2, 12, PER_USER_CALLS)],
)
def test_calls_failing_every_attempt_fail_the_run_and_later_runs_finish(
    aws, persistent, transient, seed, operations
) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=3)
    before = now_ms()
    with faults(transient, persistent, seed, persistent_ops=operations) as plan:
        first = run_job()
    failing = [operation for operation, _ in plan.exhausted if operation != "GetAccount"]
    assert failing, "no call failed on every attempt: the case tests nothing"
    assert not first.success
    in_flight = assert_safe(clients, settings, seeded)
    recover(clients, settings, seeded, before, in_flight)


WRITES = frozenset({"UpdateItem", "TransactWriteItems", "DeleteItem", "DeleteObjects", "SendEmail"})


@pytest.mark.parametrize(("lost", "seed"), [(0.4, 22)])
def test_lost_answers_never_warn_twice_in_a_run(aws, lost, seed) -> None:
    clients, settings = aws
    seeded = seed_world(clients, settings, big_folder=3)
    before = now_ms()
    with faults(transient=0.1, seed=seed, lost=lost, lost_ops=WRITES) as plan:
        first = run_job()
    assert [op for op, _ in plan.lost_answers if op == "SendEmail"], "no send answer lost"
    in_flight = assert_safe(clients, settings, seeded)
    assert in_flight.sent, "no warning left with an unknown answer"
    assert not first.success
    recover(clients, settings, seeded, before, in_flight)

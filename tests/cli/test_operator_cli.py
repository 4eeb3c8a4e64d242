"""`cleanup-pipeline hold` and `run --approve` against a moto server, and the `manage_hold` job
(SPEC §10)."""

import json
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.holds_table import scan_holds
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.decisions import Hold
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.definitions import cleanup_job, defs
from cleanup_pipeline.local.batch_write import batch_write as put_all
from cleanup_pipeline.local.provision import provision
from cleanup_pipeline.orchestration.inputs import active_holds
from cleanup_pipeline.orchestration.jobs import run_job
from cleanup_pipeline.orchestration.resources import AwsEnvironment
from tests.support.cli import cli
from tests.support.items import user, warned
from tests.support.jobs import execute_restore, metadata
from tests.support.world import AS_OF_ISO, DAY_MS, A, seed_world

pytestmark = pytest.mark.e2e


def _provisioned():
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    return clients, settings


def test_hold_add_list_remove_and_the_next_run_honours_the_hold(server: str) -> None:
    clients, settings = _provisioned()
    seeded = seed_world(clients, settings)
    held = "u1"  # a delete candidate of the seeded world
    assert held in seeded.users

    code, added, _ = cli("hold", "add", held, "--reason", "legal case 12")
    assert code == 0 and added["status"] == "added" and added["replaced"] is None
    assert added["hold"] == {
        "user_id": held,
        "reason": "legal case 12",
        "until": None,
        "active": True,
    }
    code, again, _ = cli("hold", "add", "u10", "--reason", "staff", "--until", "2099-01-01")
    assert code == 0 and again["hold"]["until"] == "2099-01-01T00:00:00Z"

    code, listed, _ = cli("hold", "list")
    assert code == 0
    assert [h["user_id"] for h in listed["holds"]] == [held, "u10"]

    code, summary, output = cli("run", "--as-of", AS_OF_ISO, "--dry-run")
    assert code == 0, output
    report = pd.read_parquet(summary["report"]).set_index("id")
    assert report.loc[held, ["decision", "reason", "hold_reason"]].tolist() == [
        "exempt",
        "hold",
        "legal case 12",
    ]

    code, removed, _ = cli("hold", "remove", "u10")
    assert code == 0 and removed["status"] == "removed" and removed["hold"]["reason"] == "staff"
    code, absent, output = cli("hold", "remove", "u10")
    assert code == 1 and absent == {"status": "not_held", "user_id": "u10"}
    assert scan_holds(clients.dynamodb, settings.holds_table) == [Hold(held, "legal case 12")]


def test_an_expired_hold_is_listed_as_inactive_and_may_be_added_again(server: str) -> None:
    clients, settings = _provisioned()
    past = int(time.time() * 1000) - 1
    clients.dynamodb.put_item(
        TableName=settings.holds_table,
        Item={"id": {"S": "u1"}, "reason": {"S": "ended"}, "until": {"N": str(past)}},
    )
    code, listed, _ = cli("hold", "list")
    assert code == 0 and [h["active"] for h in listed["holds"]] == [False]
    code, added, _ = cli("hold", "add", "u1", "--reason", "again")
    assert code == 0 and added["replaced"]["active"] is False and added["hold"]["active"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "u1", "--reason", "   "), "needs a reason"),
        (("add", "u1", "--reason", "legal", "--until", "2020-01-01"), "already past"),
        (("add", "u1", "--reason", "legal", "--until", "99999999999999999999"), "--until"),
        (("add", "u1", "--reason", "legal", "--until", "9999-06-01"), "out of range"),
        (("add", "x" * 5000, "--reason", "legal"), "longer than 2,048 bytes"),
    ],
)
def test_hold_add_refuses_clearly_and_writes_nothing(server: str, args, message) -> None:
    clients, settings = _provisioned()
    code, result, output = cli("hold", *args)
    assert code == 1 and result["status"] == "refused" and message in output
    [error] = [line for line in output.splitlines() if line.startswith("error:")]
    assert message in error and "Traceback" not in output
    assert scan_holds(clients.dynamodb, settings.holds_table) == []


# Stored by hand or by another tool: no `until` here is a time a hold can end at.
ODD_UNTILS = {
    "huge": {"N": "99999999999999999999"},
    "fraction": {"N": "1893456000000.5"},
    "text": {"S": "next spring"},
}


def test_hold_list_remove_and_replace_survive_any_stored_until(server: str) -> None:
    clients, settings = _provisioned()
    for user_id, until in ODD_UNTILS.items():
        clients.dynamodb.put_item(
            TableName=settings.holds_table,
            Item={"id": {"S": user_id}, "reason": {"S": "legal"}, "until": until},
        )
    code, listed, output = cli("hold", "list")
    assert code == 0, output
    shown = {hold["user_id"]: hold for hold in listed["holds"]}
    for user_id, until in ODD_UNTILS.items():
        [stored] = until.values()
        assert shown[user_id]["until"] == stored and shown[user_id]["active"] is True
        assert "held until removed" in shown[user_id]["flag"]

    code, added, output = cli("hold", "add", "huge", "--reason", "legal, extended")
    assert code == 0, output
    assert added["replaced"]["until"] == "99999999999999999999" and "flag" in added["replaced"]
    code, removed, output = cli("hold", "remove", "fraction")
    assert code == 0 and removed["hold"]["until"] == "1893456000000.5", output
    assert "Traceback" not in output
    assert scan_holds(clients.dynamodb, settings.holds_table) == [
        Hold("huge", "legal, extended"),
        Hold("text", "legal"),
    ]


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """(exit status, the last line of stdout, stderr) of the console script in this process."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (out.strip().splitlines() or [""])[-1], err


@pytest.mark.parametrize("command", [["hold", "remove"], ["restore"], ["ledger"]])
@pytest.mark.parametrize(
    ("user_id", "why"),
    [("x" * 5000, "longer than 2,048 bytes"), ("a/b", "contains '/'"), ("", "is empty")],
    ids=["5000-characters", "slash", "empty"],
)
def test_an_impossible_user_id_is_refused_in_one_line_before_any_aws_call(
    capsys, monkeypatch: pytest.MonkeyPatch, command: list[str], user_id: str, why: str
) -> None:
    # Nothing listens there: any AWS call would fail with a connection error instead.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, last, err = _in_process(capsys, *command, user_id)
    assert code in {1, 2}
    [error] = err.strip().splitlines()
    assert error.startswith("error: USER_ID ") and why in error
    if command != ["ledger"]:
        assert json.loads(last)["status"] == "refused"


def test_the_ui_jobs_refuse_an_impossible_until_or_user_id(aws) -> None:
    clients, settings = aws
    huge = _manage(action="add", user_id="u1", reason="legal", until="99999999999999999999")
    assert not huge.success and "until (--until / until)" in _failure(huge)
    long_id = _manage(action="remove", user_id="x" * 5000)
    assert not long_id.success and "user_id 'xxx" in _failure(long_id)
    assert scan_holds(clients.dynamodb, settings.holds_table) == []
    restore = execute_restore("x" * 5000)
    assert not restore.success and "longer than 2,048 bytes" in _failure(restore)


def test_the_ui_job_and_the_run_read_any_stored_until(aws) -> None:
    clients, settings = aws
    for user_id, until in ODD_UNTILS.items():
        clients.dynamodb.put_item(
            TableName=settings.holds_table,
            Item={"id": {"S": user_id}, "reason": {"S": "legal"}, "until": until},
        )
    held = dg.materialize(
        [active_holds], resources={"aws": AwsEnvironment()}, instance=dg.DagsterInstance.ephemeral()
    )
    assert held.success
    assert metadata(held, "active_holds")["held"] == len(ODD_UNTILS)
    assert _manage(action="add", user_id="huge", reason="legal, extended").success
    assert _manage(action="remove", user_id="text").success
    assert scan_holds(clients.dynamodb, settings.holds_table) == [
        Hold("fraction", "legal"),
        Hold("huge", "legal, extended"),
    ]


def test_hold_commands_refuse_without_a_holds_table(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOLDS_TABLE_NAME")
    for args in (("add", "u1", "--reason", "legal"), ("list",)):
        code, result, output = cli("hold", *args)
        assert code == 1 and result["status"] == "refused"
        assert "HOLDS_TABLE_NAME is not set" in output


def _manage(**config: str) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("manage_hold").execute_in_process(
        run_config={"ops": {"change_hold": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    return failures[0].step_failure_data.user_failure_data.description


def test_the_manage_hold_job_adds_and_removes_holds(aws) -> None:
    clients, settings = aws
    added = _manage(action="add", user_id="u1", reason="legal", until="2099-01-01T00:00:00Z")
    assert added.success
    assert scan_holds(clients.dynamodb, settings.holds_table) == [
        Hold("u1", "legal", 4_070_908_800_000)
    ]
    output = next(e for e in added.all_events if e.is_successful_output)
    shown = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert shown["reason"] == "legal" and shown["until"] == "2099-01-01T00:00:00Z"
    assert _manage(action="remove", user_id="u1").success
    assert scan_holds(clients.dynamodb, settings.holds_table) == []
    missing = _manage(action="remove", user_id="u1")
    assert not missing.success and "has no hold" in _failure(missing)


def test_the_manage_hold_job_refuses_an_empty_reason_and_a_missing_table(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, settings = aws
    empty = _manage(action="add", user_id="u1", reason=" ")
    assert not empty.success and "needs a reason" in _failure(empty)
    monkeypatch.delenv("HOLDS_TABLE_NAME")
    off = _manage(action="add", user_id="u1", reason="legal")
    assert not off.success and "HOLDS_TABLE_NAME is not set" in _failure(off)
    assert scan_holds(clients.dynamodb, settings.holds_table) == []


def test_cli_approves_a_blocked_run_and_refuses_a_bad_run_id_before_launching(
    server: str,
) -> None:
    clients, settings = _provisioned()
    seed_world(clients, settings)
    extra = [user(f"extra-{i:03d}", **warned(A - 45 * DAY_MS)) for i in range(30)]
    put_all(clients.dynamodb, settings.users_table, extra)

    code, blocked, output = cli("run", "--as-of", AS_OF_ISO)
    assert code == 1 and blocked["blocked"] == ["deletions_within_limit"]
    runs = len(dg.DagsterInstance.get().get_runs())

    code, refused, output = cli("run", "--as-of", AS_OF_ISO, "--approve", "no-such-run")
    assert code == 1 and refused["status"] == "failure"
    assert "approved_run_id 'no-such-run': no such run in this Dagster instance" in output
    assert len(dg.DagsterInstance.get().get_runs()) == runs  # nothing launched

    # The reviewed report changed after its run: a delete and a notify candidate swap ids.
    reviewed = Path(blocked["report"])
    original = reviewed.read_bytes()
    report = pd.read_parquet(reviewed)
    rows = [report.index[report["decision"] == kind][0] for kind in ("delete", "notify")]
    report.loc[rows, "id"] = report.loc[rows[::-1], "id"].to_numpy()
    report.to_parquet(reviewed)
    code, refused, output = cli("run", "--as-of", AS_OF_ISO, "--approve", blocked["run_id"])
    assert code == 1 and refused["status"] == "failure" and "Traceback" not in output
    [error] = [line for line in output.splitlines() if line.startswith("error:")]
    assert "does not match the digest" in error and "changed after the run" in error
    assert len(dg.DagsterInstance.get().get_runs()) == runs  # nothing launched
    reviewed.write_bytes(original)

    newcomer = user("newcomer", **warned(A - 45 * DAY_MS))
    put_all(clients.dynamodb, settings.users_table, [newcomer])
    code, approved, output = cli("run", "--as-of", AS_OF_ISO, "--approve", blocked["run_id"])
    assert code == 0, output
    assert approved["approved_run_id"] == blocked["run_id"] and approved["blocked"] == []
    counts = approved["counts"]
    assert counts["not_approved"] == 1 and counts["deleted"] == counts["delete"] - 1
    run = dg.DagsterInstance.get().get_run_by_id(approved["run_id"])
    assert run is not None and run.tags["cleanup_pipeline/approved_run_id"] == blocked["run_id"]
    report = pd.read_parquet(approved["report"]).set_index("id")
    assert report.loc["newcomer", "outcome"] == "not_approved"
    # The ledger says which reviewed run approved each deletion.
    gone = report.index[report["outcome"] == "deleted"]
    code, ledger, output = cli("ledger", gone[0])
    assert code == 0, output
    [event] = [e for e in ledger["events"] if e["event"] == "deleted"]
    assert (event["run_id"], event["approved_run_id"]) == (approved["run_id"], blocked["run_id"])


@pytest.mark.parametrize("blank", ["", "   "])
def test_cli_refuses_a_blank_approval_in_one_line_before_launching(server: str, blank: str) -> None:
    # `--approve "$UNSET"` once ran a normal live run.
    code, _, output = cli("run", "--as-of", AS_OF_ISO, "--approve", blank)
    assert code == 2 and "Traceback" not in output
    [error] = [line for line in output.splitlines() if "error:" in line]
    assert "--approve" in error and "not be blank" in error
    assert dg.DagsterInstance.get().get_runs() == []


def test_run_job_refuses_a_blank_approval_before_creating_a_run() -> None:
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(ValueError, match=r"^--approve should name the reviewed run"):
        run_job(AS_OF_ISO, False, False, instance=instance, approved_run_id=" ", job=cleanup_job)
    assert instance.get_runs() == []

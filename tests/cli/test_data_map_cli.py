"""`cleanup-pipeline run` and `restore` refuse a data map that cannot be used, or whose stores do
not exist, in one line, exit 1, before launching a run or putting anything back."""

import dagster as dg
import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.cli.main import main
from cleanup_pipeline.core.data_map import MAP_VARIABLE, cascade_gaps, load_data_map
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.provision import provision
from tests.support.aws_state import scan_all
from tests.support.cli import cli
from tests.support.data_maps import EVERY_KIND_MAP, create_every_kind_stores
from tests.support.jobs import execute_job
from tests.support.world import AS_OF_ISO, DELETED, seed_world


def _error_line(output: str) -> str:
    [error] = [line for line in output.splitlines() if line.startswith("error:")]
    return error


def test_run_names_every_missing_store_and_launches_nothing(server: str, monkeypatch) -> None:
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    seed_world(clients, settings, big_folder=3)
    create_every_kind_stores(clients, skip=("sessions", "increaser-avatars"))
    users = scan_all(clients.dynamodb, settings.users_table)
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))

    code, summary, output = cli("run", "--as-of", AS_OF_ISO)

    assert code == 1 and summary["status"] == "failure" and summary["run_id"] is None
    error = _error_line(output)
    assert error.startswith(f"error: {MAP_VARIABLE} {EVERY_KIND_MAP}: ")
    assert "stores.avatars.bucket: bucket 'increaser-avatars' does not exist" in error
    assert "stores.sessions.table: table 'sessions' does not exist" in error
    assert "Traceback" not in output
    assert dg.DagsterInstance.get().get_runs() == []  # nothing launched
    assert scan_all(clients.dynamodb, settings.users_table) == users


def test_run_refuses_a_map_file_that_cannot_be_read(server: str, monkeypatch, tmp_path) -> None:
    missing = tmp_path / "absent.yaml"
    monkeypatch.setenv(MAP_VARIABLE, str(missing))
    code, summary, output = cli("run")
    assert code == 1 and summary["status"] == "failure"
    assert _error_line(output).startswith(f"error: {MAP_VARIABLE} {missing}: cannot be read")
    assert dg.DagsterInstance.get().get_runs() == []


def test_restore_refuses_a_missing_store_and_puts_nothing_back(aws, monkeypatch, capsys) -> None:
    clients, settings = aws
    seed_world(clients, settings, big_folder=3)
    assert execute_job().success
    user_id = DELETED[0]
    create_every_kind_stores(clients, skip=("comments",))
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    capsys.readouterr()

    code = main(["restore", user_id])

    out, err = capsys.readouterr()
    assert code == 1
    gaps = cascade_gaps(load_data_map(settings), settings)
    assert err.strip() == (
        f"error: {MAP_VARIABLE} {EVERY_KIND_MAP}: stores.comments.table: table 'comments' does "
        "not exist; " + "; ".join(gaps)
    )
    assert len(gaps) == 2  # avatars, drafts: partition_key and list stores are covered
    assert out.startswith("refused: ")
    assert user_id not in scan_all(clients.dynamodb, settings.users_table)


@pytest.mark.parametrize("command", [["restore", "u1"], ["restore", "u1", "--dry-run"]])
def test_restore_refuses_a_bad_map_before_any_aws_call(
    aws, monkeypatch, capsys, tmp_path, command
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("stores: {files: {s3_prefix: '{id}/', bucket: '${MEDIA_BUCKET}'}}")
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    capsys.readouterr()
    assert main(command) == 1
    assert "stores.files.bucket: ${MEDIA_BUCKET} is not set" in capsys.readouterr().err

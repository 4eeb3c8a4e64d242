"""Clients shared per process: built once per configuration, never across one."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from moto import mock_aws

from cleanup_pipeline.aws import clients as aws_clients
from cleanup_pipeline.aws.clients import RETRY_CONFIG, clear_shared_clients, shared_clients
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.orchestration.resources import AwsEnvironment


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts client sets built; each build is a real one."""
    made: list[int] = []
    make = aws_clients.make_clients

    def counting(*args, **kwargs):
        made.append(threading.get_ident())
        return make(*args, **kwargs)

    monkeypatch.setattr(aws_clients, "make_clients", counting)
    return made


def test_every_step_of_a_process_shares_one_set(builds):
    environment = AwsEnvironment()
    first = environment.clients()
    assert all(environment.clients() is first for _ in range(8))
    assert AwsEnvironment().clients() is first
    assert len(builds) == 1


def test_threads_asking_at_once_get_one_set(builds):
    settings = load_settings()
    with ThreadPoolExecutor(max_workers=8) as pool:
        sets = list(pool.map(lambda _: shared_clients(settings), range(32)))
    assert len({id(s) for s in sets}) == 1
    assert len(builds) == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2"),
        ("AWS_ACCESS_KEY_ID", "another-key"),
        ("AWS_SECRET_ACCESS_KEY", "another-secret"),
        ("AWS_DEFAULT_REGION", "eu-west-3"),
    ],
)
def test_another_endpoint_credential_or_region_gets_its_own_set(variable, value):
    settings = load_settings()
    before = shared_clients(settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, value)
        assert shared_clients(settings) is not before
    assert shared_clients(settings) is before


def test_endpoint_is_the_one_of_its_configuration(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    local = shared_clients(load_settings())
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    default = shared_clients(load_settings())
    assert local.dynamodb.meta.endpoint_url == "http://127.0.0.1:1"
    assert default.dynamodb.meta.endpoint_url == "https://dynamodb.us-east-1.amazonaws.com"


def test_settings_regions_are_part_of_the_configuration(monkeypatch):
    settings = load_settings()
    monkeypatch.setenv("SES_AWS_REGION", "eu-west-1")
    other = load_settings()
    assert shared_clients(other) is not shared_clients(settings)
    assert shared_clients(other).sesv2.meta.region_name == "eu-west-1"


def test_a_forked_process_builds_its_own(builds):
    settings = load_settings()
    parent = shared_clients(settings)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        fresh = shared_clients(settings) is not parent and len(builds) == 2
        os.write(write, b"1" if fresh else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(child, 0)
    assert answer == b"1"
    assert shared_clients(settings) is parent


def test_clearing_forgets_every_set(builds):
    settings = load_settings()
    first = shared_clients(settings)
    clear_shared_clients()
    assert shared_clients(settings) is not first
    assert len(builds) == 2


def test_clients_made_in_one_mock_are_not_reused_outside_it(builds):
    settings = load_settings()
    with mock_aws():
        inside = shared_clients(settings)
        inside.dynamodb.list_tables()
    outside = shared_clients(settings)
    # moto swaps in its own credentials while mocking: the configuration differs.
    assert outside is not inside


def test_read_timeout_fits_the_slowest_emulator_page():
    """A 1 MB DynamoDB page comes in well under a second; the emulator needed up to 43 s per
    page at 100,000 users and 8 segments."""
    assert RETRY_CONFIG.read_timeout >= 45
    assert RETRY_CONFIG.connect_timeout <= 10

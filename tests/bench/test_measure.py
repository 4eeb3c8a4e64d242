"""The benchmark's measures: the process-tree sampler counts each address space once, the call
recorder each API call with what it names."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from bench import measure

needs_kcmp = pytest.mark.skipif(
    measure._SYS_KCMP is None, reason="kcmp's number is not known on this machine"
)


@needs_kcmp
def test_kcmp_tells_a_process_from_its_forked_child() -> None:
    child = os.fork()
    if child == 0:
        time.sleep(5)
        os._exit(0)
    try:
        assert measure._same_address_space(os.getpid(), os.getpid())
        assert not measure._same_address_space(child, os.getpid())
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)


@pytest.fixture
def parent_with_child() -> Iterator[subprocess.Popen[bytes]]:
    code = "import subprocess, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while len(measure.tree_rss(parent.pid)) < 2:
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    yield parent
    for pid in measure.tree_rss(parent.pid):
        os.kill(pid, 9)
    parent.wait()


def test_a_child_with_its_own_address_space_is_counted(
    parent_with_child: subprocess.Popen[bytes],
) -> None:
    tree = measure.tree_rss(parent_with_child.pid)
    assert parent_with_child.pid in tree and len(tree) == 2
    assert [p.name for pid, p in tree.items() if pid != parent_with_child.pid] == ["sleep"]
    for process in tree.values():
        assert 0 < process.anon < process.rss


def test_a_child_in_its_parents_address_space_is_left_out(
    parent_with_child: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child between vfork and exec, which the sampler cannot be made to catch on demand.
    monkeypatch.setattr(measure, "_same_address_space", lambda pid, other: True)
    tree = measure.tree_rss(parent_with_child.pid)
    assert list(tree) == [parent_with_child.pid]


def test_the_recorder_counts_each_call_and_page_with_the_table_or_bucket_it_names() -> None:
    with mock_aws(), measure.recording() as recorder:
        session = boto3.session.Session(region_name="us-east-1")
        db, s3 = session.client("dynamodb"), session.client("s3")
        db.create_table(
            TableName="things",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(3):
            db.put_item(TableName="things", Item={"id": {"S": f"t{n}"}})
        s3.create_bucket(Bucket="folders")
        recorder.reset()
        pages = db.get_paginator("scan").paginate(TableName="things", Limit=2)
        assert sum(len(page["Items"]) for page in pages) == 3
        db.batch_get_item(RequestItems={"things": {"Keys": [{"id": {"S": "t0"}}]}})
        s3.list_object_versions(Bucket="folders", Prefix="u1/")
    assert [(call.name, call.target) for call in recorder.calls] == [
        ("dynamodb:Scan", "things"),
        ("dynamodb:Scan", "things"),
        ("dynamodb:BatchGetItem", "things"),
        ("s3:ListObjectVersions", "folders"),
    ]

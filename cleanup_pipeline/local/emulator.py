"""AWS emulated by a moto server on 127.0.0.1, for the quick start and end-to-end tests, and
the check that demo data goes nowhere else.

moto is imported only where a server is started: seeding an emulator that runs elsewhere on
this machine needs no moto here.
"""

import functools
import inspect
import ipaddress
import logging
import os
import textwrap
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from cleanup_pipeline.aws.clients import AwsClients

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "APP_URL": "https://app.increaser.local",
    "EMAIL_DOMAIN": "increaser.local",
    "PUBLIC_BUCKET_NAME": "increaser-public",
    "HOLDS_TABLE_NAME": "holds",
    "REQUESTS_TABLE_NAME": "requests",
}


# A transaction too: moto backs up the whole table before it and puts the backup back when the
# transaction is cancelled, which would undo another thread's write made in between.
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_write_lock = threading.RLock()


def make_conditional_writes_atomic() -> None:
    """DynamoDB applies a conditional write atomically; moto checks the condition and writes in
    separate Python steps, so two requests served on two threads can both pass one condition.
    Serialising moto's item writes restores DynamoDB's behaviour (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_atomic", False):
            continue

        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _write_lock:
                return __original(self, *args, **kwargs)

        atomic._atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


# The one comprehension of moto's `list_object_versions` that deep-copies every version of every
# key in the bucket, before the loop below it skips the keys outside the prefix.
_ALL_VERSIONS = "for key, version_key in bucket.keys.iterlists()"
# Keys outside the prefix never reach the answer. The key marker's own key stays: moto's loop
# starts a page where it finds the marker, so it must see the marker's versions to step over them.
_BY_PREFIX = " if key.startswith(prefix) or key == key_marker"


def list_versions_by_prefix() -> None:
    """S3 finds a prefix's versions through its key index; moto copies the whole bucket's versions
    for each listing, so listing one folder costs as much as the bucket holds. Copying only the
    keys under the prefix returns the same answer, at the cost of the folder (idempotent)."""
    from moto.s3 import models as s3_models

    current = s3_models.S3Backend.list_object_versions
    if getattr(current, "_by_prefix", False):
        return
    source = textwrap.dedent(inspect.getsource(current))
    if source.count(_ALL_VERSIONS) != 1:
        raise RuntimeError(
            "moto's S3Backend.list_object_versions no longer holds the comprehension the "
            "emulator filters by prefix: check the pinned moto version"
        )
    patched_source = source.replace(_ALL_VERSIONS, _ALL_VERSIONS + _BY_PREFIX)
    namespace: dict[str, Any] = {}
    # Compiled among moto's own module names, which the method's body and annotations use.
    code = compile(patched_source, "<moto list_object_versions, by prefix>", "exec")
    exec(code, vars(s3_models), namespace)
    patched = functools.update_wrapper(namespace[current.__name__], current)
    patched._by_prefix = True  # type: ignore[attr-defined]
    s3_models.S3Backend.list_object_versions = patched


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start a moto server on 127.0.0.1 (any free port by default); yields its endpoint URL and
    stops it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    make_conditional_writes_atomic()
    list_versions_by_prefix()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound_port = server.get_host_and_port()
        yield f"http://{host}:{bound_port}"
    finally:
        server.stop()


def local_environment(endpoint: str) -> dict[str, str]:
    """Environment for the job against the emulator; values already set in the shell win."""
    env = {**LOCAL_ENV, "AWS_ENDPOINT_URL": endpoint}
    return {
        key: os.environ.get(key, value) if key != "AWS_ENDPOINT_URL" else value
        for key, value in env.items()
    }


# Characters that no emulator's address needs and that URL parsers read differently.
_AMBIGUOUS = set("\\@") | {chr(code) for code in range(33)} | {chr(127)}


def connects_to_loopback(url: str) -> bool:
    """Whether a client given the endpoint `url` connects to this machine: plain
    `http(s)://host[:port][/]` whose host is `localhost` or a loopback address (127.0.0.0/8,
    ::1). Parsed, not compared as text: `http://127.0.0.1@192.0.2.2` connects to 192.0.2.2."""
    if _AMBIGUOUS & set(url):
        return False
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # a malformed port raises
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or parts.path not in {"", "/"} or not host:
        return False
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoints_off_this_machine(clients: AwsClients, env: Mapping[str, str]) -> list[str]:
    """Each endpoint variable, and each client's resolved endpoint, that does not connect to
    this machine (empty when all do). The clients' own endpoints also catch what the
    variables do not show: an AWS profile's `endpoint_url`, or
    `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`."""
    found: list[str] = []
    for client in (clients.dynamodb, clients.s3, clients.sesv2):
        service = client.meta.service_model.service_id.replace(" ", "_").upper()
        for name in ("AWS_ENDPOINT_URL", f"AWS_ENDPOINT_URL_{service}"):
            value = env.get(name, "")
            if value and not connects_to_loopback(value) and f"{name}={value!r}" not in found:
                found.append(f"{name}={value!r}")
        url = client.meta.endpoint_url
        if not connects_to_loopback(url):
            found.append(f"the {service.lower()} client's endpoint {url!r}")
    return found


def refuse_off_this_machine(clients: AwsClients, env: Mapping[str, str], refusal: str) -> str:
    """The one-line error for a command that only writes to an emulator on this machine, naming
    every endpoint that is not on it; empty when all are."""
    elsewhere = endpoints_off_this_machine(clients, env)
    if not elsewhere:
        return ""
    return (
        f"error: {refusal} on this machine (127.0.0.0/8, ::1 or localhost): "
        f"{', '.join(elsewhere)} is not one"
    )

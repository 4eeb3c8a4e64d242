"""AWS emulated by a moto server on 127.0.0.1, for the quick start and end-to-end tests."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "APP_URL": "https://app.increaser.local",
    "EMAIL_DOMAIN": "increaser.local",
    "PUBLIC_BUCKET_NAME": "increaser-public",
}


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start a moto server on 127.0.0.1 (any free port by default); yields its endpoint URL and
    stops it on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
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

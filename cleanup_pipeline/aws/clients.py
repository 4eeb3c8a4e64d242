"""boto3 clients with the retry policy every AWS call of the job uses, shared per process.

Endpoints are not configured here on purpose: boto3 reads `AWS_ENDPOINT_URL` and
`AWS_ENDPOINT_URL_<SERVICE>` itself, so the same code talks to AWS or to a local emulator.
"""

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from cleanup_pipeline.core.settings import Settings

# Adaptive mode adds client-side rate limiting on throttling on top of standard retries.
# Read timeout: DynamoDB answers a Scan page (at most 1 MB) in well under a second and S3 and
# SES calls faster; a read that stays silent for a minute is a dead connection, retried by the
# policy above. 60 s also covers the local emulator, which walks the whole table for every page
# and takes up to 45 s per page at 100,000 users with 8 parallel segments.
RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=32,
)

# At DEBUG these two log whole request and response bodies: every address the job reads or
# writes. They stay at INFO whatever level the root logger is set to.
WIRE_LOGGERS = ("botocore.endpoint", "botocore.parsers")

# Everything in the environment that changes what a client talks to, as whom, or how.
CLIENT_ENVIRONMENT = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SESV2",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)


@dataclass(frozen=True)
class AwsClients:
    dynamodb: Any
    s3: Any
    sesv2: Any


def make_clients(settings: Settings, session: boto3.Session | None = None) -> AwsClients:
    """New clients (and, without `session`, a new session to read credentials)."""
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    session = session or boto3.Session()
    return AwsClients(
        dynamodb=session.client("dynamodb", region_name=settings.aws_region, config=RETRY_CONFIG),
        s3=session.client("s3", region_name=settings.bucket_region, config=RETRY_CONFIG),
        sesv2=session.client("sesv2", region_name=settings.ses_region, config=RETRY_CONFIG),
    )


_SHARED: dict[tuple[Any, ...], AwsClients] = {}
_LOCK = threading.Lock()


def _key(settings: Settings) -> tuple[Any, ...]:
    # Credentials enter the key only as a digest, so the cache holds no second copy of them.
    environment = hashlib.sha256(
        repr([(name, os.environ.get(name)) for name in CLIENT_ENVIRONMENT]).encode()
    ).hexdigest()
    regions = (settings.aws_region, settings.bucket_region, settings.ses_region)
    # A forked worker builds its own: connection pools must not be shared across processes.
    return (os.getpid(), regions, environment, id(RETRY_CONFIG))


def shared_clients(settings: Settings) -> AwsClients:
    """Clients shared by every step of the process that has the same configuration: building
    a set costs 0.2-0.45 s (service models, endpoint rules, credentials), nine times a run
    otherwise. boto3 clients are thread-safe; only their creation is serialised."""
    key = _key(settings)
    with _LOCK:
        clients = _SHARED.get(key)
        if clients is None:
            clients = _SHARED[key] = make_clients(settings)
        return clients


def clear_shared_clients() -> None:
    """Forget every shared client (tests that change the environment between runs)."""
    with _LOCK:
        _SHARED.clear()

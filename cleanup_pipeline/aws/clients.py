"""boto3 clients with the retry policy every AWS call of the job uses.

Endpoints are not configured here on purpose: boto3 reads `AWS_ENDPOINT_URL` and
`AWS_ENDPOINT_URL_<SERVICE>` itself, so the same code talks to AWS or to a local emulator.
"""

import logging
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from cleanup_pipeline.aws.settings import Settings

# Adaptive mode adds client-side rate limiting on throttling on top of standard retries.
RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=32,
)

# At DEBUG these two log whole request and response bodies: every address the job reads or
# writes. They stay at INFO whatever level the root logger is set to.
WIRE_LOGGERS = ("botocore.endpoint", "botocore.parsers")


@dataclass(frozen=True)
class AwsClients:
    dynamodb: Any
    s3: Any
    sesv2: Any


def make_clients(settings: Settings, session: boto3.Session | None = None) -> AwsClients:
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    session = session or boto3.Session()
    return AwsClients(
        dynamodb=session.client("dynamodb", region_name=settings.aws_region, config=RETRY_CONFIG),
        s3=session.client("s3", region_name=settings.bucket_region, config=RETRY_CONFIG),
        sesv2=session.client("sesv2", region_name=settings.ses_region, config=RETRY_CONFIG),
    )

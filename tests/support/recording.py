"""AwsEnvironments that record every AWS call the job makes, and can make some fail."""

from collections.abc import Callable
from typing import Any, ClassVar

from dagster_aws.s3 import S3Resource

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.orchestration.resources import AwsEnvironment
from tests.support.iam import Call

CALLS: list[tuple[str, dict[str, Any]]] = []
# Called before each request with (operation name, params); may raise to simulate a fault.
FAULTS: list[Callable[[str, dict[str, Any]], None]] = []
# The same calls with their service and region, recorded by a hook of their own.
SERVICE_CALLS: list[Call] = []

READ_ONLY = {
    "Scan",
    "GetItem",
    "BatchGetItem",
    "ListObjectsV2",
    "ListObjectVersions",
    "GetBucketVersioning",
    "GetObject",
    "GetAccount",
    "Query",
    "ListBuckets",
    "ListTables",
    "DescribeTable",
}


def _record(params: dict[str, Any], model: Any, **_: Any) -> None:
    CALLS.append((model.name, params))
    for fault in FAULTS:
        fault(model.name, params)


def _record_with_service(client: Any) -> Callable[..., None]:
    service, region = client.meta.service_model.service_name, client.meta.region_name

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        SERVICE_CALLS.append(Call(service, region, model.name, params))

    return record


def _hook(client: Any, with_service: bool, unique: bool) -> None:
    """Put a recorder on every call of `client`; clients shared across steps are hooked once
    (`unique`)."""
    recorder, unique_id = _record, "tests-recording"
    if with_service:
        recorder, unique_id = _record_with_service(client), "tests-security-calls"
    client.meta.events.register(
        "provide-client-params.*.*", recorder, unique_id=unique_id if unique else None
    )


class RecordingAwsEnvironment(AwsEnvironment):
    """The job's clients, each call recorded in `CALLS` and passed to the `FAULTS`."""

    _recorders: ClassVar[tuple[bool, ...]] = (False,)  # `with_service` of each recorder

    def clients(self) -> AwsClients:
        clients = super().clients()
        for client in (clients.dynamodb, clients.s3, clients.sesv2):
            for with_service in self._recorders:
                _hook(client, with_service=with_service, unique=True)
        return clients


class RecordingS3Resource(S3Resource):
    """The reports' S3 resource, its calls recorded with the job's other calls."""

    _recorders: ClassVar[tuple[bool, ...]] = (False,)

    def get_client(self) -> Any:
        client = super().get_client()
        for with_service in self._recorders:
            _hook(client, with_service=with_service, unique=False)
        return client


class ServiceRecordingAwsEnvironment(RecordingAwsEnvironment):
    """Records, besides the operation and its params, the service and region of each call in
    `SERVICE_CALLS`."""

    _recorders: ClassVar[tuple[bool, ...]] = (False, True)


class ServiceRecordingS3Resource(RecordingS3Resource):
    """The reports' S3 resource, recorded like the job's own clients."""

    _recorders: ClassVar[tuple[bool, ...]] = (False, True)


def writes() -> list[str]:
    return [name for name, _ in CALLS if name not in READ_ONLY]


def reset() -> None:
    """No call recorded and no fault installed."""
    CALLS.clear()
    FAULTS.clear()
    SERVICE_CALLS.clear()

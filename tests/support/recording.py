"""AwsEnvironments that record every AWS call the job makes, and can make some fail."""

from collections.abc import Callable
from typing import Any

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
    "GetAccount",
    "Query",
    "ListBuckets",
}


def _record(model: Any, params: dict[str, Any], **_: Any) -> None:
    CALLS.append((model.name, params))
    for fault in FAULTS:
        fault(model.name, params)


class RecordingAwsEnvironment(AwsEnvironment):
    def clients(self) -> AwsClients:
        clients = super().clients()
        for client in (clients.dynamodb, clients.s3, clients.sesv2):
            # Clients are shared across steps: hook each once.
            client.meta.events.register(
                "provide-client-params.*.*", _params_hook(client), unique_id="tests-recording"
            )
        return clients


class RecordingS3Resource(S3Resource):
    """The reports' S3 resource, its calls recorded with the job's other calls."""

    def get_client(self) -> Any:
        client = super().get_client()
        client.meta.events.register("provide-client-params.*.*", _params_hook(client))
        return client


def _params_hook(client: Any) -> Callable[..., None]:
    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        _record(model, params)

    return hook


def writes() -> list[str]:
    return [name for name, _ in CALLS if name not in READ_ONLY]


def reset() -> None:
    """No call recorded and no fault installed."""
    CALLS.clear()
    FAULTS.clear()
    SERVICE_CALLS.clear()


class ServiceRecordingAwsEnvironment(RecordingAwsEnvironment):
    """Records, besides the operation and its params, the service and region of each call."""

    def clients(self) -> AwsClients:
        clients = super().clients()
        for client in (clients.dynamodb, clients.s3, clients.sesv2):
            client.meta.events.register(
                "provide-client-params.*.*", _recorder(client), unique_id="tests-security-calls"
            )
        return clients


class ServiceRecordingS3Resource(RecordingS3Resource):
    """The reports' S3 resource, recorded like the job's own clients."""

    def get_client(self) -> Any:
        client = super().get_client()
        client.meta.events.register("provide-client-params.*.*", _recorder(client))
        return client


def _recorder(client: Any) -> Callable[..., None]:
    service, region = client.meta.service_model.service_name, client.meta.region_name

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        SERVICE_CALLS.append(Call(service, region, model.name, params))

    return record

"""An AwsEnvironment that records every AWS call the job makes, and can make some fail."""

from collections.abc import Callable
from typing import Any

from dagster_aws.s3 import S3Resource

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.orchestration.resources import AwsEnvironment

CALLS: list[tuple[str, dict[str, Any]]] = []
# Called before each request with (operation name, params); may raise to simulate a fault.
FAULTS: list[Callable[[str, dict[str, Any]], None]] = []

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

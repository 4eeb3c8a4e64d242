"""Running the real job in process while recording every AWS call with its service and region."""

from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd
from botocore.exceptions import ClientError

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.definitions import defs
from cleanup_pipeline.orchestration.job import JOB_NAME, run_config_for
from cleanup_pipeline.orchestration.resources import CleanupPolicy, RunOptions
from tests.e2e import recording
from tests.e2e.world import AS_OF_ISO
from tests.security.iam import Call

CALLS: list[Call] = []


class ServiceRecordingAwsEnvironment(recording.RecordingAwsEnvironment):
    """Records, besides the operation and its params, the service and region of each call."""

    def clients(self) -> AwsClients:
        clients = super().clients()
        for client in (clients.dynamodb, clients.s3, clients.sesv2):
            client.meta.events.register(
                "provide-client-params.*.*", _recorder(client), unique_id="tests-security-calls"
            )
        return clients


class ServiceRecordingS3Resource(recording.RecordingS3Resource):
    """The reports' S3 resource, recorded like the job's own clients."""

    def get_client(self) -> Any:
        client = super().get_client()
        client.meta.events.register("provide-client-params.*.*", _recorder(client))
        return client


def _recorder(client: Any) -> Callable[..., None]:
    service, region = client.meta.service_model.service_name, client.meta.region_name

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        CALLS.append(Call(service, region, model.name, params))

    return record


def run_job(
    instance: dg.DagsterInstance | None = None,
    policy: CleanupPolicy | None = None,
    **options: Any,
) -> dg.ExecuteInProcessResult:
    """One run of `inactive_accounts_cleanup` at the seeded world's `as_of`."""
    return defs.resolve_job_def(JOB_NAME).execute_in_process(
        run_config=run_config_for(AS_OF_ISO, **options),
        resources={
            "aws": ServiceRecordingAwsEnvironment(),
            "cleanup_policy": policy or CleanupPolicy(send_rate_per_second=500),
            "run_options": RunOptions(),
            "reports_s3": ServiceRecordingS3Resource(),
        },
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def manage_hold(**config: str) -> dg.ExecuteInProcessResult:
    """One run of the `manage_hold` job, its AWS calls recorded like the cleanup job's."""
    return defs.resolve_job_def("manage_hold").execute_in_process(
        run_config={"ops": {"change_hold": {"config": config}}},
        resources={"aws": ServiceRecordingAwsEnvironment()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def ses_refuses(address: str) -> Callable[[str, dict[str, Any]], None]:
    """A fault: SES rejects the message to `address`, naming it, as SES does."""

    def fault(operation: str, params: dict[str, Any]) -> None:
        if operation == "SendEmail" and address in params["Destination"]["ToAddresses"]:
            raise ClientError(
                {
                    "Error": {
                        "Code": "MessageRejected",
                        "Message": "Email address is not verified. The following identities "
                        f"failed the check in region US-EAST-1: {address}",
                    }
                },
                "SendEmail",
            )

    return fault


def report_of(result: dg.ExecuteInProcessResult, asset: str = "cleanup_report") -> pd.DataFrame:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    assert events, f"{asset} was not materialized"
    return pd.read_parquet(events[-1].materialization.metadata["path"].value)

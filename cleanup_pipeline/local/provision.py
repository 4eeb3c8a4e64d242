"""Create the tables, versioned bucket and SES identity the job expects (local emulator and
tests)."""

from typing import Any

from botocore.exceptions import ClientError

from cleanup_pipeline.aws.clients import AwsClients
from cleanup_pipeline.core.settings import Settings


def _create_table(client: Any, name: str) -> None:
    existing = client.list_tables()["TableNames"]
    if name in existing:
        return
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def provision(clients: AwsClients, settings: Settings) -> None:
    for table in (
        settings.users_table,
        settings.features_table,
        settings.scoreboards_table,
        settings.emails_table,
        *([settings.holds_table] if settings.holds_table else []),
        *([settings.requests_table] if settings.requests_table else []),
    ):
        _create_table(clients.dynamodb, table)
    bucket = settings.public_bucket_name
    if bucket not in {b["Name"] for b in clients.s3.list_buckets().get("Buckets", [])}:
        region = settings.bucket_region or "us-east-1"
        extra = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        clients.s3.create_bucket(Bucket=bucket, **extra)
    # Deleted files stay restorable as versions for RESTORE_WINDOW_DAYS.
    clients.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    try:  # the emulator cannot list identities, so create and accept "already exists"
        clients.sesv2.create_email_identity(EmailIdentity=settings.email_domain)
    except ClientError as error:
        if error.response["Error"]["Code"] != "AlreadyExistsException":
            raise

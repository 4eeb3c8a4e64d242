"""The S3 resource of the reports: dagster-aws's own, building its client only when asked."""

from typing import Self

from dagster_aws.s3 import S3Resource


class ReportsS3Resource(S3Resource):
    """dagster-aws's `S3Resource` (same config, same `get_client()`), for reports stored on S3
    (`CLEANUP_REPORTS_DIR=s3://...`).

    `S3Resource` puts a new client on the context of every step that names it, used or not:
    each time a new boto3 session that loads S3's service model again (about 12 MiB of Python
    objects; the run process grew 26 MiB for the first). The report steps call `get_client()`
    themselves, and only for reports on S3, so here the context holds the resource itself.
    """

    def get_object_to_set_on_execution_context(self) -> Self:
        return self

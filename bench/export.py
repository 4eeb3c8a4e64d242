"""What an access export of a user with a large folder costs, on in-process moto: the time to
write the zip, and the peak of the Python memory it allocates (tracemalloc, in a second export,
since tracing slows the first), against the folder's total size."""

import os
import tempfile
import time
import tracemalloc
from typing import Any
from unittest.mock import patch

from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from cleanup_pipeline.actions.export import export_user
from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.data_map import builtin_map
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local import emulator
from cleanup_pipeline.local.provision import provision

USER = "bench-export-user"
FIGURES = (
    ("objects", "objects in the user's folder", ""),
    ("folder_mib", "their total size", "MiB"),
    ("export_s", "export to a local zip, seconds", "s"),
    ("zip_mib", "the zip's size", "MiB"),
    ("peak_traced_mib", "peak Python memory of the export (tracemalloc)", "MiB"),
)


def measure(objects: int, object_bytes: int) -> dict[str, Any]:
    """Seed one user with `objects` objects of `object_bytes` each (straight into moto's S3
    backend, which the client would take minutes for), then export them twice."""
    found: dict[str, Any] = {"objects": objects}
    with tempfile.TemporaryDirectory() as tmp, mock_aws():
        env = {**emulator.LOCAL_ENV, "CLEANUP_REPORTS_DIR": f"{tmp}/reports"}
        with patch.dict(os.environ, env):
            settings = load_settings()
            clients = make_clients(settings)
            provision(clients, settings)
            clients.dynamodb.put_item(
                TableName=settings.users_table,
                Item={"id": {"S": USER}, "email": {"S": "someone@example.com"}},
            )
            backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            for n in range(objects):
                body = n.to_bytes(4, "big") * (object_bytes // 4)
                backend.put_object(settings.public_bucket_name, f"{USER}/f/{n:06d}.bin", body)
            found["folder_mib"] = round(objects * (object_bytes // 4 * 4) / 2**20, 1)
            data_map = builtin_map(settings)
            started = time.perf_counter()
            done = export_user(clients, settings, data_map, USER, f"{tmp}/out", 0)
            found["export_s"] = round(time.perf_counter() - started, 2)
            found["zip_mib"] = round(os.path.getsize(done.location) / 2**20, 1)
            os.remove(done.location)
            tracemalloc.start()
            try:
                export_user(clients, settings, data_map, USER, f"{tmp}/out", 1)
                found["peak_traced_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
            finally:
                tracemalloc.stop()
    return found

"""What one user's folder listing costs on moto as the bucket grows: the cascade lists each
deleted user's folder with every version (`ListObjectVersions`, SPEC §9) where it used to list
only current objects (`ListObjectsV2`). On S3 both are one indexed request per 1,000 keys of the
prefix; moto 5 answers `ListObjectVersions` by deep-copying every version in the bucket, so on
the emulator its time grows with the whole bucket, not with the user's folder.

    python -m bench.listing_bench [--sizes 100,400,1600] [--repeats 5]
"""

import argparse
import json
import os
import time
from typing import Any

from moto import mock_aws

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.emulator import LOCAL_ENV
from cleanup_pipeline.local.provision import provision


def _best_ms(call: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def measure(sizes: list[int], repeats: int) -> dict[str, Any]:
    """For each bucket size (objects, two per user folder), the best time of listing one folder
    of two objects each way."""
    os.environ.update({k: v for k, v in LOCAL_ENV.items() if k not in os.environ})
    rows = []
    with mock_aws():
        settings = load_settings()
        clients = make_clients(settings)
        provision(clients, settings)
        s3, bucket, stored = clients.s3, settings.public_bucket_name, 0
        folder = {"Bucket": bucket, "Prefix": "u000000/"}
        for size in sizes:
            for n in range(stored, size):
                s3.put_object(Bucket=bucket, Key=f"u{n // 2:06d}/f{n % 2}.txt", Body=b"x")
            stored = size
            versions = _best_ms(lambda: s3.list_object_versions(**folder), repeats)
            current = _best_ms(lambda: s3.list_objects_v2(**folder), repeats)
            rows.append(
                {
                    "objects": size,
                    "versions_ms": versions,
                    "current_ms": current,
                    "ratio": versions / current,
                }
            )
            print(
                f"bucket of {size:>6,} objects: ListObjectVersions {versions:8.1f} ms, "
                f"ListObjectsV2 {current:6.1f} ms (x{versions / current:.1f})",
                flush=True,
            )
    return {"benchmark": "listing", "repeats": repeats, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,400,1600")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure([int(s) for s in args.sizes.split(",")], args.repeats)))


if __name__ == "__main__":
    main()

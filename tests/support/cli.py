"""Running the console script against a moto server on 127.0.0.1."""

import json
import os
import subprocess
import sys


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cleanup_pipeline.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def finish_cli(process: subprocess.Popen) -> tuple[int, dict, str]:
    """(exit status, the JSON object of the last stdout line, all output)."""
    stdout, stderr = process.communicate(timeout=600)
    last = stdout.strip().splitlines()[-1] if stdout.strip() else "{}"
    return process.returncode, json.loads(last), stdout + stderr


def cli(*args: str) -> tuple[int, dict, str]:
    return finish_cli(start_cli(*args))


def multiprocess_run(as_of: str, batch_size: int) -> tuple[int, dict, str]:
    """`cleanup-pipeline run` at `as_of` on the multiprocess executor, two steps at a time."""
    return cli(
        "run",
        "--as-of",
        as_of,
        "--multiprocess",
        "--max-concurrent",
        "2",
        "--deletion-batch-size",
        str(batch_size),
    )

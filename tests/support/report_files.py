"""Report files for tests: a small report frame, and files aged on disk."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

NOW = datetime.now(UTC)


def sample_report() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array(["u1", "u2", "u3"], dtype="string[pyarrow]"),
            "decision": pd.Categorical(["delete", "notify", "invalid"]),
            "email_masked": pd.array(["j***@example.com", None, "a***@b.c"], dtype="string"),
            "lastVisitAt": pd.array([1_700_000_000_000, None, 5], dtype="Int64"),
            "outcome": pd.array(["deleted", "warned", None], dtype="string[pyarrow]"),
        }
    )


def touch(path: Path, days_old: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    stamp = (NOW - timedelta(days=days_old)).timestamp()
    os.utime(path, (stamp, stamp))

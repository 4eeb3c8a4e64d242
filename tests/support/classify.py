"""Wire-format items decoded and classified by the real code, as the job does."""

from typing import Any

import pandas as pd

from cleanup_pipeline.core.decisions import Policy, classify
from cleanup_pipeline.core.wire import decode_items
from tests.support.items import AS_OF, NOW


def decide_all(
    items: list[dict[str, Any]],
    as_of: int = AS_OF,
    now: int = NOW,
    policy: Policy | None = None,
) -> pd.DataFrame:
    return classify(decode_items(items), as_of, now, policy or Policy())


def decide(item: dict[str, Any], **kwargs: Any) -> tuple[str, str]:
    """(decision, reason) of a single item."""
    row = decide_all([item], **kwargs).iloc[0]
    return str(row["decision"]), str(row["reason"])

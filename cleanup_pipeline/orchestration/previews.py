"""Small tables shown in the UI: masked emails only, a bounded number of rows."""

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 20
PREVIEW_COLUMNS = ["id", "email_masked", "reason", "days_inactive"]


def candidates_preview(rows: pd.DataFrame) -> dg.MetadataValue:
    head = rows[PREVIEW_COLUMNS].head(PREVIEW_ROWS).astype(object).where(lambda f: f.notna(), "")
    return dg.MetadataValue.md(head.to_markdown(index=False) if len(head) else "(none)")

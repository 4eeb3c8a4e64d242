"""Small tables shown in the UI: masked emails only, a bounded number of rows."""

import dagster as dg
import numpy as np
import pandas as pd

from cleanup_pipeline.core.masking import scrub_emails
from cleanup_pipeline.core.vocabulary import Decision, Outcome

PREVIEW_ROWS = 20
PREVIEW_COLUMNS = ["id", "email_masked", "reason", "days_inactive"]


def candidates_preview(rows: pd.DataFrame) -> dg.MetadataValue:
    head = rows[PREVIEW_COLUMNS].head(PREVIEW_ROWS).astype(object).where(lambda f: f.notna(), "")
    return dg.MetadataValue.md(head.to_markdown(index=False) if len(head) else "(none)")


REPORT_PREVIEW_ROWS = 50
REPORT_PREVIEW_COLUMNS = {
    "id": "string",
    "decision": "string",
    "reason": "string",
    "days_inactive": "int",
    "email_masked": "string",
    "outcome": "string",
    "step": "string",
    "error": "string",
}
# Rows an operator must look at first: failures, then what was or would be done.
_OUTCOME_ORDER = [
    Outcome.FAILED,
    Outcome.KEPT_PARTIAL,
    Outcome.DELETED,
    Outcome.DELETED_BY_OTHER_RUN,
    Outcome.WARNED,
    Outcome.KEPT,
    Outcome.SKIPPED,
    Outcome.DRY_RUN,
    Outcome.NOT_ATTEMPTED,
    Outcome.NOT_APPROVED,
]
_DECISION_ORDER = [Decision.DELETE, Decision.NOTIFY, Decision.WAITING, Decision.INVALID]


def _cell(value: object) -> str | int | None:
    if value is None or pd.isna(value):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    # Masked already; scrubbed again so that no address can reach the UI through free text.
    return scrub_emails(str(value))


def report_preview(report: pd.DataFrame) -> dg.MetadataValue:
    """The first rows of the report, failures first, as a table; masked emails only."""
    outcome_rank = pd.Index(_OUTCOME_ORDER).get_indexer(report["outcome"])
    decision_rank = pd.Index(_DECISION_ORDER).get_indexer(report["decision"])
    outcome_rank[outcome_rank < 0] = len(_OUTCOME_ORDER)  # no_action and the unforeseen last
    order = np.lexsort((decision_rank, outcome_rank))
    head = report.iloc[order[:REPORT_PREVIEW_ROWS]][list(REPORT_PREVIEW_COLUMNS)]
    records = [
        dg.TableRecord({column: _cell(value) for column, value in row.items()})
        for row in head.astype(object).to_dict("records")
    ]
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, kind) for name, kind in REPORT_PREVIEW_COLUMNS.items()]
    )
    return dg.MetadataValue.table(records=records, schema=schema)

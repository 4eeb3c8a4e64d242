"""The per-run candidate report (SPEC §7): who was invalid, waiting, warned or deleted, and why."""

import numpy as np
import pandas as pd

from cleanup_pipeline.core.approval import NOT_APPROVED
from cleanup_pipeline.core.vocabulary import ACTIONS, Decision, Outcome

REPORTED_DECISIONS = (Decision.INVALID, Decision.WAITING, Decision.NOTIFY, Decision.DELETE)
# Every outcome a report row can carry: the action steps' own, then the report's defaults.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)


def build_report(
    decisions: pd.DataFrame, outcomes: pd.DataFrame | None = None, dry_run: bool = False
) -> pd.DataFrame:
    """One row per reported user: decision, reason, timestamps, masked email, and the outcome of
    its action (`not_attempted` until an action step reports one, `not_approved` for a candidate
    an approval left out). Held users are reported too, with why they are held
    (`hold_reason`), so a review shows who a hold protected."""
    reported = decisions["decision"].isin(REPORTED_DECISIONS).to_numpy(dtype=bool)
    if "hold_reason" in decisions.columns:
        reported = reported | decisions["hold_reason"].notna().to_numpy(dtype=bool)
    rows = decisions[reported].reset_index(drop=True)
    acted = rows["decision"].isin(ACTIONS).to_numpy()
    left_out = (
        rows.pop(NOT_APPROVED).to_numpy(dtype=bool)
        if NOT_APPROVED in rows.columns
        else np.zeros(len(rows), dtype=bool)
    )
    pending = Outcome.DRY_RUN if dry_run else Outcome.NOT_ATTEMPTED
    outcome = np.select(
        [left_out, acted], [str(Outcome.NOT_APPROVED), str(pending)], str(Outcome.NO_ACTION)
    )
    report = rows.assign(
        decision=rows["decision"].astype("string[pyarrow]"),
        reason=rows["reason"].astype("string[pyarrow]"),
        outcome=pd.array(outcome, dtype="string[pyarrow]"),
        step=pd.array([None] * len(rows), dtype="string[pyarrow]"),
        error=pd.array([None] * len(rows), dtype="string[pyarrow]"),
    )
    if outcomes is None or outcomes.empty:
        return report
    found = outcomes.drop_duplicates("id", keep="last").set_index("id")
    position = pd.Index(found.index).get_indexer(report["id"])
    hit = position >= 0
    for column in ("outcome", "step", "error"):
        values = report[column].copy()
        values[hit] = found[column].to_numpy()[position[hit]]
        report[column] = values
    return report


def count_outcomes(outcomes: pd.DataFrame, outcome: Outcome) -> int:
    return int((outcomes["outcome"] == outcome).sum()) if not outcomes.empty else 0

"""The per-run candidate report (SPEC §7): who was invalid, waiting, warned or deleted, and why."""

import numpy as np
import pandas as pd

from cleanup_pipeline.core.decisions import DELETE, INVALID, NOTIFY, WAITING

REPORTED_DECISIONS = (INVALID, WAITING, NOTIFY, DELETE)
NOT_ATTEMPTED, NO_ACTION, DRY_RUN = "not_attempted", "no_action", "dry_run"
# A candidate the approved run's report did not list as that kind of candidate (SPEC §10).
NOT_APPROVED = "not_approved"
# Every outcome a report row can carry: the action steps' own, then the report's defaults.
OUTCOMES: tuple[str, ...] = (
    "warned",
    "deleted",
    "skipped",
    "failed",
    DRY_RUN,
    NOT_ATTEMPTED,
    NOT_APPROVED,
    NO_ACTION,
)


def build_report(
    decisions: pd.DataFrame, outcomes: pd.DataFrame | None = None, dry_run: bool = False
) -> pd.DataFrame:
    """One row per reported user: decision, reason, timestamps, masked email, and the outcome of
    its action (`not_attempted` until an action step reports one, `not_approved` for a candidate
    an approval left out). Held users are reported too,
    with why they are held (`hold_reason`), so a review shows who a hold protected."""
    reported = decisions["decision"].isin(REPORTED_DECISIONS)
    if "hold_reason" in decisions.columns:
        reported |= decisions["hold_reason"].notna()
    rows = decisions[reported.to_numpy()].reset_index(drop=True)
    acted = rows["decision"].isin([NOTIFY, DELETE]).to_numpy()
    left_out = (
        rows.pop("not_approved").to_numpy(dtype=bool)
        if "not_approved" in rows.columns
        else np.zeros(len(rows), dtype=bool)
    )
    pending = DRY_RUN if dry_run else NOT_ATTEMPTED
    outcome = np.select([left_out, acted], [NOT_APPROVED, pending], default=NO_ACTION)
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


def count_outcomes(outcomes: pd.DataFrame, outcome: str) -> int:
    return int((outcomes["outcome"] == outcome).sum()) if not outcomes.empty else 0

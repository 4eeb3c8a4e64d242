"""The per-run report: who was invalid, waiting, warned or deleted, and why; its counts; and the
short Markdown summary written next to each report file.

Dagster plots a numeric metadata key across runs; a key missing from one run leaves a gap. So
every known outcome and reason is always counted, zero included, and a reason's key drops the
policy's day counts ("inactive over 60 days" and "inactive over 45 days" plot as one series).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cleanup_pipeline.core.decisions import (
    ACTIVE_SUBSCRIPTION,
    EMAIL,
    EMAIL_MISSING,
    ERASURE_REQUEST,
    HOLD,
    ID,
    ID_DUPLICATED,
    ID_HAS_SLASH,
    ID_MISSING,
    INACTIVE_OVER,
    LAST_VISIT_IN_FUTURE,
    LAST_VISIT_IN_SECONDS,
    LAST_VISIT_MISSING,
    LIFETIME,
    NOT_A_NUMBER,
    NOT_A_STRING,
    NUMBER_ATTRIBUTES,
    OUT_OF_RANGE,
    REQUEST,
    SUBSCRIBER,
    SUBSCRIPTION_ENDS_AT,
    SUBSCRIPTION_NOT_A_MAP,
    WARNED_OVER,
    WITHIN_GRACE,
    Policy,
    about,
)
from cleanup_pipeline.core.guards import (
    NOT_APPROVED,
    REVIEWABLE_GUARDS,
    GuardResult,
    how_to_approve,
)
from cleanup_pipeline.core.requests import REQUESTS_OVERDUE
from cleanup_pipeline.core.vocabulary import ACTIONS, Decision, Outcome

REPORTED_DECISIONS = (
    Decision.INVALID,
    Decision.WAITING,
    Decision.NOTIFY,
    Decision.DELETE,
    Decision.ERASE,
)
# What the report says of each open erase request: its status after the run, and why.
REQUEST_STATUS, REQUEST_REASON = "request_status", "request_reason"
_REQUEST_COLUMNS = (REQUEST, REQUEST_STATUS, REQUEST_REASON)


def _kept_open(rows: pd.DataFrame, dry_run: bool) -> list[str | None]:
    """Why each reported row's erase request stays open before any action: a paying customer's
    until the billing ends, a held or invalid user's with the hold or the invalid value, an
    erase candidate's until its cascade is verified; None without a request."""
    why: list[str | None] = []
    hold = (
        rows["hold_reason"] if "hold_reason" in rows.columns else pd.Series(pd.NA, index=rows.index)
    )
    for request, decision, reason, held, left_out in zip(
        rows[REQUEST], rows["decision"], rows["reason"], hold, rows[NOT_APPROVED], strict=True
    ):
        if pd.isna(request):
            why.append(None)
        elif left_out:
            why.append("not approved: not an erase candidate in the approved run's report")
        elif decision == Decision.ERASE:
            why.append("dry run: nothing erased" if dry_run else "not attempted")
        elif reason in (LIFETIME, SUBSCRIBER):
            why.append(ACTIVE_SUBSCRIPTION)
        elif reason == HOLD:
            why.append(f"held: {held}")
        else:
            why.append(f"{decision}: {reason}")
    return why


# Every outcome a report row can carry: the action steps' own, then the report's defaults.
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)


STORE_PREFIX = "store_"


def store_key(name: str) -> str:
    """The report column, metadata key and JSON count of what a run removed from a store."""
    return f"{STORE_PREFIX}{name}"


def store_columns(frame: pd.DataFrame, stores: Sequence[str]) -> pd.DataFrame:
    """`frame` with a whole-number `store_<name>` column for each store: a column it lacks, or a
    blank cell (a row no deletion counted), is 0."""
    columns = {
        key: frame[key].fillna(0).astype("int64")
        if key in frame.columns
        else pd.Series(0, index=frame.index, dtype="int64")
        for key in map(store_key, stores)
    }
    return frame.assign(**columns)


def store_totals(frame: pd.DataFrame) -> dict[str, int]:
    """The sum of each `store_<name>` column of `frame`, in column order."""
    return {
        str(key): int(frame[key].fillna(0).sum())
        for key in frame.columns
        if str(key).startswith(STORE_PREFIX)
    }


def build_report(
    decisions: pd.DataFrame,
    outcomes: pd.DataFrame | None = None,
    dry_run: bool = False,
    stores: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per reported user: decision, reason, timestamps, masked email, and the outcome of
    its action (`not_attempted` until an action step reports one, `not_approved` for a candidate
    an approval left out). Held users are reported too, with why they are held
    (`hold_reason`), so a review shows who a hold protected. Last, for each store of the data
    map (`stores`, by name), `store_<name>`: what the deletion removed from it, as the user's
    `deleted` ledger event counts it; 0 for everyone this run did not delete."""
    reported = decisions["decision"].isin(REPORTED_DECISIONS).to_numpy(dtype=bool)
    if "hold_reason" in decisions.columns:
        reported = reported | decisions["hold_reason"].notna().to_numpy(dtype=bool)
    if REQUEST not in decisions.columns:
        decisions = decisions.assign(**{REQUEST: pd.array([None] * len(decisions), dtype="string")})
    reported = reported | decisions[REQUEST].notna().to_numpy(dtype=bool)
    rows = decisions[reported].reset_index(drop=True)
    if NOT_APPROVED not in rows.columns:
        rows = rows.assign(**{NOT_APPROVED: False})
    acted = rows["decision"].isin(ACTIONS).to_numpy()
    kept_open = _kept_open(rows, dry_run)
    left_out = rows.pop(NOT_APPROVED).to_numpy(dtype=bool)
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
        **{REQUEST: rows[REQUEST].astype("string[pyarrow]")},
        **{
            REQUEST_STATUS: pd.array(
                [None if why is None else "open" for why in kept_open], dtype="string[pyarrow]"
            ),
            REQUEST_REASON: pd.array(kept_open, dtype="string[pyarrow]"),
        },
    )
    report = store_columns(report, stores)
    if outcomes is None or outcomes.empty:
        return report
    # Warnings carry no store counts: blank after the concat with the deletions, so 0.
    found = store_columns(outcomes, stores).drop_duplicates("id", keep="last").set_index("id")
    position = pd.Index(found.index).get_indexer(report["id"])
    hit = position >= 0
    columns = ["outcome", "step", "error", *map(store_key, stores)]
    if REQUEST_STATUS in found.columns:
        columns += [REQUEST_STATUS, REQUEST_REASON]
    for column in columns:
        values = report[column].copy()
        values[hit] = found[column].to_numpy()[position[hit]]
        report[column] = values
    if REQUEST in found.columns:
        # Requests of users the snapshot does not hold (no such user): reported as the erase
        # step found them.
        unmatched = found[found[REQUEST].notna() & ~found.index.isin(report["id"])]
        if len(unmatched):
            extra = unmatched.reset_index()[["id", *columns, REQUEST]]
            counted = set(map(store_key, stores))
            extra = extra.astype({c: "string[pyarrow]" for c in extra.columns if c not in counted})
            extra["decision"] = str(Decision.ERASE)
            extra["reason"] = [ERASURE_REQUEST.format(id=r) for r in extra[REQUEST]]
            report = pd.concat([report, extra], ignore_index=True)
    return report


def count_outcomes(outcomes: pd.DataFrame, outcome: Outcome) -> int:
    return int((outcomes["outcome"] == outcome).sum()) if not outcomes.empty else 0


_NUMBER_FIELDS = (*NUMBER_ATTRIBUTES, SUBSCRIPTION_ENDS_AT)
_DEFAULT = Policy()

# The reasons a reported row can carry: the decoder's and the rules' for invalid
# users, then the rules' for waiting, notify and delete at the default policy.
KNOWN_REASONS: tuple[str, ...] = (
    ID_MISSING,
    about(ID, NOT_A_STRING),
    ID_HAS_SLASH,
    ID_DUPLICATED,
    EMAIL_MISSING,
    about(EMAIL, NOT_A_STRING),
    LAST_VISIT_MISSING,
    LAST_VISIT_IN_SECONDS,
    LAST_VISIT_IN_FUTURE,
    *(about(field, NOT_A_NUMBER) for field in _NUMBER_FIELDS),
    *(about(field, OUT_OF_RANGE) for field in _NUMBER_FIELDS),
    SUBSCRIPTION_NOT_A_MAP,
    WITHIN_GRACE.format(days=_DEFAULT.grace_days),
    INACTIVE_OVER.format(days=_DEFAULT.notify_after_days),
    WARNED_OVER.format(days=_DEFAULT.grace_days),
    ERASURE_REQUEST.format(id="").strip(),
)


def outcome_key(outcome: str) -> str:
    return f"outcome/{outcome}"


def reason_key(reason: str) -> str:
    """`lastVisitAt: missing` -> `reason/lastVisitAt_missing`; numbers become `n`; every
    `erasure request <id>` counts under `reason/erasure_request`."""
    if reason.startswith(ERASURE_REQUEST.format(id="")):
        reason = ERASURE_REQUEST.format(id="").strip()
    text = re.sub(r"\d+", "n", reason.replace("'/'", "slash"))
    return "reason/" + re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")


KNOWN_REASON_KEYS: tuple[str, ...] = tuple(dict.fromkeys(reason_key(r) for r in KNOWN_REASONS))


def outcome_totals(report: pd.DataFrame) -> dict[str, int]:
    """Rows per outcome: every known outcome (zero when absent), then any other seen."""
    seen = report["outcome"].astype("string").value_counts()
    totals = {str(outcome): int(seen.get(outcome, 0)) for outcome in OUTCOMES}
    totals.update({str(o): int(n) for o, n in seen.items() if o not in totals})
    return totals


def outcome_counts(report: pd.DataFrame) -> dict[str, int]:
    """`outcome_totals` under `outcome/<name>` metadata keys."""
    return {outcome_key(outcome): n for outcome, n in outcome_totals(report).items()}


def reason_counts(report: pd.DataFrame) -> dict[str, int]:
    """`reason/<slug>` for every known reason (zero when absent), then any other seen."""
    seen = report["reason"].astype("string").value_counts()
    counts = dict.fromkeys(KNOWN_REASON_KEYS, 0)
    for reason, n in seen.items():
        key = reason_key(str(reason))
        counts[key] = counts.get(key, 0) + int(n)
    return counts


CANDIDATE, FINAL = "candidate", "final"
_STAGES = {
    CANDIDATE: "candidate: written before any action",
    FINAL: "final: completed with every action's outcome",
}
_BAR_WIDTH = 30


@dataclass(frozen=True)
class ReportFacts:
    """What a summary states about one report file."""

    run_id: str
    as_of: str
    dry_run: bool
    allow_mass_action: bool
    stage: str
    file_name: str
    report: pd.DataFrame
    histogram: dict[str, int]
    guards: list[GuardResult] = field(default_factory=list)
    approved_run_id: str = ""
    # The deadline counts of the requests from the people themselves; empty: requests are off.
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def blocked(self) -> list[GuardResult]:
        return [g for g in self.guards if not g.passed]


def count_table(header: str, counts: dict[str, int]) -> str:
    rows = "\n".join(f"| {name} | {n:,} |" for name, n in counts.items())
    return f"| {header} | users |\n|---|---:|\n{rows}"


def histogram_table(histogram: dict[str, int]) -> str:
    """Days inactive as a table with a text bar per bucket, scaled to the largest one."""
    largest = max(histogram.values(), default=0) or 1
    rows = "\n".join(
        f"| {label} | {n:,} | {'█' * round(_BAR_WIDTH * n / largest)} |"
        for label, n in histogram.items()
    )
    return f"| days inactive | users | |\n|---|---:|---|\n{rows}"


def actions_line(facts: ReportFacts) -> str:
    """What happened to the actions of the run, as far as this report knows."""
    if facts.blocked:
        names = ", ".join(f"`{g.name}`" for g in facts.blocked)
        line = (
            f"**Blocked** by {names}: no action was attempted, nobody was warned or deleted "
            "by this run."
        )
        if all(g.name in REVIEWABLE_GUARDS for g in facts.blocked):
            line += f" {how_to_approve(facts.run_id)}."
        return line
    if facts.dry_run:
        return "Dry run: decided and reported only; nothing was written to AWS."
    if facts.stage == CANDIDATE:
        return (
            "Guards passed; actions had not started when this was written (outcomes "
            "`not_attempted`). The final report replaces this file when they finish."
        )
    return "Guards passed; every action of the run has its outcome below."


def _held_section(report: pd.DataFrame) -> list[str]:
    """Held users by the hold's reason, when the run held anyone."""
    if "hold_reason" not in report.columns or not report["hold_reason"].notna().any():
        return []
    held = report["hold_reason"].dropna().astype("string").value_counts()
    return [
        "## Held",
        "",
        count_table("hold reason", {str(r): int(n) for r, n in held.items()}),
        "",
    ]


def _requests_section(requests: dict[str, int]) -> list[str]:
    """The open requests by deadline, when the run read a requests table."""
    if not requests:
        return []
    rows = "\n".join(f"| {name} | {n:,} |" for name, n in requests.items())
    overdue = requests.get(REQUESTS_OVERDUE, 0)
    return [
        "## Requests from the people themselves",
        "",
        f"| deadline | requests |\n|---|---:|\n{rows}",
        "",
        *(
            [
                f"**{overdue:,} past their due date**: see `erasure_requests` for each request "
                "and its due date.",
                "",
            ]
            if overdue
            else []
        ),
    ]


def render_summary(facts: ReportFacts) -> str:
    reasons = facts.report["reason"].astype("string").value_counts()
    users = sum(facts.histogram.values())
    lines = [
        f"# Cleanup report {facts.as_of[:10]}, run {facts.run_id}",
        "",
        "| | |",
        "|---|---|",
        f"| as_of | {facts.as_of} |",
        f"| dry run | {'yes' if facts.dry_run else 'no'} |",
        f"| allow_mass_action | {'yes' if facts.allow_mass_action else 'no'} |",
        f"| approved run | {facts.approved_run_id or '(none)'} |",
        f"| stage | {_STAGES[facts.stage]} |",
        f"| report | `{facts.file_name}`, {len(facts.report):,} rows |",
        "",
        actions_line(facts),
        "",
        *(f"- `{g.name}`: {g.reason}" for g in facts.blocked),
        *([""] if facts.blocked else []),
        "## Outcomes",
        "",
        count_table("outcome", outcome_totals(facts.report)),
        "",
        "## Reasons",
        "",
        count_table("reason", {str(r): int(n) for r, n in reasons.items()})
        if len(reasons)
        else "(no reported user)",
        "",
        *_held_section(facts.report),
        *_requests_section(facts.requests),
        f"## Days inactive (all {users:,} users)",
        "",
        histogram_table(facts.histogram),
        "",
    ]
    return "\n".join(lines)

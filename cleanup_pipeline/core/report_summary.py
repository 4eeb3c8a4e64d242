"""The short human-readable summary written next to each report file, as Markdown."""

from dataclasses import dataclass, field

import pandas as pd

from cleanup_pipeline.core.approval import REVIEWABLE_GUARDS, how_to_approve
from cleanup_pipeline.core.guards import GuardResult
from cleanup_pipeline.core.report_counts import outcome_totals

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
        f"## Days inactive (all {users:,} users)",
        "",
        histogram_table(facts.histogram),
        "",
    ]
    return "\n".join(lines)

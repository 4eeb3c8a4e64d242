"""Approval of a reviewed run (SPEC §10): act only on what an operator reviewed.

A run launched with `approved_run_id` acts on the users who are candidates now **and** were the
same kind of candidate (notify or delete) in the approved run's candidate report; every other
candidate is `not_approved` and left for a later run. The size and history guards do not block
the approved set, since it was reviewed; the data-quality guards still apply. Pure: the run's
lookup on the Dagster instance and the report's reading happen in the orchestration layer.

The approval is bound to what was reviewed: when a run writes its report, its run tags get one
SHA-256 digest per kind of candidate (`candidate_digests`), and an approval recomputes them from
the report file it reads; a report changed since (two ids swapped between notify and delete)
does not match and is refused.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import count_decisions
from cleanup_pipeline.core.guards import ACTION_GUARDS, GuardResult
from cleanup_pipeline.core.policy import DAY_MS
from cleanup_pipeline.core.vocabulary import ACTIONS, Outcome

APPROVABLE = ACTIONS
# The decisions frame's column, and the count key, of candidates the approval leaves out.
NOT_APPROVED = str(Outcome.NOT_APPROVED)
APPROVED_RUN_TAG = "cleanup_pipeline/approved_run_id"
# One run tag per kind of candidate: `cleanup_pipeline/candidates_sha256/delete`, ...
DIGEST_TAG_PREFIX = "cleanup_pipeline/candidates_sha256/"
# The guards an operator's review answers; the data-quality guards are not among them.
REVIEWABLE_GUARDS = frozenset(
    name for guards in ACTION_GUARDS for name in (guards.size_name, guards.history_name)
)


class ApprovalError(ValueError):
    """The approved run cannot be used; raised before any side effect, naming the problem."""


@dataclass(frozen=True)
class ReviewedRun:
    """What the Dagster instance says of the run an operator approved."""

    run_id: str
    job_name: str
    created_ms: int
    tags: Mapping[str, str] = field(default_factory=dict)


def approval_run_id(value: str) -> str:
    """The run id an operator gave to approve, without surrounding blanks. A blank one is
    refused rather than read as no approval: an unset shell variable must not turn an approval
    into a run without review."""
    run_id = value.strip()
    if not run_id:
        raise ApprovalError(
            "should name the reviewed run to approve, not be blank (leave it out to run "
            "without approval)"
        )
    return run_id


def refuse_unless_approvable(
    run_id: str,
    found: ReviewedRun | None,
    job_name: str,
    now: int,
    max_age_days: float,
    current_run_id: str | None = None,
) -> None:
    """Raise `ApprovalError` unless `found` is an earlier run of `job_name` created at most
    `max_age_days` before `now`."""
    name = f"approved_run_id {run_id!r}"
    if found is None:
        raise ApprovalError(f"{name}: no such run in this Dagster instance")
    if found.job_name != job_name:
        raise ApprovalError(f"{name} is a run of {found.job_name!r}, not of {job_name!r}")
    if run_id == current_run_id:
        raise ApprovalError(f"{name} is this run itself: approve an earlier, reviewed run")
    age_days = (now - found.created_ms) / DAY_MS
    if age_days > max_age_days:
        raise ApprovalError(
            f"{name} was created {format_ms(found.created_ms)}, {age_days:.1f} days ago: older "
            f"than approval_max_age_days ({max_age_days:g}); review a newer run"
        )


def report_candidates(report: pd.DataFrame) -> dict[str, str]:
    """{user id: notify|delete} of a candidate report."""
    rows = report[report["decision"].astype("string").isin(APPROVABLE)]
    return dict(zip(rows["id"].astype(str), rows["decision"].astype(str), strict=True))


def approved_candidates(run_id: str, report: pd.DataFrame) -> dict[str, str]:
    """{user id: notify|delete} of the approved run's candidate report."""
    if not {"id", "decision"} <= set(report.columns):
        raise ApprovalError(f"approved_run_id {run_id!r}: its report has no id and decision")
    return report_candidates(report)


def candidates_digest(user_ids: Iterable[str]) -> str:
    """SHA-256, in hex, of the ids sorted by code point and written as a compact JSON array in
    UTF-8 (`["u1","u2"]`; no candidate: `[]`). JSON rather than one id per line: an id may hold
    any character, a newline too, and two different sets must never give the same bytes."""
    canonical = json.dumps(sorted(user_ids), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def digest_tag(kind: str) -> str:
    return f"{DIGEST_TAG_PREFIX}{kind}"


def candidate_digests(candidates: Mapping[str, str]) -> dict[str, str]:
    """{run tag: digest} of each kind of candidate in {user id: notify|delete}."""
    return {
        digest_tag(kind): candidates_digest(u for u, k in candidates.items() if k == kind)
        for kind in APPROVABLE
    }


def refuse_unless_reviewed(
    run_id: str, tags: Mapping[str, str], approved: Mapping[str, str]
) -> None:
    """Raise `ApprovalError` unless the candidates read from the approved run's report file are
    those the run recorded in its tags when it wrote that report."""
    name = f"approved_run_id {run_id!r}"
    for tag, digest in candidate_digests(approved).items():
        recorded = tags.get(tag)
        if not recorded:
            raise ApprovalError(
                f"{name} has no digest of its candidates (run tag {tag}): it predates candidate "
                "digests or stopped before finishing its report, so what was reviewed cannot be "
                "checked; review a newer run"
            )
        if recorded != digest:
            kind = tag.removeprefix(DIGEST_TAG_PREFIX)
            raise ApprovalError(
                f"{name}: its candidate report does not match the digest of its {kind} "
                f"candidates recorded when the run wrote it (run tag {tag}): the report was "
                "changed after the run; nothing approved, review a new run"
            )


def mark_not_approved(decisions: pd.DataFrame, approved: Mapping[str, str] | None) -> pd.DataFrame:
    """The decisions with a `not_approved` column: True for a notify or delete candidate who was
    not that kind of candidate in the approved run (all False without an approval)."""
    if approved is None:
        return decisions.assign(**{NOT_APPROVED: False})
    candidate = decisions["decision"].isin(APPROVABLE).to_numpy()
    before = decisions["id"].map(dict(approved)).astype("string")
    same = (before == decisions["decision"].astype("string")).fillna(False).to_numpy(dtype=bool)
    return decisions.assign(**{NOT_APPROVED: candidate & ~same})


def not_approved_counts(decisions: pd.DataFrame) -> dict[str, int]:
    """Candidates left out by the approval: in total and per kind."""
    if NOT_APPROVED not in decisions.columns:
        return {NOT_APPROVED: 0, **{f"{NOT_APPROVED}_{kind}": 0 for kind in APPROVABLE}}
    left_out = decisions.loc[decisions[NOT_APPROVED].to_numpy(dtype=bool), "decision"]
    per_kind = {f"{NOT_APPROVED}_{kind}": int((left_out == kind).sum()) for kind in APPROVABLE}
    return {NOT_APPROVED: len(left_out), **per_kind}


def acted_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Decision counts with the notify and delete candidates reduced to those the run may act
    on: what the size and history guards count."""
    acted = dict(counts)
    for kind in APPROVABLE:
        acted[kind] = counts[kind] - counts.get(f"{NOT_APPROVED}_{kind}", 0)
    return acted


def guard_counts(decisions: pd.DataFrame) -> dict[str, int]:
    return acted_counts({**count_decisions(decisions), **not_approved_counts(decisions)})


def lift_for_review(results: list[GuardResult], approved_run_id: str | None) -> list[GuardResult]:
    """The size and history guards do not block a set an operator reviewed and approved."""
    if not approved_run_id:
        return results
    note = f"; not blocking: only users reviewed in run {approved_run_id} (approved_run_id)"
    return [
        replace(result, passed=True, reason=result.reason + note)
        if result.name in REVIEWABLE_GUARDS
        else result
        for result in results
    ]


def how_to_approve(run_id: str) -> str:
    """What a blocked run tells its operator."""
    return (
        f"After reviewing this run's candidate report, approve exactly that set with "
        f"`cleanup-pipeline run --approve {run_id}` or, in the launchpad, "
        f"run_options approved_run_id: {run_id}"
    )

"""The guards against mass action: pure functions of the decision counts, evaluated once per run
on the run's own `GuardInputs`, and the approval of a reviewed run.

The blocking checks, the candidate report and the actions' re-check all read the same inputs,
produced once per run, so they cannot disagree or read another run's counts.

A run launched with `approved_run_id` acts on the users who are candidates now **and** were the
same kind of candidate (notify or delete) in the approved run's candidate report; every other
candidate is `not_approved` and left for a later run. The size and history guards do not block
the approved set, since it was reviewed; the data-quality guards still apply. The run's lookup
on the Dagster instance and the report's reading happen in the orchestration layer.

The approval is bound to what was reviewed: when a run writes its report, its run tags get one
SHA-256 digest per kind of candidate (`candidate_digests`), and an approval recomputes them from
the report file it reads; a report changed since (two ids swapped between notify and delete)
does not match and is refused.
"""

import hashlib
import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial

import pandas as pd

from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import DAY_MS, USERS, count_decisions
from cleanup_pipeline.core.vocabulary import ACTIONS, Decision, Outcome


@dataclass(frozen=True)
class GuardLimits:
    max_invalid_fraction: float = 0.01
    min_guarded_count: int = 25
    max_delete_fraction: float = 0.05
    max_notify_fraction: float = 0.20
    max_erasures_per_run: int = 100


def _share(fraction: float, total: int) -> float:
    """`fraction` of `total`, computed on the decimal the operator wrote (0.29 * 100 is 29,
    not 28.999999999999996), so a count equal to the limit passes."""
    if not math.isfinite(fraction):
        return fraction * total
    return float(Fraction(str(fraction)) * total)


def _number(value: float) -> str:
    """`1234.0` -> `1,234`; fractions keep two decimals."""
    if not math.isfinite(value):
        return "none"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


INVALID_SHARE = "invalid_share_within_limit"


@dataclass(frozen=True)
class GuardResult:
    name: str
    passed: bool
    count: int
    limit: float
    reason: str


def invalid_share(counts: dict[str, int], limits: GuardLimits) -> GuardResult:
    users, invalid = counts[USERS], counts[Decision.INVALID]
    limit = _share(limits.max_invalid_fraction, users)
    passed = invalid <= limit
    share = invalid / users if users else 0.0
    return GuardResult(
        INVALID_SHARE,
        passed,
        invalid,
        limit,
        f"{invalid:,} of {users:,} users are invalid ({share:.2%}); the limit is "
        f"{_number(limit)} (max_invalid_fraction {_percent(limits.max_invalid_fraction)} of users)"
        + ("" if passed else ": the snapshot looks wrong"),
    )


def _against(
    name: str, label: str, count: int, limit: float, allow_mass_action: bool, basis: str
) -> GuardResult:
    """`count` against `limit`, unless allow_mass_action lifts the guard; `basis` says where
    the limit comes from."""
    if allow_mass_action:
        return GuardResult(
            name, True, count, limit, f"{count:,} {label}: lifted by allow_mass_action"
        )
    passed = count <= limit
    verdict = "within" if passed else "over"
    return GuardResult(
        name,
        passed,
        count,
        limit,
        f"{count:,} {label} is {verdict} the limit of {_number(limit)} ({basis})",
    )


@dataclass(frozen=True)
class ActionGuards:
    """The size and history guards of one action's candidates."""

    decision: Decision
    noun: str
    label: str
    setting: str

    @property
    def size_name(self) -> str:
        return f"{self.noun}_within_limit"

    @property
    def history_name(self) -> str:
        return f"{self.noun}_match_history"


# Deletions first: the order in which guards are checked and reported.
ACTION_GUARDS: tuple[ActionGuards, ...] = (
    ActionGuards(Decision.DELETE, "deletions", "delete candidates", "max_delete_fraction"),
    ActionGuards(Decision.NOTIFY, "warnings", "notify candidates", "max_notify_fraction"),
)
_GUARDS_OF = {guards.decision: guards for guards in ACTION_GUARDS}


def within_limit(
    decision: Decision,
    counts: dict[str, int],
    limits: GuardLimits,
    allow_mass_action: bool = False,
) -> GuardResult:
    """The `decision` candidates are at most the larger of `min_guarded_count` and the action's
    fraction of the valid users."""
    guards = _GUARDS_OF[decision]
    count, valid = counts[decision], counts[USERS] - counts[Decision.INVALID]
    fraction = getattr(limits, guards.setting)
    limit = max(limits.min_guarded_count, _share(fraction, valid))
    return _against(
        guards.size_name,
        guards.label,
        count,
        limit,
        allow_mass_action,
        f"the larger of min_guarded_count {limits.min_guarded_count:,} and {guards.setting} "
        f"{_percent(fraction)} of {valid:,} valid users",
    )


deletions_within_limit = partial(within_limit, Decision.DELETE)
warnings_within_limit = partial(within_limit, Decision.NOTIFY)


ERASURES_WITHIN_LIMIT = "erasures_within_limit"


def erasures_within_limit(
    counts: Mapping[str, int], limits: GuardLimits, allow_mass_action: bool = False
) -> GuardResult:
    """The users erased at their own request are at most `max_erasures_per_run`: a flood of
    requests (a bad import, a script gone wrong) waits for an operator's review. Their own
    bound, apart from the inactivity guards, which they do not count toward."""
    return _against(
        ERASURES_WITHIN_LIMIT,
        "erase candidates",
        counts.get(Decision.ERASE, 0),
        limits.max_erasures_per_run,
        allow_mass_action,
        f"max_erasures_per_run {limits.max_erasures_per_run:,}",
    )


@dataclass(frozen=True)
class HistoryLimits:
    factor: float = 5.0
    window: int = 7
    min_runs: int = 3


def matches_history(
    name: str,
    label: str,
    count: int,
    past_counts: list[int],
    limits: GuardLimits,
    history: HistoryLimits,
    allow_mass_action: bool = False,
) -> GuardResult:
    """`count` is at most `factor` x the median of the last `window` successful runs' counts,
    checked once `min_runs` earlier runs exist and the count exceeds the guard floor.
    `past_counts` is ordered oldest to newest."""
    recent = past_counts[-history.window :]
    if len(recent) < history.min_runs:
        return GuardResult(
            name,
            True,
            count,
            float("inf"),
            f"{count:,} {label}: {len(recent)} earlier successful runs, history applies from "
            f"{history.min_runs} (history_min_runs)",
        )
    median = statistics.median(recent)
    limit = history.factor * median
    if count <= limits.min_guarded_count and not allow_mass_action:
        return GuardResult(
            name,
            True,
            count,
            limit,
            f"{count:,} {label} is within the floor of {limits.min_guarded_count:,} "
            "(min_guarded_count)",
        )
    return _against(
        name,
        label,
        count,
        limit,
        allow_mass_action,
        f"history_factor {history.factor:g} x the median ({median:g}) of the last "
        f"{len(recent)} successful runs",
    )


@dataclass(frozen=True)
class GuardInputs:
    """What every guard of a run reads: the run's decision counts (`count_decisions`) and those
    of earlier successful runs, oldest first."""

    counts: dict[str, int]
    history: list[dict[str, int]]


def evaluate(
    inputs: GuardInputs, limits: GuardLimits, history: HistoryLimits, allow_mass_action: bool
) -> list[GuardResult]:
    """Every guard of the run: the invalid share, each action's size and history guards,
    deletions first, then the bound on erasures."""
    results = [invalid_share(inputs.counts, limits)]
    for guards in ACTION_GUARDS:
        decision = guards.decision
        results.append(within_limit(decision, inputs.counts, limits, allow_mass_action))
        results.append(
            matches_history(
                guards.history_name,
                guards.label,
                inputs.counts[decision],
                [past[decision] for past in inputs.history],
                limits,
                history,
                allow_mass_action,
            )
        )
    results.append(erasures_within_limit(inputs.counts, limits, allow_mass_action))
    return results


GUARD_NAMES: tuple[str, ...] = (
    INVALID_SHARE,
    *(name for guards in ACTION_GUARDS for name in (guards.size_name, guards.history_name)),
    ERASURES_WITHIN_LIMIT,
)


APPROVABLE = ACTIONS
# The decisions frame's column, and the count key, of candidates the approval leaves out.
NOT_APPROVED = str(Outcome.NOT_APPROVED)
APPROVED_RUN_TAG = "cleanup_pipeline/approved_run_id"
# One run tag per kind of candidate: `cleanup_pipeline/candidates_sha256/delete`, ...
DIGEST_TAG_PREFIX = "cleanup_pipeline/candidates_sha256/"
# The guards an operator's review answers; the data-quality guards are not among them.
REVIEWABLE_GUARDS = frozenset(
    {
        *(name for guards in ACTION_GUARDS for name in (guards.size_name, guards.history_name)),
        ERASURES_WITHIN_LIMIT,
    }
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
    """Decision counts with the notify, delete and erase candidates reduced to those the run
    may act on: what the guards count."""
    acted = dict(counts)
    for kind in APPROVABLE:
        acted[kind] = counts.get(kind, 0) - counts.get(f"{NOT_APPROVED}_{kind}", 0)
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

"""Guards against mass action (SPEC §5): pure functions of the decision counts.

guard_evaluation.py applies every one of them to a run at once.
"""

import math
import statistics
from dataclasses import dataclass
from fractions import Fraction
from functools import partial

from cleanup_pipeline.core.decisions import USERS
from cleanup_pipeline.core.vocabulary import Decision


@dataclass(frozen=True)
class GuardLimits:
    max_invalid_fraction: float = 0.01
    min_guarded_count: int = 25
    max_delete_fraction: float = 0.05
    max_notify_fraction: float = 0.20


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

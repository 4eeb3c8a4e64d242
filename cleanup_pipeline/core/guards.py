"""Guards against mass action (SPEC §5): pure functions of the decision counts."""

import math
import statistics
from dataclasses import dataclass
from fractions import Fraction


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


@dataclass(frozen=True)
class GuardResult:
    name: str
    passed: bool
    count: int
    limit: float
    reason: str


def invalid_share(counts: dict[str, int], limits: GuardLimits) -> GuardResult:
    users, invalid = counts["users"], counts["invalid"]
    limit = _share(limits.max_invalid_fraction, users)
    passed = invalid <= limit
    share = invalid / users if users else 0.0
    return GuardResult(
        "invalid_share_within_limit",
        passed,
        invalid,
        limit,
        f"{invalid:,} of {users:,} users are invalid ({share:.2%}); the limit is "
        f"{_number(limit)} (max_invalid_fraction {_percent(limits.max_invalid_fraction)} of users)"
        + ("" if passed else ": the snapshot looks wrong"),
    )


def _size(
    name: str,
    label: str,
    count: int,
    valid: int,
    setting: tuple[str, float],
    limits: GuardLimits,
    allow: bool,
) -> GuardResult:
    field, fraction = setting
    limit = max(limits.min_guarded_count, _share(fraction, valid))
    if allow:
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
        f"{count:,} {label} is {verdict} the limit of {_number(limit)} (the larger of "
        f"min_guarded_count {limits.min_guarded_count:,} and {field} {_percent(fraction)} of "
        f"{valid:,} valid users)",
    )


def deletions_within_limit(
    counts: dict[str, int], limits: GuardLimits, allow_mass_action: bool = False
) -> GuardResult:
    valid = counts["users"] - counts["invalid"]
    return _size(
        "deletions_within_limit",
        "delete candidates",
        counts["delete"],
        valid,
        ("max_delete_fraction", limits.max_delete_fraction),
        limits,
        allow_mass_action,
    )


def warnings_within_limit(
    counts: dict[str, int], limits: GuardLimits, allow_mass_action: bool = False
) -> GuardResult:
    valid = counts["users"] - counts["invalid"]
    return _size(
        "warnings_within_limit",
        "notify candidates",
        counts["notify"],
        valid,
        ("max_notify_fraction", limits.max_notify_fraction),
        limits,
        allow_mass_action,
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
    if allow_mass_action:
        return GuardResult(
            name, True, count, limit, f"{count:,} {label}: lifted by allow_mass_action"
        )
    if count <= limits.min_guarded_count:
        return GuardResult(
            name,
            True,
            count,
            limit,
            f"{count:,} {label} is within the floor of {limits.min_guarded_count:,} "
            "(min_guarded_count)",
        )
    passed = count <= limit
    verdict = "within" if passed else "over"
    return GuardResult(
        name,
        passed,
        count,
        limit,
        f"{count:,} {label} is {verdict} the limit of {_number(limit)} (history_factor "
        f"{history.factor:g} x the median ({median:g}) of the last {len(recent)} successful runs)",
    )

"""Printing figures as they are measured, and collecting them for the JSON summary."""

import os
from dataclasses import dataclass, field
from typing import Any

from bench.memory import MB, MIB


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline is None or ours == 0:
        return None
    return baseline / ours


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    kind: str  # "max": value < limit; "at_most": value <= limit; "min": value >= limit
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.kind == "max":
            return self.value < self.limit
        if self.kind == "at_most":
            return self.value <= self.limit
        return self.value >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            {"max": "below", "at_most": "at_most", "min": "at_least"}[self.kind]: self.limit,
            "met": self.met,
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class Report:
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    def section(self, key: str, title: str) -> dict[str, Any]:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        shown = f" [load average {load:.2f}]" if load is not None else ""
        print(f"\n== {title}{shown}", flush=True)
        section = self.sections.setdefault(key, {})
        section["load_average_at_start"] = load
        return section

    def figure(
        self, section: dict[str, Any], key: str, label: str, value: Any, unit: str = ""
    ) -> None:
        section[key] = value
        shown = fmt(value) + (f" {unit}" if unit else "")
        print(f"  {label:<58} {shown}", flush=True)

    def memory(self, section: dict[str, Any], key: str, label: str, size: int | None) -> None:
        """A size in MB (10^6 bytes, the unit of the targets) and in MiB (2^20 bytes, what most
        tools print), as `<key>_mb` and `<key>_mib`."""
        section[f"{key}_mb"] = None if size is None else size / MB
        section[f"{key}_mib"] = None if size is None else size / MIB
        shown = "n/a" if size is None else f"{size / MB:,.1f} MB = {size / MIB:,.1f} MiB"
        print(f"  {label:<58} {shown}", flush=True)

    def note(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def target(self, target: Target) -> None:
        self.targets.append(target)
        verdict = {True: "MET", False: "MISSED", None: "n/a"}[target.met]
        sign = {"max": "<", "at_most": "<=", "min": ">="}[target.kind]
        note = f" ({target.note})" if target.note else ""
        print(
            f"  target {target.name}: {fmt(target.value)} {sign} {fmt(target.limit)} "
            f"-> {verdict}{note}",
            flush=True,
        )

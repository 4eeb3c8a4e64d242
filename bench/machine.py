"""The machine a benchmark ran on: cores, CPU model, memory, Python and library versions."""

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("boto3", "moto", "pandas", "pyarrow", "numpy", "dagster")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def describe() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "load_average_at_start": load_average(),
    }


def one_line(machine: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    load = "/".join(str(x) for x in machine["load_average_at_start"])
    return (
        f"{machine['cores']} cores ({machine['cpu_model']}), {machine['memory_gib']} GiB RAM, "
        f"Python {machine['python']}, {machine['platform']}; {packages}; "
        f"load average at start {load}"
    )


def process_age_s() -> float | None:
    """Seconds since this process started (imports included), from /proc."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of stat(5); 2 fields precede this slice
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None

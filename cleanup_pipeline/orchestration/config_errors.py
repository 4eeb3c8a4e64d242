"""One short error naming every out-of-range setting, built from pydantic's own findings."""

from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "value"
    message = error["msg"].removeprefix("Value error, ").removeprefix("Input ")
    # `5` meant as 5% is the mistake that silently lifted the deletion guard.
    hint = " (a fraction: 0.05 is 5%)" if field.endswith("_fraction") else ""
    return f"{field}={error['input']!r} {message}{hint}"


def short_error(name: str, error: ValidationError) -> PydanticCustomError:
    """Every finding of `error` on one line, as the single error the launchpad and CLI show."""
    findings = "; ".join(_describe(e) for e in error.errors(include_url=False))
    context = {"name": name, "findings": findings}
    return PydanticCustomError("out_of_range", "{name} out of range: {findings}", context)

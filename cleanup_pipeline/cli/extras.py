"""What the quick start needs beyond a production install, and the one line that says how to
get it: `pip install .` leaves out the AWS emulator (moto) and `dg`, both in the `local` extra."""

import shutil
import sys
from pathlib import Path

LOCAL_EXTRA_INSTALL = "pip install 'cleanup_pipeline[local]'"


class MissingExtraError(RuntimeError):
    """A command needs a package of an extra that this environment does not have."""


def missing_emulator() -> str | None:
    """The module that keeps the local AWS emulator from importing, if any."""
    try:
        import moto.server  # noqa: F401
    except ModuleNotFoundError as error:
        return error.name or "moto"
    return None


def require_emulator(command: str) -> None:
    """Fails, naming the extra to install, when the local AWS emulator cannot be imported."""
    missing = missing_emulator()
    if missing:
        raise MissingExtraError(
            f"`cleanup-pipeline {command}` needs the local AWS emulator (no module named "
            f"{missing!r}): {LOCAL_EXTRA_INSTALL}"
        )


def dg_command(command: str = "local") -> str:
    """The `dg` console script of this environment (the one beside this Python first)."""
    beside = Path(sys.executable).with_name("dg")
    found = str(beside) if beside.exists() else shutil.which("dg")
    if not found:
        raise MissingExtraError(
            f"`cleanup-pipeline {command}` serves the UI with `dg dev` (dagster-dg-cli is not "
            f"installed): {LOCAL_EXTRA_INSTALL}"
        )
    return found

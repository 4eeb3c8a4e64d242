"""Per-user results of the side-effect steps, gathered into one frame for the report."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from cleanup_pipeline.core.masking import scrub_emails
from cleanup_pipeline.core.reports import store_key
from cleanup_pipeline.core.vocabulary import Decision, Outcome

# The outcomes an action step reports itself (core/vocabulary.py has every outcome).
WARNED, DELETED, SKIPPED, FAILED, DRY_RUN = (
    Outcome.WARNED,
    Outcome.DELETED,
    Outcome.SKIPPED,
    Outcome.FAILED,
    Outcome.DRY_RUN,
)
DELETED_BY_OTHER_RUN, KEPT, KEPT_PARTIAL = (
    Outcome.DELETED_BY_OTHER_RUN,
    Outcome.KEPT,
    Outcome.KEPT_PARTIAL,
)
OUTCOME_COLUMNS = ("id", "action", "outcome", "step", "error")

FailureHook = Callable[[str, str, BaseException], None]
"""Told of each user's failure, with (user id, "<action>.<step>", the error): the run reports it
to Sentry, a test records it."""


@dataclass
class Outcomes:
    action: Decision
    rows: list[dict[str, str | None]] = field(default_factory=list)
    # Deleted users whom the proof of deletion found gone from every store.
    verified: int = 0
    # Per deleted user, what went from each store of the data map, by store name.
    removed: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(
        self, user_id: str, outcome: Outcome, step: str | None = None, error: str | None = None
    ) -> None:
        self.rows.append(
            {
                "id": user_id,
                "action": str(self.action),
                "outcome": str(outcome),
                "step": step,
                "error": None if error is None else scrub_emails(error),
            }
        )

    def fail(
        self,
        user_id: str,
        step: str,
        error: BaseException,
        hook: FailureHook | None,
        reason: str | None = None,
    ) -> None:
        """Record the user as failed at `step`, with the error's text (or `reason`, when the
        error's type says nothing more) scrubbed of addresses, and tell the hook, which names
        the step with its action (`delete.files`, `notify.send`)."""
        self.add(user_id, FAILED, step, reason or f"{type(error).__name__}: {error}")
        if hook is not None:
            hook(user_id, f"{self.action}.{step}", error)

    def frame(self, stores: Sequence[str] = ()) -> pd.DataFrame:
        """One row per outcome; then, for each of `stores`, `store_<name>`: what the user's
        deletion removed from that store (0 for a user not deleted)."""
        frame = pd.DataFrame(self.rows, columns=list(OUTCOME_COLUMNS))
        frame = frame.astype({column: "string[pyarrow]" for column in OUTCOME_COLUMNS})
        for name in stores:
            counts = [self.removed.get(str(row["id"]), {}).get(name, 0) for row in self.rows]
            frame[store_key(name)] = pd.array(counts, dtype="int64")
        return frame

    def count(self, outcome: Outcome) -> int:
        return sum(1 for row in self.rows if row["outcome"] == outcome)


def empty_outcomes(action: Decision) -> pd.DataFrame:
    return Outcomes(action).frame()

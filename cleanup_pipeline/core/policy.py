"""The retention policy: when an inactive account is warned and when it is deleted."""

from dataclasses import dataclass, field

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Policy:
    notify_after_days: int = 60
    delete_after_days: int = 90
    exempt_user_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.notify_after_days <= 0:
            raise ValueError("notify_after_days must be positive")
        if self.delete_after_days <= self.notify_after_days:
            raise ValueError(
                f"delete_after_days ({self.delete_after_days}) must exceed "
                f"notify_after_days ({self.notify_after_days})"
            )

    @property
    def notify_after_ms(self) -> int:
        return self.notify_after_days * DAY_MS

    @property
    def grace_days(self) -> int:
        """Days between the warning and the deletion."""
        return self.delete_after_days - self.notify_after_days

    @property
    def grace_ms(self) -> int:
        return self.grace_days * DAY_MS

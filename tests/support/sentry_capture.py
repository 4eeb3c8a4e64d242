"""A Sentry transport that keeps every envelope in memory instead of sending it."""

from typing import Any

from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

DSN = "https://public@o0.ingest.sentry.invalid/1"


class CapturingTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        return [
            item.payload.json
            for envelope in self.envelopes
            for item in envelope.items
            if item.type == "event" and item.payload.json is not None
        ]

    def serialized(self) -> str:
        """Everything that would have left the process, as sent."""
        return "\n".join(e.serialize().decode("utf-8", "replace") for e in self.envelopes)

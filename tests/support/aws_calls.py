"""Recorded and refused AWS calls at the client level, for the tests that drive the job's AWS
functions directly."""

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


def client_error(code: str, operation: str, message: str = "refused by the test") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def record_params(client: Any, operation: str) -> list[dict[str, Any]]:
    """Every call's API parameters for `operation` (e.g. "DeleteObjects"), in call order."""
    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def handler(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", handler)
    return calls


class Fault:
    """Makes `operation` raise `error()` for the calls whose parameters match `predicate`,
    until removed; `calls` holds the parameters of the calls made to fail."""

    def __init__(
        self,
        client: Any,
        operation: str,
        predicate: Callable[[dict[str, Any]], bool],
        error: Callable[[], BaseException],
    ) -> None:
        self.calls: list[dict[str, Any]] = []
        self._predicate, self._error = predicate, error
        self._events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        self._event = f"before-parameter-build.{service}.{operation}"
        self._events.register(self._event, self._handler)

    def _handler(self, params: dict[str, Any], **_: Any) -> None:
        if self._predicate(params):
            self.calls.append(dict(params))
            raise self._error()

    def remove(self) -> None:
        self._events.unregister(self._event, self._handler)


def fail_when(
    client: Any,
    operation: str,
    predicate: Callable[[dict[str, Any]], bool],
    error: Callable[[], BaseException],
) -> Fault:
    return Fault(client, operation, predicate, error)


class FailureLog:
    """An `on_failure` hook that remembers what it received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, BaseException]] = []

    def __call__(self, user_id: str, step: str, error: BaseException) -> None:
        self.calls.append((user_id, step, error))


def ses_refuses(address: str) -> Callable[[str, dict[str, Any]], None]:
    """A fault for the recorded job run: SES rejects the message to `address`, naming it, as SES
    does."""

    def fault(operation: str, params: dict[str, Any]) -> None:
        if operation == "SendEmail" and address in params["Destination"]["ToAddresses"]:
            raise client_error(
                "MessageRejected",
                "SendEmail",
                "Email address is not verified. The following identities "
                f"failed the check in region US-EAST-1: {address}",
            )

    return fault

"""The emails table keeps every address so people can be reached after their account is gone."""

import time
from typing import Any

from botocore.exceptions import ClientError

# DynamoDB's limit of actions in one TransactWriteItems.
TRANSACTION_LIMIT = 100
# Cancellations for throttling or a conflicting write are retried this many times, backing off.
MAX_BUSY_RETRIES = 8
_ALREADY_THERE = "ConditionalCheckFailed"
_NOT_TRIED = "None"  # the transaction was cancelled because of another of its items
_BUSY = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


class ArchiveError(RuntimeError):
    """Addresses could not be archived; the message names reason codes, never an address."""


def archive_addresses(client: Any, table: str, addresses: list[str]) -> None:
    """Make sure `{id: address}` exists for each address, never overwriting an existing item.

    One transaction of conditional puts per 100 distinct addresses: a put whose item already
    exists fails its condition, which cancels the transaction and is reported per item, so
    only the others are written again. Where no address is stored yet, that is one call per
    100 addresses; a read beforehand would add a call and decide nothing the conditions don't.
    """
    unique = list(dict.fromkeys(addresses))  # DynamoDB refuses one item twice in a transaction
    for start in range(0, len(unique), TRANSACTION_LIMIT):
        _put_missing(client, table, unique[start : start + TRANSACTION_LIMIT])


def _put(table: str, address: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": {"id": {"S": address}},
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": "id"},
        }
    }


def _put_missing(client: Any, table: str, addresses: list[str]) -> None:
    """Write the addresses not yet stored. Each cancelled round either drops the addresses found
    already stored (at least one) or counts as one of the bounded busy retries."""
    pending = addresses
    busy_retries = 0
    while pending:
        try:
            client.transact_write_items(TransactItems=[_put(table, a) for a in pending])
            return
        except ClientError as error:
            codes = _cancellation_codes(error, len(pending))
        if set(codes) - {_ALREADY_THERE, _NOT_TRIED} - _BUSY or set(codes) == {_NOT_TRIED}:
            raise ArchiveError(f"{table}: transaction cancelled: {sorted(set(codes))}")
        pending = [a for a, code in zip(pending, codes, strict=True) if code != _ALREADY_THERE]
        if _BUSY & set(codes):
            if busy_retries == MAX_BUSY_RETRIES:
                raise ArchiveError(
                    f"{table}: {len(pending)} addresses still not archived after "
                    f"{MAX_BUSY_RETRIES} retries: {sorted(set(codes) & _BUSY)}"
                )
            time.sleep(min(0.05 * 2**busy_retries, 2.0))
            busy_retries += 1


def _cancellation_codes(error: ClientError, items: int) -> list[str]:
    """The reason code of each item of a cancelled transaction; any other error is raised."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise error
    reasons = error.response.get("CancellationReasons") or []
    if len(reasons) != items:
        raise ArchiveError(
            f"transaction cancelled with {len(reasons)} reasons for {items} items"
        ) from error
    return [str(reason.get("Code", _NOT_TRIED)) for reason in reasons]

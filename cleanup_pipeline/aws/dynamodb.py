"""DynamoDB access shared by the tables: consistent batch reads by id, and the conditions
meaning "this user item is exactly as we last read it".

Every write to a user item (warning claim, warning confirmation, final delete) carries such a
condition, so a user who came back, subscribed or got a lifetime deal since the read is never
acted on.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from cleanup_pipeline.core.decisions import (
    ENDS_AT,
    ID,
    LIFETIME_DEAL,
    NUMBER_ATTRIBUTES,
    SUBSCRIPTION,
)

# The attributes the decision rules read, besides id, email and the subscription map.
DECISION_ATTRIBUTES = (*NUMBER_ATTRIBUTES, LIFETIME_DEAL)

BATCH_GET_LIMIT = 100  # keys per BatchGetItem request, the AWS limit
MAX_ATTEMPTS = 10

Item = dict[str, Any]


def projection(attributes: Iterable[str]) -> dict[str, Any]:
    """The `ProjectionExpression` (with its `ExpressionAttributeNames`) reading only
    `attributes`; placeholders keep reserved words such as `name` readable."""
    names = {f"#p{i}": name for i, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def consistent_batch_get(
    client: Any, table: str, ids: list[str], projected: dict[str, Any]
) -> Iterator[Item]:
    """Yield the items found for `ids` (deduplicated), 100 keys per request; missing ids are
    simply absent. Raises if DynamoDB still leaves keys unprocessed after backing off."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"id": {"S": key}} for key in unique[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
                **projected,
            }
        }
        for attempt in range(MAX_ATTEMPTS):
            response = client.batch_get_item(RequestItems=request)
            yield from response["Responses"].get(table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        if request:
            left = len(request[table]["Keys"])
            raise RuntimeError(f"{table}: BatchGetItem left {left} keys unread")


def read_by_id(
    client: Any, table: str, ids: Iterable[str], attributes: Iterable[str] | None = None
) -> dict[str, Item]:
    """Consistent read of the items of `ids` (keyed by `id`), by id; only `attributes` when
    given (`id` is always read), every attribute otherwise. Missing ids are absent."""
    wanted = {} if attributes is None else projection(dict.fromkeys([ID, *attributes]))
    found = consistent_batch_get(client, table, list(ids), wanted)
    return {item[ID]["S"]: item for item in found}


@dataclass
class Condition:
    clauses: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, wire_value: dict[str, Any]) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = wire_value
        return placeholder

    def add(self, clause: str) -> "Condition":
        self.clauses.append(clause)
        return self

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ConditionExpression": " AND ".join(self.clauses)}
        if self.names:
            kwargs["ExpressionAttributeNames"] = self.names
        if self.values:
            kwargs["ExpressionAttributeValues"] = self.values
        return kwargs


def _same_value(condition: Condition, path: str, current: dict[str, Any] | None) -> None:
    if current is None:
        condition.add(f"attribute_not_exists({path})")
    elif "NULL" in current:
        condition.add(f"attribute_type({path}, {condition.value({'S': 'NULL'})})")
    else:
        condition.add(f"{path} = {condition.value(current)}")


def unchanged_since(item: dict[str, dict[str, Any]]) -> Condition:
    """Condition that holds only while the decision attributes equal those in `item`.

    Meant for items the rules classified as notify or delete: their `lifeTimeDeal` is falsy
    (a scalar) and their `subscription` is absent, NULL or a map whose `endsAt` has passed.
    """
    condition = Condition()
    condition.add(f"attribute_exists({condition.name(ID)})")
    for attribute in DECISION_ATTRIBUTES:
        _same_value(condition, condition.name(attribute), item.get(attribute))
    subscription = item.get(SUBSCRIPTION)
    path = condition.name(SUBSCRIPTION)
    if subscription is None or "NULL" in subscription:
        _same_value(condition, path, subscription)
    else:
        ends_at = subscription.get("M", {}).get(ENDS_AT)
        _same_value(condition, f"{path}.{condition.name(ENDS_AT)}", ends_at)
    return condition


def attempt_conditional(call: Callable[..., Any], **kwargs: Any) -> bool:
    """Make a conditional write; False when its condition did not hold, errors otherwise raise."""
    try:
        call(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True

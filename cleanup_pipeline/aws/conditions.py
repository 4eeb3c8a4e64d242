"""DynamoDB condition expressions meaning "this user item is exactly as we last read it".

Every write to a user item (warning claim, warning confirmation, final delete) carries one, so a
user who came back, subscribed or got a lifetime deal since the read is never acted on.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from cleanup_pipeline.core import user_attributes as attr

# The attributes the decision rules read, besides id, email and the subscription map.
DECISION_ATTRIBUTES = (*attr.NUMBER_ATTRIBUTES, attr.LIFETIME_DEAL)


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
    condition.add(f"attribute_exists({condition.name(attr.ID)})")
    for attribute in DECISION_ATTRIBUTES:
        _same_value(condition, condition.name(attribute), item.get(attribute))
    subscription = item.get(attr.SUBSCRIPTION)
    path = condition.name(attr.SUBSCRIPTION)
    if subscription is None or "NULL" in subscription:
        _same_value(condition, path, subscription)
    else:
        ends_at = subscription.get("M", {}).get(attr.ENDS_AT)
        _same_value(condition, f"{path}.{condition.name(attr.ENDS_AT)}", ends_at)
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

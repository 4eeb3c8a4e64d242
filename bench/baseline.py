"""The original design, ported as directly as possible, to measure against.

One sequential pass over every user of a full (single-segment) Scan, unmarshalled item by item
as a document client does; per user the same rules as the original handler, with JavaScript's
comparison semantics (a missing or non-numeric value compares false). A deleted user costs:
the user item deleted first and unconditionally, one listing and one batch delete of their
folder, a full Scan of the features table, a GetItem of every scoreboard, then an update per
feature and scoreboard that named them. A warning is one email, sent no sooner than 100 ms
after the previous one started, then an unconditional update of `accountDeletionEmailSentAt`.
"""

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3

from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.settings import Settings

NOTIFY_AFTER_DAYS = 60
DELETE_AFTER_DAYS = 90
SEND_DELAY_S = 0.1
ATTRIBUTES = (
    "id",
    "email",
    "accountDeletionEmailSentAt",
    "lastVisitAt",
    "lifeTimeDeal",
    "subscription",
    "freeTrialEnd",
)


def _number(value: Any) -> float:
    """JavaScript's view of a stored value in arithmetic: numbers as numbers, anything else
    NaN (every comparison with NaN is false, as in JavaScript)."""
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _is_active_subscription(subscription: Any, now: int) -> bool:
    ends_at = subscription.get("endsAt") if isinstance(subscription, dict) else None
    return ends_at is None or _number(ends_at) > now


class RateLimitedSender:
    """Calls spaced at least `delay` seconds apart, measured from the previous call's start."""

    def __init__(self, delay: float = SEND_DELAY_S) -> None:
        self.delay = delay
        self.last_called_at: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self.last_called_at is not None and now - self.last_called_at < self.delay:
            time.sleep(self.delay - (now - self.last_called_at))
        self.last_called_at = time.monotonic()


def warning_body(product: str, app_url: str) -> str:
    grace = DELETE_AFTER_DAYS - NOTIFY_AFTER_DAYS
    return (
        "<p>Dear User,</p>"
        f"<p>Your {product} account has been inactive for {NOTIFY_AFTER_DAYS} days. Accounts "
        f"inactive for more than {DELETE_AFTER_DAYS} days are deleted.</p>"
        f"<p>To keep your account, please visit the app within the next {grace} days:</p>"
        f'<p><a href="{app_url}">{app_url}</a></p>'
        f"<p>Best regards,<br>The {product} Team</p>"
    )


@dataclass
class BaselineResult:
    deleted: int = 0
    failed: int = 0
    wall_s: float = 0.0
    scan_s: float = 0.0
    delete_s: float = 0.0
    notify_s: float = 0.0
    decisions: dict[str, int] = field(default_factory=dict)


class OriginalDesign:
    def __init__(self, settings: Settings, phase: Callable[[str], None] | None = None) -> None:
        self.phase = phase or (lambda _: None)
        region = os.environ.get("AWS_REGION")
        dynamodb = boto3.resource("dynamodb", region_name=region)
        self.settings = settings
        self.users = dynamodb.Table(settings.users_table)
        self.features = dynamodb.Table(settings.features_table)
        self.scoreboards = dynamodb.Table(settings.scoreboards_table)
        self.s3 = boto3.client("s3", region_name=settings.bucket_region or region)
        self.ses = boto3.client("sesv2", region_name=settings.ses_region or region)
        self.sender = RateLimitedSender()
        self.body = warning_body(settings.product_name, settings.app_url)

    def _total_scan(self, table: Any, attributes: tuple[str, ...]) -> list[dict[str, Any]]:
        names = {f"#a{i}": a for i, a in enumerate(attributes)}
        params: dict[str, Any] = {
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = table.scan(**params)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete_user(self, user_id: str) -> None:
        self.users.delete_item(Key={"id": user_id})
        prefix = self.settings.user_prefix(user_id)
        bucket = self.settings.public_bucket_name
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        if listed.get("Contents"):
            self.s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in listed["Contents"]]}
            )
        for feature in self._total_scan(self.features, ("id", "proposedBy")):
            if feature.get("proposedBy") == user_id:
                self.features.update_item(
                    Key={"id": feature["id"]},
                    UpdateExpression="REMOVE #by",
                    ExpressionAttributeNames={"#by": "proposedBy"},
                )
        boards = [
            self.scoreboards.get_item(Key={"id": period}).get("Item")
            for period in self.settings.scoreboard_periods
        ]
        for board in boards:
            if board and any(u.get("id") == user_id for u in board.get("users", [])):
                self.scoreboards.update_item(
                    Key={"id": board["id"]},
                    UpdateExpression="SET #users = :users",
                    ExpressionAttributeNames={"#users": "users"},
                    ExpressionAttributeValues={
                        ":users": [u for u in board["users"] if u.get("id") != user_id]
                    },
                )

    def notify(self, user_id: str, email: str, now: int) -> None:
        self.sender.wait()
        self.ses.send_email(
            FromEmailAddress=self.settings.sender,
            Destination={"ToAddresses": [email]},
            Content={
                "Simple": {
                    "Subject": {
                        "Data": f"Important: Your {self.settings.product_name} Account is "
                        "Scheduled for Deletion"
                    },
                    "Body": {"Html": {"Data": self.body}},
                }
            },
        )
        self.users.update_item(
            Key={"id": user_id},
            UpdateExpression="SET #sent = :now",
            ExpressionAttributeNames={"#sent": "accountDeletionEmailSentAt"},
            ExpressionAttributeValues={":now": now},
        )

    def run(self, now: int) -> BaselineResult:
        result = BaselineResult()
        started = time.perf_counter()
        self.phase("scan")
        users = self._total_scan(self.users, ATTRIBUTES)
        result.scan_s = time.perf_counter() - started
        grace_ms = (DELETE_AFTER_DAYS - NOTIFY_AFTER_DAYS) * DAY_MS
        decisions: dict[str, int] = {}
        for user in users:
            decision = "skip"
            step_started = time.perf_counter()
            try:
                if _number(user.get("freeTrialEnd")) > now:
                    continue
                if user.get("lifeTimeDeal"):
                    continue
                subscription = user.get("subscription")
                if subscription and _is_active_subscription(subscription, now):
                    continue
                sent_at = _number(user.get("accountDeletionEmailSentAt"))
                last_visit = _number(user.get("lastVisitAt"))
                if sent_at and not math.isnan(sent_at) and last_visit < sent_at:
                    if sent_at + grace_ms < now:
                        decision = "delete"
                        self.phase(decision)
                        self.delete_user(user["id"])
                        result.deleted += 1
                elif now - last_visit > NOTIFY_AFTER_DAYS * DAY_MS:
                    decision = "notify"
                    self.phase(decision)
                    self.notify(user["id"], user.get("email", ""), now)
            except Exception:
                result.failed += 1
            finally:
                elapsed = time.perf_counter() - step_started
                if decision == "delete":
                    result.delete_s += elapsed
                elif decision == "notify":
                    result.notify_s += elapsed
                decisions[decision] = decisions.get(decision, 0) + 1
        self.phase("")
        result.wall_s = time.perf_counter() - started
        result.decisions = decisions
        return result

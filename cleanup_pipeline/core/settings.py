"""The job's configuration from the environment, checked as a whole before any side effect, and
where the values that flow between its steps are stored.

Unset, `CLEANUP_STEP_OUTPUTS_S3_URI` leaves each run's step values in a folder of the machine
that runs it, which only works while every step of a run runs on that machine. Set to
`s3://bucket/prefix`, it stores them on S3, so that steps can run on separate workers (ECS tasks,
Kubernetes pods) and a re-execution on another worker finds the values of the run it re-executes.
"""

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

REQUIRED = ("APP_URL", "EMAIL_DOMAIN", "PUBLIC_BUCKET_NAME")
# Ten years: a longer window is a typo (1e12 days ends after every date a manifest can name).
MAX_RESTORE_WINDOW_DAYS = 3650
# A year: the law's deadlines for a person's request are a month or weeks, extended at most to
# three months.
MAX_REQUEST_DEADLINE_DAYS = 365
# DynamoDB's rule for a table name.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


class MissingConfigurationError(RuntimeError):
    """Raised before any AWS call when required environment variables are missing."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "Missing required environment variables: "
            + ", ".join(missing)
            + ". Set them before running the cleanup job (see README, Configuration)."
        )


@dataclass(frozen=True)
class Settings:
    app_url: str
    email_domain: str
    public_bucket_name: str
    product_name: str = "Increaser"
    aws_region: str | None = None
    ses_region: str | None = None
    bucket_region: str | None = None
    users_table: str = "users"
    features_table: str = "features"
    scoreboards_table: str = "scoreboards"
    emails_table: str = "emails"
    scoreboard_periods: tuple[str, ...] = ("week", "month")
    user_folder_template: str = "{id}/"
    reports_location: str = "reports"
    sentry_dsn: str | None = None
    restore_window_days: float = 30.0
    archive_location: str = "archive"
    holds_table: str | None = None  # unset: no persistent holds
    requests_table: str | None = None  # unset: no requests from the people themselves
    request_deadline_days: int = 30
    # The restore window of a person's own erasure: by default gone at once.
    erasure_restore_window_days: float = 0.0

    @property
    def sender(self) -> str:
        return f"{self.product_name} <noreply@{self.email_domain}>"

    def user_prefix(self, user_id: str) -> str:
        return self.user_folder_template.format(id=user_id)

    def for_erasure(self) -> "Settings":
        """These settings as a person's own erasure uses them: its own restore window."""
        return replace(self, restore_window_days=self.erasure_restore_window_days)

    @property
    def needs_versioning(self) -> bool:
        """Whether some deletion of a run keeps files restorable (by the bucket's versions)."""
        erasures = self.requests_table is not None and self.erasure_restore_window_days > 0
        return self.restore_window_days > 0 or erasures


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _restore_window(
    env: Mapping[str, str], name: str = "RESTORE_WINDOW_DAYS", default: float = 30.0
) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or not 0 <= days <= MAX_RESTORE_WINDOW_DAYS:
        raise ValueError(
            f"{name} must be a number of days from 0 (no restore window) to "
            f"{MAX_RESTORE_WINDOW_DAYS:,}, not {raw!r}"
        )
    return days


def _request_deadline(env: Mapping[str, str]) -> int:
    raw = _get(env, "REQUEST_DEADLINE_DAYS")
    if raw is None:
        return 30
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_REQUEST_DEADLINE_DAYS):
        raise ValueError(
            f"REQUEST_DEADLINE_DAYS must be a whole number of days from 1 to "
            f"{MAX_REQUEST_DEADLINE_DAYS}, not {raw!r}"
        )
    return int(raw)


def _requests_table(env: Mapping[str, str], others: dict[str, str | None]) -> str | None:
    name = _get(env, "REQUESTS_TABLE_NAME")
    if name is None:
        return None
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(
            "REQUESTS_TABLE_NAME must be a DynamoDB table name (3 to 255 letters, digits, '_', "
            f"'-' or '.'), not {name[:60]!r}"
        )
    # Requests written into a table the job deletes from or reads holds from would be lost
    # or misread.
    shared = [variable for variable, other in others.items() if other == name]
    if shared:
        raise ValueError(
            f"REQUESTS_TABLE_NAME must name a table of its own, not {name!r}, the table of "
            f"{', '.join(shared)}"
        )
    return name


def _user_folder(env: Mapping[str, str]) -> str:
    template = _get(env, "PUBLIC_BUCKET_USER_FOLDER") or "{id}/"
    # `{id}` is the one placeholder filled in: any other brace would fail every user's deletion.
    others = template.replace("{id}", "")
    if not template.endswith("/") or "{id}" not in template or "{" in others or "}" in others:
        raise ValueError(
            "PUBLIC_BUCKET_USER_FOLDER must contain '{id}', no other '{' or '}', and end with "
            f"'/', not {template!r}"
        )
    return template


def _archive_location(env: Mapping[str, str]) -> str:
    location = _get(env, "CLEANUP_ARCHIVE_DIR") or "archive"
    if location.startswith("s3://") and not location.removeprefix("s3://").split("/")[0]:
        raise ValueError(
            f"CLEANUP_ARCHIVE_DIR must name a bucket: s3://bucket/prefix, not {location!r}"
        )
    reports = _get(env, "CLEANUP_REPORTS_DIR") or "reports"
    if _overlap(location, reports):
        # Reports are meant to be read and shared; the archive holds addresses in clear.
        raise ValueError(
            f"CLEANUP_ARCHIVE_DIR ({location}) and CLEANUP_REPORTS_DIR ({reports}) must not be "
            "the same place or one inside the other: the archive holds personal data and is "
            "kept apart from the reports; give them separate folders (or S3 prefixes)"
        )
    return location


def _overlap(first: str, second: str) -> bool:
    """Whether two locations (local folders, resolved, or `s3://bucket/prefix`) are the same
    or one holds the other."""
    if first.startswith("s3://") != second.startswith("s3://"):
        return False
    if first.startswith("s3://"):
        parts = [place.removeprefix("s3://").partition("/") for place in (first, second)]
        (bucket_a, _, prefix_a), (bucket_b, _, prefix_b) = parts
        a, b = (f"{p.strip('/')}/".lstrip("/") for p in (prefix_a, prefix_b))
        return bucket_a == bucket_b and (a.startswith(b) or b.startswith(a))
    a, b = (Path(os.path.realpath(place)) for place in (first, second))
    return a == b or a in b.parents or b in a.parents


def sentry_dsn(env: Mapping[str, str] | None = None) -> str | None:
    """`SENTRY_DSN` (alias `SENTRY_KEY`), read alone: alerts about a run that failed for a
    missing variable must not depend on the other variables."""
    env = os.environ if env is None else env
    return _get(env, "SENTRY_DSN") or _get(env, "SENTRY_KEY")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the environment; raise one error naming every missing required variable."""
    env = os.environ if env is None else env
    missing = [name for name in REQUIRED if _get(env, name) is None]
    if missing:
        raise MissingConfigurationError(missing)
    template = _user_folder(env)
    region = _get(env, "AWS_REGION") or _get(env, "AWS_DEFAULT_REGION")
    periods = _get(env, "SCOREBOARD_PERIODS") or "week,month"
    job_tables = {
        "USERS_TABLE_NAME": _get(env, "USERS_TABLE_NAME") or "users",
        "FEATURES_TABLE_NAME": _get(env, "FEATURES_TABLE_NAME") or "features",
        "SCOREBOARDS_TABLE_NAME": _get(env, "SCOREBOARDS_TABLE_NAME") or "scoreboards",
        "EMAILS_TABLE_NAME": _get(env, "EMAILS_TABLE_NAME") or "emails",
        "HOLDS_TABLE_NAME": _get(env, "HOLDS_TABLE_NAME"),
    }
    return Settings(
        app_url=str(_get(env, "APP_URL")),
        email_domain=str(_get(env, "EMAIL_DOMAIN")),
        public_bucket_name=str(_get(env, "PUBLIC_BUCKET_NAME")),
        product_name=_get(env, "PRODUCT_NAME") or "Increaser",
        aws_region=region,
        ses_region=_get(env, "SES_AWS_REGION") or region,
        bucket_region=_get(env, "PUBLIC_BUCKET_REGION") or region,
        users_table=str(job_tables["USERS_TABLE_NAME"]),
        features_table=str(job_tables["FEATURES_TABLE_NAME"]),
        scoreboards_table=str(job_tables["SCOREBOARDS_TABLE_NAME"]),
        emails_table=str(job_tables["EMAILS_TABLE_NAME"]),
        scoreboard_periods=tuple(p.strip() for p in periods.split(",") if p.strip()),
        user_folder_template=template,
        reports_location=_get(env, "CLEANUP_REPORTS_DIR") or "reports",
        sentry_dsn=sentry_dsn(env),
        restore_window_days=_restore_window(env),
        archive_location=_archive_location(env),
        holds_table=_get(env, "HOLDS_TABLE_NAME"),
        requests_table=_requests_table(env, job_tables),
        request_deadline_days=_request_deadline(env),
        erasure_restore_window_days=_restore_window(env, "ERASURE_RESTORE_WINDOW_DAYS", 0.0),
    )


STEP_OUTPUTS_VARIABLE = "CLEANUP_STEP_OUTPUTS_S3_URI"

# S3 bucket naming rules: 3-63 characters, lowercase letters, digits, dots and hyphens, starting
# and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3StepStorage:
    """Step outputs under `s3://bucket/prefix/`; `prefix` has no leading or trailing slash."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def step_storage_from_env(env: Mapping[str, str] | None = None) -> S3StepStorage | None:
    """The S3 location of step outputs, or None for the local folder; a malformed value is an
    error naming the variable."""
    env = os.environ if env is None else env
    value = env.get(STEP_OUTPUTS_VARIABLE, "").strip()
    if not value:
        return None
    bucket, _, prefix = value.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not value.startswith("s3://") or not _BUCKET.fullmatch(bucket) or not prefix:
        raise ValueError(
            f"{STEP_OUTPUTS_VARIABLE} must be an S3 location with a key prefix, such as "
            f"s3://my-bucket/cleanup-steps, not {value!r}"
        )
    if "//" in prefix:
        raise ValueError(f"{STEP_OUTPUTS_VARIABLE} has an empty path segment: {value!r}")
    return S3StepStorage(bucket=bucket, prefix=prefix)

"""Section 4: email throughput against the send rate, ours and the original's.

Each SendEmail call's start is recorded by a botocore `before-call` hook on the client, i.e.
after the rate limiter let it go, right before the request is signed and sent. Ours sends from
the job's default number of threads through one shared `SendRateLimiter`.
"""

import bisect
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from bench.baseline import RateLimitedSender, warning_body
from bench.output import Report, Target
from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.mailer import SendRateLimiter, send_warning
from cleanup_pipeline.core.policy import Policy
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.core.warning_email import render_warning
from cleanup_pipeline.orchestration.resources import CleanupPolicy

SEND_WORKERS = CleanupPolicy().send_workers  # the job's default


class SendStarts:
    """Start time of every SendEmail call made through the clients it is attached to (a
    `before-call` hook: after the rate limiter released the call, before the request goes)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        client.meta.events.register(
            "before-call.sesv2.SendEmail", self._record, unique_id=f"send-starts-{id(self)}"
        )
        return client

    def _record(self, **_: Any) -> None:
        with self._lock:
            self.starts.append(time.monotonic())


def analyse(starts: list[float], rate: float) -> dict[str, Any]:
    times = sorted(starts)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    mean_rate = (len(times) - 1) / span if span > 0 else 0.0
    # The busiest one-second window starts at some send: count sends in [t, t + 1 s).
    busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Sends rate + 1 apart must be at least 1 s apart, or one window holds rate + 1 sends.
    step = int(rate)
    spans = [times[i + step] - times[i] for i in range(len(times) - step)]
    return {
        "sent": len(times),
        "span_s": span,
        "mean_rate_per_s": mean_rate,
        "pct_of_allowed": 100.0 * mean_rate / rate,
        "max_in_any_1s_window": busiest,
        "min_gap_ms": 1000 * min(gaps) if gaps else None,
        "min_span_ms": 1000 * min(spans) if spans else None,
        "windows_over_rate": sum(1 for span in spans if span < 1.0),
    }


FIGURES: tuple[tuple[str, str, str], ...] = (
    ("sent", "emails sent", ""),
    ("mean_rate_per_s", "mean rate", "/s"),
    ("pct_of_allowed", "% of the allowed rate", "%"),
    ("max_in_any_1s_window", "most sends in any 1 s window", ""),
    ("min_gap_ms", "smallest gap between two sends", "ms"),
    ("min_span_ms", "shortest span of rate+1 consecutive sends", "ms"),
    ("windows_over_rate", "such spans under 1 s (windows over the rate)", ""),
)


def _print(
    report: Report, section: dict[str, Any], key: str, label: str, figures: dict[str, Any]
) -> None:
    report.note(label)
    for name, text, unit in FIGURES:
        report.figure(section, f"{key}_{name}", f"  {text}", figures[name], unit)


def run(report: Report, settings: Settings, count: int, rate: float) -> dict[str, Any]:
    section = report.section("emails", f"4. Email throughput: {count} emails, allowed {rate:g}/s")
    message = render_warning(
        settings.product_name, settings.app_url, settings.email_domain, Policy()
    )
    ours = SendStarts()
    sesv2 = ours.attach(make_clients(settings).sesv2)  # the job's client and retry settings
    limiter = SendRateLimiter(rate)

    def send(i: int) -> None:
        limiter.acquire()
        send_warning(sesv2, message, f"bench.{i}@example.com")

    with ThreadPoolExecutor(max_workers=SEND_WORKERS) as pool:
        list(pool.map(send, range(count)))
    ours_figures = analyse(ours.starts, rate)
    _print(
        report,
        section,
        "ours",
        f"ours: SendRateLimiter + send_warning, {SEND_WORKERS} threads",
        ours_figures,
    )

    original = SendStarts()
    plain = original.attach(boto3.client("sesv2", region_name=settings.ses_region))
    sender = RateLimitedSender()
    body = warning_body(settings.product_name, settings.app_url)
    for i in range(count):
        sender.wait()
        plain.send_email(
            FromEmailAddress=settings.sender,
            Destination={"ToAddresses": [f"original.{i}@example.com"]},
            Content={
                "Simple": {"Subject": {"Data": message.subject}, "Body": {"Html": {"Data": body}}}
            },
        )
    base_figures = analyse(original.starts, rate)
    _print(
        report,
        section,
        "baseline",
        "baseline: 100 ms after the previous start, sequential",
        base_figures,
    )
    section["ours"], section["baseline"] = ours_figures, base_figures
    report.figure(
        section,
        "rate_ratio",
        "mean rate, ours / baseline",
        ours_figures["mean_rate_per_s"] / base_figures["mean_rate_per_s"],
        "x",
    )
    report.target(Target("email_pct_of_allowed", ours_figures["pct_of_allowed"], 98.0, "min"))
    report.target(
        Target(
            "email_max_in_1s_window",
            float(ours_figures["max_in_any_1s_window"]),
            rate,
            "at_most",
        )
    )
    return section

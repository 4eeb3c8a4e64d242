"""Email throughput against the allowed send rate: ours (the job's default number of threads
sharing one `SendRateLimiter`) and the original design's sequential sender.

Each SendEmail call's start is the time the call recorder saw it (a botocore
`before-parameter-build` hook): after the rate limiter let it go, right before the request is
built, signed and sent.
"""

import bisect
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from bench.baseline import RateLimitedSender, warning_body
from bench.measure import CallRecorder
from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.aws.mailer import SendRateLimiter, send_warning
from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.settings import Settings
from cleanup_pipeline.core.warning_email import render_warning
from cleanup_pipeline.orchestration.resources import CleanupPolicy

FIGURES = (
    ("sent", "emails sent", ""),
    ("mean_rate_per_s", "mean rate, first to last send", "/s"),
    ("pct_of_allowed", "share of the allowed rate", "%"),
    ("max_in_any_1s_window", "most sends in any 1 s window [t, t + 1 s)", ""),
    ("min_gap_ms", "smallest gap between two sends", "ms"),
    ("windows_over_rate", "spans of rate + 1 sends under 1 s (windows over the rate)", ""),
)


def analyse(starts: list[float], rate: float) -> dict[str, Any]:
    times = sorted(starts)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    mean_rate = (len(times) - 1) / span if span > 0 else 0.0
    step = int(rate)  # sends rate + 1 apart must be at least 1 s apart
    spans = [times[i + step] - times[i] for i in range(len(times) - step)]
    return {
        "sent": len(times),
        "mean_rate_per_s": mean_rate,
        "pct_of_allowed": 100.0 * mean_rate / rate,
        # The busiest one-second window starts at some send.
        "max_in_any_1s_window": max(
            bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)
        ),
        "min_gap_ms": 1000 * min((b - a for a, b in itertools.pairwise(times)), default=0.0),
        "windows_over_rate": sum(1 for s in spans if s < 1.0),
    }


def measure(
    settings: Settings, count: int, rate: float, recorder: CallRecorder
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`count` emails each way, ours then the original design's, on the emulator."""
    message = render_warning(
        settings.product_name, settings.app_url, settings.email_domain, Policy()
    )
    recorder.label = "ours"
    sesv2 = make_clients(settings).sesv2  # the job's client settings
    limiter = SendRateLimiter(rate)

    def send(i: int) -> None:
        limiter.acquire()
        send_warning(sesv2, message, f"bench.{i}@example.com")

    with ThreadPoolExecutor(max_workers=CleanupPolicy().send_workers) as pool:
        list(pool.map(send, range(count)))

    recorder.label = "baseline"
    plain = boto3.client("sesv2", region_name=settings.ses_region)
    sender, body = RateLimitedSender(), warning_body(settings.product_name, settings.app_url)
    content = {"Simple": {"Subject": {"Data": message.subject}, "Body": {"Html": {"Data": body}}}}
    for i in range(count):
        sender.wait()
        plain.send_email(
            FromEmailAddress=settings.sender,
            Destination={"ToAddresses": [f"original.{i}@example.com"]},
            Content=content,
        )
    recorder.label = ""
    sends = [c for c in recorder.calls if c.name == "sesv2:SendEmail"]
    ours = [c.at for c in sends if c.label == "ours"]
    return analyse(ours, rate), analyse([c.at for c in sends if c.label == "baseline"], rate)

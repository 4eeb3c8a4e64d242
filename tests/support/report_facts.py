"""The facts of a small report: one notify and one delete candidate among 2,000 users."""

from cleanup_pipeline.core.guards import GuardLimits, deletions_within_limit, invalid_share
from cleanup_pipeline.core.reports import CANDIDATE, ReportFacts, build_report
from tests.support.classify import decide_all
from tests.support.items import AS_OF, DAY, inactive, n, user

HISTOGRAM = {"<30": 10, "30-59": 5, "60-74": 0, "invalid": 1}


def facts(stage: str = CANDIDATE, dry_run: bool = False, delete: int = 1) -> ReportFacts:
    decisions = decide_all(
        [
            inactive("notify", email={"S": "nora.private@example.com"}),
            user(
                "delete",
                lastVisitAt=n(AS_OF - 100 * DAY),
                accountDeletionEmailSentAt=n(AS_OF - 35 * DAY),
            ),
        ]
    )
    counts = {"users": 2000, "invalid": 0, "delete": delete, "notify": 1}
    return ReportFacts(
        run_id="0f3c-run",
        as_of="2026-06-01T03:00:00Z",
        dry_run=dry_run,
        allow_mass_action=False,
        stage=stage,
        file_name="2026-06-01_0f3c-run.parquet",
        report=build_report(decisions, dry_run=dry_run),
        histogram=HISTOGRAM,
        guards=[
            invalid_share(counts, GuardLimits()),
            deletions_within_limit(counts, GuardLimits()),
        ],
    )

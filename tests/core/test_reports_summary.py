"""The human-readable summary next to each report file."""

from cleanup_pipeline.core.reports import (
    FINAL,
    histogram_table,
    render_summary,
)
from tests.support.report_facts import HISTOGRAM, facts


def test_summary_states_run_counts_and_histogram():
    text = render_summary(facts())
    assert text.startswith("# Cleanup report 2026-06-01, run 0f3c-run")
    assert "| as_of | 2026-06-01T03:00:00Z |" in text
    assert "| dry run | no |" in text
    assert "`2026-06-01_0f3c-run.parquet`, 2 rows" in text
    assert "| not_attempted | 2 |" in text
    assert "| warned | 0 |" in text
    assert "| inactive over 60 days | 1 |" in text
    assert "| warned over 30 days ago | 1 |" in text
    assert "## Days inactive (all 16 users)" in text
    assert "candidate: written before any action" in text
    assert "Guards passed; actions had not started" in text
    assert "nora.private" not in text and "Blocked" not in text


def test_blocked_summary_names_the_guard_and_says_nothing_was_attempted():
    text = render_summary(facts(delete=1234))
    assert "**Blocked** by `deletions_within_limit`: no action was attempted" in text
    assert (
        "- `deletions_within_limit`: 1,234 delete candidates is over the limit of 100 "
        "(the larger of min_guarded_count 25 and max_delete_fraction 5% of 2,000 valid users)"
    ) in text
    assert "invalid_share_within_limit" not in text  # it passed


def test_dry_run_and_final_stage():
    assert "Dry run: decided and reported only" in render_summary(facts(dry_run=True))
    final = render_summary(facts(stage=FINAL))
    assert "final: completed with every action's outcome" in final
    assert "Guards passed; every action of the run has its outcome below." in final


def test_histogram_bars_scale_to_the_largest_bucket():
    table = histogram_table(HISTOGRAM)
    lines = table.splitlines()
    assert lines[0] == "| days inactive | users | |"
    assert lines[2] == "| <30 | 10 | " + "█" * 30 + " |"
    assert lines[3] == "| 30-59 | 5 | " + "█" * 15 + " |"
    assert lines[4] == "| 60-74 | 0 |  |"
    assert histogram_table(dict.fromkeys(HISTOGRAM, 0)).count("█") == 0

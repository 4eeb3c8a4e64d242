"""SPEC §10 approval of a reviewed run: which runs may be approved, who is left out, how the
guards treat the approved set, and how the report read is bound to the one reviewed."""

import hashlib
from dataclasses import replace

import pandas as pd
import pytest

from cleanup_pipeline.core.decisions import Policy, classify
from cleanup_pipeline.core.guards import (
    ApprovalError,
    GuardLimits,
    ReviewedRun,
    approved_candidates,
    candidate_digests,
    candidates_digest,
    deletions_within_limit,
    guard_counts,
    how_to_approve,
    invalid_share,
    lift_for_review,
    mark_not_approved,
    not_approved_counts,
    refuse_unless_approvable,
    refuse_unless_reviewed,
)
from cleanup_pipeline.core.reports import build_report, render_summary
from cleanup_pipeline.core.wire import decode_items
from tests.support.items import AS_OF, DAY, NOW, inactive, n, user
from tests.support.report_facts import facts

JOB = "inactive_accounts_cleanup"
MAX_AGE = 7 * DAY


def _refusal(found: ReviewedRun | None, now: int = NOW, current: str | None = None) -> str:
    with pytest.raises(ApprovalError) as raised:
        refuse_unless_approvable("r1", found, JOB, now, 7, current)
    return str(raised.value)


def test_an_earlier_run_of_this_job_up_to_the_maximum_age_is_approvable() -> None:
    for created in (NOW, NOW - MAX_AGE):
        refuse_unless_approvable("r1", ReviewedRun("r1", JOB, created), JOB, NOW, 7, "r2")


def test_unknown_other_job_itself_and_too_old_runs_are_refused_by_name() -> None:
    assert _refusal(None) == "approved_run_id 'r1': no such run in this Dagster instance"
    assert "is a run of 'manage_hold', not of 'inactive_accounts_cleanup'" in _refusal(
        ReviewedRun("r1", "manage_hold", NOW)
    )
    assert "is this run itself" in _refusal(ReviewedRun("r1", JOB, NOW), current="r1")
    too_old = _refusal(ReviewedRun("r1", JOB, NOW - MAX_AGE - 1))
    assert "7.0 days ago" in too_old and "approval_max_age_days (7)" in too_old


def _decisions() -> pd.DataFrame:
    items = [
        inactive("approved-notify"),
        inactive("new-notify"),
        user("another-new-notify", lastVisitAt=n(AS_OF - 100 * DAY)),
        user(
            "approved-delete",
            lastVisitAt=n(AS_OF - 100 * DAY),
            accountDeletionEmailSentAt=n(AS_OF - 35 * DAY),
        ),
        user(
            "kind-changed",
            lastVisitAt=n(AS_OF - 100 * DAY),
            accountDeletionEmailSentAt=n(AS_OF - 35 * DAY),
        ),
        user("approved-but-active"),
        inactive("invalid", email={"S": ""}),
    ]
    return classify(decode_items(items), AS_OF, NOW, Policy())


REVIEWED = pd.DataFrame(
    {
        "id": ["approved-notify", "approved-delete", "kind-changed", "approved-but-active", "w"],
        "decision": ["notify", "delete", "notify", "delete", "waiting"],
    }
)


def test_approved_candidates_are_the_notify_and_delete_rows_of_the_report() -> None:
    assert approved_candidates("r1", REVIEWED) == {
        "approved-notify": "notify",
        "approved-delete": "delete",
        "kind-changed": "notify",
        "approved-but-active": "delete",
    }
    with pytest.raises(ApprovalError, match="no id and decision"):
        approved_candidates("r1", pd.DataFrame({"id": ["x"]}))


def test_only_candidates_of_the_same_kind_in_the_approved_report_are_approved() -> None:
    marked = mark_not_approved(_decisions(), approved_candidates("r1", REVIEWED)).set_index("id")
    assert marked["not_approved"].to_dict() == {
        "approved-notify": False,
        "new-notify": True,
        "another-new-notify": True,
        "approved-delete": False,
        "kind-changed": True,
        "approved-but-active": False,  # not a candidate now: nothing to leave out
        "invalid": False,
    }
    assert not mark_not_approved(_decisions(), None)["not_approved"].any()


def test_the_report_says_not_approved_and_the_guards_count_only_the_approved() -> None:
    marked = mark_not_approved(_decisions(), approved_candidates("r1", REVIEWED))
    assert not_approved_counts(marked) == {
        "not_approved": 3,
        "not_approved_notify": 2,
        "not_approved_delete": 1,
        "not_approved_erase": 0,
    }
    counts = guard_counts(marked)
    assert (counts["notify"], counts["delete"], counts["users"]) == (1, 1, 7)
    for dry_run, pending in ((False, "not_attempted"), (True, "dry_run")):
        report = build_report(marked, dry_run=dry_run).set_index("id")
        assert "not_approved" not in report.columns
        assert report.loc["new-notify", "outcome"] == "not_approved"
        assert report.loc["kind-changed", ["decision", "outcome"]].tolist() == [
            "delete",
            "not_approved",
        ]
        assert report.loc["approved-delete", "outcome"] == pending
        assert report.loc["invalid", "outcome"] == "no_action"


def test_an_approval_lifts_the_size_and_history_guards_but_not_the_data_quality_one() -> None:
    counts = {"users": 100, "invalid": 50, "delete": 40, "notify": 0}
    results = [invalid_share(counts, GuardLimits()), deletions_within_limit(counts, GuardLimits())]
    assert [r.passed for r in results] == [False, False]
    assert lift_for_review(results, "") == results
    lifted = lift_for_review(results, "r1")
    assert [r.passed for r in lifted] == [False, True]
    assert lifted[1].count == 40 and "reviewed in run r1 (approved_run_id)" in lifted[1].reason


def test_a_blocked_summary_says_how_to_approve_the_run_with_its_own_id() -> None:
    blocked = render_summary(facts(delete=1234))
    assert how_to_approve("0f3c-run") in blocked
    assert "`cleanup-pipeline run --approve 0f3c-run`" in blocked
    assert "approved_run_id: 0f3c-run" in blocked
    assert "| approved run | (none) |" in blocked
    approved = render_summary(replace(facts(), approved_run_id="0a1b-run"))
    assert "| approved run | 0a1b-run |" in approved and "--approve" not in approved


def test_a_summary_blocked_by_bad_data_does_not_offer_an_approval() -> None:
    counts = {"users": 100, "invalid": 50, "delete": 0, "notify": 0}
    bad_data = replace(facts(), guards=[invalid_share(counts, GuardLimits())])
    assert "--approve" not in render_summary(bad_data)


def test_the_digest_is_sha256_of_the_sorted_ids_as_a_compact_json_array() -> None:
    expected = hashlib.sha256('["b","été","😀"]'.encode()).hexdigest()
    assert candidates_digest(["😀", "b", "été"]) == expected
    assert candidates_digest([]) == hashlib.sha256(b"[]").hexdigest()
    # One id holding a newline is not the two ids around it.
    assert candidates_digest(["a\nb"]) != candidates_digest(["a", "b"])


def test_each_kind_of_candidate_has_its_own_digest_tag() -> None:
    digests = candidate_digests(approved_candidates("r1", REVIEWED))
    assert digests == {
        "cleanup_pipeline/candidates_sha256/notify": candidates_digest(
            ["kind-changed", "approved-notify"]
        ),
        "cleanup_pipeline/candidates_sha256/delete": candidates_digest(
            ["approved-delete", "approved-but-active"]
        ),
        "cleanup_pipeline/candidates_sha256/erase": candidates_digest([]),
    }


def _unreviewed(tags: dict[str, str], report: pd.DataFrame) -> str:
    with pytest.raises(ApprovalError) as raised:
        refuse_unless_reviewed("r1", tags, approved_candidates("r1", report))
    return str(raised.value)


def test_a_report_that_matches_its_digests_is_approvable() -> None:
    tags = {"other": "x", **candidate_digests(approved_candidates("r1", REVIEWED))}
    refuse_unless_reviewed("r1", tags, approved_candidates("r1", REVIEWED))
    reordered = REVIEWED.iloc[::-1].reset_index(drop=True)  # row order is not reviewed
    refuse_unless_reviewed("r1", tags, approved_candidates("r1", reordered))


def test_ids_swapped_between_kinds_after_the_run_are_refused() -> None:
    tags = candidate_digests(approved_candidates("r1", REVIEWED))
    swapped = REVIEWED.copy()
    swapped.loc[[0, 1], "id"] = ["approved-delete", "approved-notify"]
    refusal = _unreviewed(tags, swapped)
    assert refusal.startswith("approved_run_id 'r1': its candidate report does not match")
    assert "the report was changed after the run" in refusal
    added = pd.concat([REVIEWED, pd.DataFrame({"id": ["x"], "decision": ["delete"]})])
    assert "does not match the digest of its delete candidates" in _unreviewed(tags, added)


def test_a_run_without_digests_is_refused_naming_why() -> None:
    tags = candidate_digests(approved_candidates("r1", REVIEWED))
    del tags["cleanup_pipeline/candidates_sha256/delete"]
    refusal = _unreviewed(tags, REVIEWED)
    assert "has no digest of its candidates (run tag cleanup_pipeline/candidates_sha256/" in refusal
    assert "predates candidate digests or stopped before finishing its report" in refusal

"""The holds table against moto, and the batch re-read honouring holds (SPEC §10)."""

from dataclasses import replace

from cleanup_pipeline.actions.cascade import confirm_candidates
from cleanup_pipeline.actions.notify import warn_users
from cleanup_pipeline.actions.outcomes import SKIPPED
from cleanup_pipeline.aws.holds_table import delete_hold, put_hold, read_holds, scan_holds
from cleanup_pipeline.core.decisions import NO_REASON, Hold, active_holds
from cleanup_pipeline.local.batch_write import batch_write as put_items
from tests.support.aws_calls import record_params
from tests.support.cascade import cascade_context, outcome_of
from tests.support.items import delete_candidate, notify_candidate, now_ms, s
from tests.support.notify import notify_context, recipients


def test_holds_are_put_listed_read_and_removed(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.holds_table
    assert table == "holds"
    assert put_hold(db, table, Hold("u1", "legal", until=2_000_000_000_000)) is None
    replaced = put_hold(db, table, Hold("u1", "legal, extended"))
    assert replaced == Hold("u1", "legal", until=2_000_000_000_000)
    put_hold(db, table, Hold("u2", "staff"))
    assert scan_holds(db, table) == [Hold("u1", "legal, extended"), Hold("u2", "staff")]
    assert read_holds(db, table, ["u2", "nobody"]) == [Hold("u2", "staff")]
    assert delete_hold(db, table, "u1") == Hold("u1", "legal, extended")
    assert delete_hold(db, table, "u1") is None
    assert scan_holds(db, table) == [Hold("u2", "staff")]


def test_the_scan_is_consistent_and_projected_and_pages_through_everything(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.holds_table
    # Long reasons: 1,200 items of ~1 KB are more than one 1 MB Scan page.
    reason = "r" * 1000
    put_items(db, table, [{"id": s(f"u{i:04d}"), "reason": s(reason)} for i in range(1200)])
    scans = record_params(db, "Scan")
    holds = scan_holds(db, table)
    assert len(holds) == 1200 and len(scans) > 1
    assert all(call["ConsistentRead"] for call in scans)
    assert all("ProjectionExpression" in call for call in scans)


def test_an_unreadable_item_still_holds_its_user_and_no_address_is_read(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.holds_table
    put_items(
        db,
        table,
        [
            {"id": s("no-reason")},
            {"id": s("until-text"), "reason": s("legal"), "until": s("tomorrow")},
            {"id": s("written-by-hand"), "reason": s("asked by jane.doe@example.com")},
        ],
    )
    assert scan_holds(db, table) == [
        Hold("no-reason", NO_REASON),
        Hold("until-text", "legal"),
        Hold("written-by-hand", "asked by j***@example.com"),
    ]


def test_a_hold_added_after_the_scan_keeps_the_delete_candidate(aws):
    clients, settings = aws
    as_of = now_ms()
    put_items(
        clients.dynamodb,
        settings.users_table,
        [delete_candidate(uid, as_of) for uid in ("held", "expired-hold", "free")],
    )
    put_hold(clients.dynamodb, settings.holds_table, Hold("held", "legal case 12"))
    put_hold(clients.dynamodb, settings.holds_table, Hold("expired-hold", "old", until=as_of - 1))
    gets = record_params(clients.dynamodb, "BatchGetItem")
    batch = confirm_candidates(
        cascade_context(clients, settings, as_of), ["held", "expired-hold", "free"]
    )
    assert sorted(batch.items) == ["expired-hold", "free"]
    row = outcome_of(batch.outcomes, "held")
    assert (row["outcome"], row["step"]) == (SKIPPED, "recheck")
    assert row["error"] == "now exempt (hold: legal case 12)"
    holds_reads = [g["RequestItems"]["holds"] for g in gets if "holds" in g["RequestItems"]]
    assert len(holds_reads) == 1 and holds_reads[0]["ConsistentRead"] is True


def test_a_hold_added_after_the_scan_keeps_the_notify_candidate_unwarned(aws):
    clients, settings = aws
    as_of = now_ms()
    put_items(
        clients.dynamodb,
        settings.users_table,
        [notify_candidate(uid, as_of) for uid in ("held", "free")],
    )
    put_hold(clients.dynamodb, settings.holds_table, Hold("held", "support ticket"))
    ctx = notify_context(clients, settings, as_of, holds_table=settings.holds_table)
    outcomes = warn_users(ctx, ["held", "free"])
    assert outcome_of(outcomes, "held")["error"] == "now exempt (hold: support ticket)"
    assert recipients() == ["free@example.com"]


def test_without_a_holds_table_the_recheck_reads_no_holds(aws):
    clients, settings = aws
    as_of = now_ms()
    put_items(clients.dynamodb, settings.users_table, [delete_candidate("u1", as_of)])
    put_hold(clients.dynamodb, settings.holds_table, Hold("u1", "ignored when the table is off"))
    gets = record_params(clients.dynamodb, "BatchGetItem")
    ctx = cascade_context(clients, replace(settings, holds_table=None), as_of)
    batch = confirm_candidates(ctx, ["u1"])
    assert list(batch.items) == ["u1"]
    assert [list(g["RequestItems"]) for g in gets] == [[settings.users_table]]


# `until` values written by hand or by another tool: none is a time a hold can end at.
ODD_UNTILS = {
    "huge": ({"N": "99999999999999999999"}, "99999999999999999999"),
    "38-digits": ({"N": "9" * 38}, "9" * 38),
    "after-9999": ({"N": "253370764800000"}, "253370764800000"),
    "negative": ({"N": "-5"}, "-5"),
    "fraction": ({"N": "1893456000000.5"}, "1893456000000.5"),
    "exponent": ({"N": "1E+30"}, "1E+30"),
    "text": ({"S": "tomorrow, ask jane.doe@example.com"}, "tomorrow, ask j***@example.com"),
    "null": ({"NULL": True}, '{"NULL": true}'),
    "list": ({"L": [{"N": "1"}]}, '{"L": [{"N": "1"}]}'),
}


def test_a_hold_whose_until_is_no_time_is_read_as_holding_and_shown_as_stored(aws):
    clients, settings = aws
    db, table = clients.dynamodb, settings.holds_table
    items = [
        {"id": s(name), "reason": s("legal"), "until": v} for name, (v, _) in ODD_UNTILS.items()
    ]
    put_items(db, table, items)
    now = now_ms()
    scanned = scan_holds(db, table)
    assert scanned == [Hold(name, "legal") for name in sorted(ODD_UNTILS)]  # held until removed
    read = sorted(read_holds(db, table, list(ODD_UNTILS)), key=lambda hold: hold.user_id)
    assert read == scanned
    assert active_holds(scanned, now) == dict.fromkeys(ODD_UNTILS, "legal")
    for hold in scanned:
        shown = hold.as_json(now)
        assert shown["until"] == ODD_UNTILS[hold.user_id][1], hold.user_id
        assert shown["active"] is True and "held until removed" in shown["flag"]
    replaced = put_hold(db, table, Hold("huge", "legal, extended", now + 1))
    assert replaced is not None and replaced.as_json(now)["until"] == "99999999999999999999"
    removed = delete_hold(db, table, "text")
    assert removed is not None and "flag" in removed.as_json(now)

"""The operator's review in a real browser: a dry run launched from the launchpad, its report
and checks; a run stopped by a guard and the check that says why; a hold added with the
`manage_hold` job; and the blocked run approved from the launchpad with the id its check shows.
An erase request opened with the `request_erase` job, seen open and overdue on the page of
`erasure_requests` materialized by `request_list`, and done after the next run."""

import io
import re
from typing import Any

import pandas as pd
import pytest
import yaml
from selenium.webdriver.common.by import By

from cleanup_pipeline.aws.requests_table import scan_requests
from cleanup_pipeline.core.as_of import format_ms
from cleanup_pipeline.core.decisions import DAY_MS
from cleanup_pipeline.core.requests import DEADLINE_CHECK, RequestStatus
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import demo_users
from tests.support.browser_page import Page
from tests.support.items import now_ms
from tests.support.ui_stack import Stack

JOB = "inactive_accounts_cleanup"
HOLD_JOB = "manage_hold"
HOLD_REASON = "legal hold set in the browser"
RUN_SECONDS = 300  # one run on a loaded 2-core machine
# The runs execute their steps in one process, as `cleanup-pipeline run` does: a process per
# step would make each run last minutes on a small machine without showing anything else.
IN_PROCESS = ["execution:", "  config:", "    in_process: {}"]

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def editor_config(page: Page) -> dict:
    """The launchpad's config as YAML; the editor's text in the error when it does not parse."""
    text = page.editor_text()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        page.shot("failed-config")
        raise AssertionError(f"the launchpad's config is not YAML:\n{text}") from error


def open_launchpad(page: Page) -> dict:
    page.visit("/jobs")
    page.click(f"//a[normalize-space(.)='{JOB}']", "the job in the list")
    page.text_shown("Materialize all")
    page.click("//button[.//*[@aria-label='arrow_drop_down']]", "the launch menu")
    page.click_text("Open launchpad")
    page.until(lambda _: "dry_run:" in page.editor_text(), "the default run config")
    page.text_shown("No errors")  # validated: the editor has settled
    return editor_config(page)


def open_hold_launchpad(page: Page) -> None:
    page.visit("/jobs")
    page.click(f"//a[normalize-space(.)='{HOLD_JOB}']", "the hold job in the list")
    page.click_text("Launchpad")
    page.find("//button[normalize-space(.)='Launch Run']", "the Launch Run button")
    page.find("//div[contains(@class, 'CodeMirror')]", "the config editor")


def launch(page: Page, button: str = "Materialize") -> str:
    page.text_shown("No errors")
    # The last one: the launchpad opens over a job page that may have a button of that name too.
    page.click(f"(//button[normalize-space(.)='{button}'])[last()]", f"the {button} button")
    page.until(lambda driver: "/runs/" in driver.current_url, "the new run's page")
    return page.driver.current_url.split("/runs/")[1].split("?")[0].split("/")[0]


def final_status(page: Page) -> str:
    status = page.find(
        "//*[normalize-space(text())='Success' or normalize-space(text())='Failure']",
        "the run's final status",
        RUN_SECONDS,
    )
    return status.text.strip()


# The run's event log renders only the rows near its view and does not always follow a run that
# has already ended to its last event: scroll its panel (the nearest scrolling ancestor of an
# event row) to the end before each look.
SCROLL_LOG_TO_END = """
const row = document.evaluate("//*[normalize-space(text())='STEP_START']", document, null,
    XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
let panel = row;
while (panel && !(panel.scrollHeight > panel.clientHeight
                  && /auto|scroll/.test(getComputedStyle(panel).overflowY))) {
  panel = panel.parentElement;
}
if (panel) panel.scrollTop = panel.scrollHeight;
"""


def log_event_shown(page: Page, event_type: str) -> None:
    """The run page's event log shows an event of `event_type`, scrolled to its end."""
    xpath = f"//*[normalize-space(text())='{event_type}']"

    def shown(driver: Any) -> bool:
        driver.execute_script(SCROLL_LOG_TO_END)
        return any(e.is_displayed() for e in driver.find_elements(By.XPATH, xpath))

    page.until(shown, f"{event_type} in the event log")


def metadata_table(page: Page, first: str = "path") -> dict[str, str]:
    """The Metadata section of an asset's overview: key to value as shown, once the row `first`
    is there."""
    page.find(f"//table//td[normalize-space(.)='{first}']", "the asset's metadata")
    rows = page.driver.find_elements("xpath", "//table//tr[td]")
    cells = [row.find_elements("xpath", "./td") for row in rows]
    # textContent, not .text: rows scrolled out of the panel's view count too.
    return {
        c[0].get_attribute("textContent").strip(): c[-1].get_attribute("textContent").strip()
        for c in cells
        if len(c) >= 2
    }


CHECK_ROWS = "//div[contains(@class, 'AssetChecks_checkRow')]"


def check_statuses(page: Page) -> dict[str, str]:
    """The list on an asset's Checks tab: check name to its latest status."""
    page.find(CHECK_ROWS, "the list of checks")
    statuses = {}
    for row in page.driver.find_elements("xpath", CHECK_ROWS):
        name, _, status = row.text.strip().partition("\n")
        statuses[name] = status.strip()
    return statuses


def read_report(stack: Stack, path: str) -> pd.DataFrame:
    bucket, _, key = path.removeprefix("s3://").partition("/")
    body = stack.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pd.read_parquet(io.BytesIO(body))


def report_of_run(stack: Stack, run_id: str) -> pd.DataFrame:
    """The candidate report a run wrote, found by its run id in the reports bucket."""
    bucket, _, prefix = stack.reports.removeprefix("s3://").partition("/")
    pages = stack.clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    found = [key for key in keys if key.endswith(f"_{run_id}.parquet")]
    assert len(found) == 1, f"one report of run {run_id} expected among {keys}"
    return read_report(stack, f"s3://{bucket}/{found[0]}")


def user_ids(stack: Stack) -> set[str]:
    table = load_settings().users_table
    pages = stack.clients.dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="id"
    )
    return {item["id"]["S"] for p in pages for item in p["Items"]}


def test_operator_reviews_holds_and_approves_a_blocked_run(stack: Stack, page: Page) -> None:
    # A dry run from the launchpad: its defaults, with dry_run switched on.
    defaults = open_launchpad(page)
    # No approved_run_id among the defaults: left out means no approval (blank is refused).
    assert defaults["resources"]["run_options"]["config"] == {
        "allow_mass_action": False,
        "as_of": "",
        "dry_run": False,
    }
    page.replace_config_line("dry_run: false", "dry_run: true")
    page.append_config(IN_PROCESS)
    config = editor_config(page)
    assert config["resources"]["run_options"]["config"]["dry_run"] is True
    assert config["execution"] == {"config": {"in_process": {}}}
    page.shot("01-launchpad-dry-run")
    dry_run_id = launch(page)
    assert final_status(page) == "Success"
    log_event_shown(page, "RUN_SUCCESS")
    page.shot("02-dry-run-succeeded")

    # The report it wrote, as the asset page shows it.
    page.visit("/assets/candidate_report")
    shown = metadata_table(page)
    assert shown["path"].startswith(stack.reports + "/")
    assert shown["path"].endswith(f"_{dry_run_id}.parquet")
    report = read_report(stack, shown["path"])
    assert len(report) > 0
    assert shown["rows"] == str(len(report))
    assert shown["dry_run"] == "true"
    outcomes = set(report["outcome"])
    assert "dry_run" in outcomes
    assert outcomes <= {"dry_run", "no_action"}
    # Counts by outcome and the days-inactive histogram, as the numbers Dagster plots.
    for outcome, count in report["outcome"].value_counts().items():
        assert shown[f"outcome/{outcome}"] == str(count)
    buckets = {k: int(v) for k, v in shown.items() if k.startswith("days_inactive/")}
    assert len(buckets) == 9
    assert sum(buckets.values()) == stack.demo.users
    page.shot("03-candidate-report")

    page.visit("/assets/cleanup_report?view=checks")
    assert check_statuses(page) == {"every_user_action_succeeded": "Succeeded"}
    page.text_shown("no user failed")
    page.shot("04-report-check")

    page.visit("/assets/deletion_candidates?view=checks")
    guards = ["deletions_match_history", "deletions_within_limit", "invalid_share_within_limit"]
    assert check_statuses(page) == dict.fromkeys(guards, "Succeeded")

    # A real run with a tighter deletion limit than the demo data's candidates: blocked.
    defaults = open_launchpad(page)
    assert defaults["resources"]["cleanup_policy"]["config"]["min_guarded_count"] == 25
    page.replace_config_line("min_guarded_count: 25", "min_guarded_count: 0")
    page.replace_config_line("max_delete_fraction: 0.05", "max_delete_fraction: 0.01")
    page.append_config(IN_PROCESS)
    config = editor_config(page)
    assert config["resources"]["run_options"]["config"]["dry_run"] is False
    page.shot("05-launchpad-tight-limit")
    blocked_id = launch(page)
    assert blocked_id != dry_run_id
    assert final_status(page) == "Failure"
    page.shot("06-run-blocked")

    page.visit("/assets/deletion_candidates?view=checks")
    assert check_statuses(page) == {
        "deletions_match_history": "Succeeded",
        "deletions_within_limit": "Failed",
        "invalid_share_within_limit": "Succeeded",
    }
    page.click(f"{CHECK_ROWS}[.//*[text()='deletions_within_limit']]", "the failed check")
    delete = stack.demo.profiles["delete"]
    valid = stack.demo.users - stack.demo.profiles.get("invalid", 0)
    page.find(
        f"//*[contains(text(), '{delete} delete candidates is over the limit')]",
        "the failed guard's reason",
    )
    assert f"1% of {valid} valid users" in page.body()
    page.text_shown("Failed")
    page.shot("07-guard-failed")

    # What the page says is what happened: nobody was deleted.
    table = load_settings().users_table
    users = stack.clients.dynamodb.scan(TableName=table, Select="COUNT")["Count"]
    assert users == stack.demo.users

    # The check names the run to approve, with its own id.
    shown_ids = set(re.findall(r"approved_run_id: ([0-9a-f-]{36})", page.body()))
    assert shown_ids == {blocked_id}
    reviewed = report_of_run(stack, blocked_id)
    reviewed_deletes = set(reviewed.loc[reviewed["decision"] == "delete", "id"].astype(str))
    assert len(reviewed_deletes) == delete

    # A hold on one of the reviewed delete candidates, added from the UI after the review.
    held = sorted(reviewed_deletes)[0]
    open_hold_launchpad(page)
    page.clear_config()
    page.append_config(
        [
            "ops:",
            "  change_hold:",
            "    config:",
            "      action: add",
            f"      user_id: {held}",
            f"      reason: {HOLD_REASON}",
        ]
    )
    change = {"action": "add", "user_id": held, "reason": HOLD_REASON}
    assert editor_config(page) == {"ops": {"change_hold": {"config": change}}}
    page.shot("08-launchpad-hold")
    launch(page, "Launch Run")
    assert final_status(page) == "Success"
    page.shot("09-hold-added")

    # The blocked run approved from the launchpad, under the same tight limit.
    open_launchpad(page)
    page.replace_config_line("min_guarded_count: 25", "min_guarded_count: 0")
    page.replace_config_line("max_delete_fraction: 0.05", "max_delete_fraction: 0.01")
    (approved_by,) = shown_ids
    # The approval takes the line of the default, empty as_of (left out, it is the same).
    as_of_line = next(line.strip() for line in page.editor_text().splitlines() if "as_of:" in line)
    page.replace_config_line(as_of_line, f"approved_run_id: {approved_by}")
    page.append_config(IN_PROCESS)
    options = editor_config(page)["resources"]["run_options"]["config"]
    assert (options["approved_run_id"], options["dry_run"]) == (blocked_id, False)
    page.shot("10-launchpad-approval")
    approved_id = launch(page)
    assert approved_id not in (dry_run_id, blocked_id)
    assert final_status(page) == "Success"
    page.shot("11-approved-run-succeeded")

    # Its report: the held user exempt by the hold, the other reviewed candidates deleted.
    page.visit("/assets/cleanup_report")
    shown = metadata_table(page)
    assert shown["path"].endswith(f"_{approved_id}.parquet")
    assert shown["approved_run_id"] == blocked_id
    page.shot("12-approved-report")
    report = read_report(stack, shown["path"]).set_index("id")
    row = report.loc[held]
    assert (row["decision"], row["reason"], row["hold_reason"], row["outcome"]) == (
        "exempt",
        "hold",
        HOLD_REASON,
        "no_action",
    )
    expected = reviewed_deletes - {held}
    assert set(report.index[report["outcome"] == "deleted"]) == expected
    assert shown["outcome/deleted"] == str(len(expected))

    # AWS agrees: exactly the approved candidates are gone; the held user is still there.
    remaining = user_ids(stack)
    assert held in remaining
    assert len(remaining) == stack.demo.users - len(expected)
    assert not remaining & expected


REQUEST_JOB = "request_erase"
LIST_JOB = "request_list"
OPEN_REQUESTS = "//table[thead/tr/th[normalize-space(.)='days_left']]"


def materialize_single_asset_job(page: Page, job: str) -> str:
    """Launch a job of one asset from its page's launch menu and launchpad (its button reads
    "Materialize", not "Materialize all"); the new run's id."""
    page.visit("/jobs")
    page.click(f"//a[normalize-space(.)='{job}']", f"{job} in the list")
    page.find("//button[normalize-space(.)='Materialize']", "the Materialize button")
    page.click("//button[.//*[@aria-label='arrow_drop_down']]", "the launch menu")
    page.click_text("Open launchpad")
    page.find("//div[contains(@class, 'CodeMirror')]", "the config editor")
    return launch(page)


def scroll_to(page: Page, xpath: str, what: str) -> None:
    """Bring an element to the middle of its panel, its left edge in view, for the screenshot
    to show it."""
    element = page.find(xpath, what)
    page.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', inline: 'start'});", element
    )


def open_requests_shown(page: Page) -> list[dict[str, str]]:
    """The rows of the `open_requests` table in the metadata of `erasure_requests`, as shown."""
    table = page.find(OPEN_REQUESTS, "the open requests table")
    columns = [
        th.get_attribute("textContent").strip() for th in table.find_elements("xpath", ".//th")
    ]
    return [
        dict(zip(columns, (td.get_attribute("textContent").strip() for td in tds), strict=True))
        for row in table.find_elements("xpath", "./tbody/tr")
        if len(tds := row.find_elements("xpath", "./td")) == len(columns)
    ]


def test_operator_opens_an_erase_request_from_the_launchpad(stack: Stack, page: Page) -> None:
    """An erase request opened from the launchpad of `request_erase`, received 40 days ago:
    stored as the launchpad gave it, shown open and overdue with its due date once `request_list`
    has read the table, and done after the next run, which erases a user who is still active."""
    # A recent visitor: only the request makes the run erase them (the demo data is the same
    # for the same number of users).
    user_id = next(
        item["id"]["S"]
        for profile, item in demo_users(stack.demo.users, now_ms())
        if profile == "active"
    )
    assert user_id in user_ids(stack)
    received = format_ms((now_ms() - 40 * DAY_MS) // 1000 * 1000)
    page.visit("/jobs")
    page.click(f"//a[normalize-space(.)='{REQUEST_JOB}']", "the request job in the list")
    page.click_text("Launchpad")
    page.find("//button[normalize-space(.)='Launch Run']", "the Launch Run button")
    page.find("//div[contains(@class, 'CodeMirror')]", "the config editor")
    page.clear_config()
    page.append_config(
        [
            "ops:",
            "  open_erase_request:",
            "    config:",
            f"      user_id: {user_id}",
            "      ref: ticket 12",
            f"      received: '{received}'",
        ]
    )
    change = {"user_id": user_id, "ref": "ticket 12", "received": received}
    assert editor_config(page) == {"ops": {"open_erase_request": {"config": change}}}
    page.shot("13-launchpad-erase-request")
    launch(page, "Launch Run")
    assert final_status(page) == "Success"
    page.shot("14-erase-request-opened")
    settings = load_settings()
    [stored] = scan_requests(stack.clients.dynamodb, settings.requests_table)
    assert (stored.user_id, stored.ref, format_ms(stored.received_at)) == (
        user_id,
        "ticket 12",
        received,
    )

    # The request in the UI: `request_list` reads the table into the asset's metadata.
    materialize_single_asset_job(page, LIST_JOB)
    assert final_status(page) == "Success"  # the overdue check blocks nothing
    page.visit("/assets/erasure_requests")
    shown = metadata_table(page, "requests_open")
    assert (shown["requests_open"], shown["requests_overdue"]) == ("1", "1")
    [row] = open_requests_shown(page)
    assert {key: row[key] for key in ("id", "user_id", "kind", "received", "due")} == {
        "id": stored.id,
        "user_id": user_id,
        "kind": "erase",
        "received": received,
        "due": format_ms(stored.due_at),
    }
    assert -10.05 <= float(row["days_left"]) <= -10.0
    assert "@" not in page.body()
    scroll_to(page, "//table//td[normalize-space(.)='open_requests']", "the open requests")
    page.shot("15-open-request-listed")

    # The next run erases the user and closes the request.
    open_launchpad(page)
    page.append_config(IN_PROCESS)
    assert editor_config(page)["resources"]["run_options"]["config"]["dry_run"] is False
    run_id = launch(page)
    assert final_status(page) == "Success"
    page.visit("/assets/cleanup_report")
    shown = metadata_table(page)
    assert shown["path"].endswith(f"_{run_id}.parquet")
    assert (shown["erased"], shown["requests_done"]) == ("1", "1")
    scroll_to(page, "//table//td[normalize-space(.)='erased']", "the erased count")
    page.shot("16-erasure-run-report")
    row = read_report(stack, shown["path"]).set_index("id").loc[user_id]
    assert (row["decision"], row["outcome"], row["request"], row["request_status"]) == (
        "erase",
        "deleted",
        stored.id,
        "done",
    )
    [done] = scan_requests(stack.clients.dynamodb, settings.requests_table)
    assert (done.id, done.status, done.run_id) == (stored.id, RequestStatus.DONE, run_id)
    assert user_id not in user_ids(stack)

    # Listed again: nothing is open, and the deadline check passes.
    materialize_single_asset_job(page, LIST_JOB)
    assert final_status(page) == "Success"
    page.visit("/assets/erasure_requests")
    # The page may first show the run's own reading, taken before the erasure.
    none_open = "//tr[td[normalize-space(.)='requests_open'] and td[normalize-space(.)='0']]"
    page.find(none_open, "no open request")
    shown = metadata_table(page, "requests_open")
    assert (shown["requests_open"], shown["requests_overdue"]) == ("0", "0")
    assert open_requests_shown(page) == []
    page.visit("/assets/erasure_requests?view=checks")
    # The UI shortens a long check name in the middle.
    [(name, status)] = check_statuses(page).items()
    head, cut, tail = name.partition("…")
    assert name == DEADLINE_CHECK or (
        cut and DEADLINE_CHECK.startswith(head) and DEADLINE_CHECK.endswith(tail)
    )
    assert status == "Succeeded"
    page.shot("17-no-request-open")

"""The operator's review in a real browser: a dry run launched from the launchpad, its report
and checks, then a run stopped by a guard and the check that says why."""

import io

import pandas as pd
import pytest
import yaml

from cleanup_pipeline.core.settings import load_settings
from tests.support.browser_page import Page
from tests.support.ui_stack import Stack

JOB = "inactive_accounts_cleanup"
RUN_SECONDS = 300  # one run on a loaded 2-core machine
# The runs execute their steps in one process, as `cleanup-pipeline run` does: a process per
# step would make each run last minutes on a small machine without showing anything else.
IN_PROCESS = ["execution:", "  config:", "    in_process: {}"]

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def open_launchpad(page: Page) -> dict:
    page.visit("/jobs")
    page.click(f"//a[normalize-space(.)='{JOB}']", "the job in the list")
    page.text_shown("Materialize all")
    page.click("//button[.//*[@aria-label='arrow_drop_down']]", "the launch menu")
    page.click_text("Open launchpad")
    page.until(lambda _: "dry_run:" in page.editor_text(), "the default run config")
    page.text_shown("No errors")  # validated: the editor has settled
    return yaml.safe_load(page.editor_text())


def launch(page: Page) -> str:
    page.text_shown("No errors")
    page.click("//button[normalize-space(.)='Materialize']", "the Materialize button")
    page.until(lambda driver: "/runs/" in driver.current_url, "the new run's page")
    return page.driver.current_url.split("/runs/")[1].split("?")[0].split("/")[0]


def final_status(page: Page) -> str:
    status = page.find(
        "//*[normalize-space(text())='Success' or normalize-space(text())='Failure']",
        "the run's final status",
        RUN_SECONDS,
    )
    return status.text.strip()


def metadata_table(page: Page) -> dict[str, str]:
    """The Metadata section of an asset's overview: key to value as shown."""
    page.find("//table//td[normalize-space(.)='path']", "the report's metadata")
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


def test_operator_reviews_a_dry_run_and_a_blocked_run(stack: Stack, page: Page) -> None:
    # A dry run from the launchpad: its defaults, with dry_run switched on.
    defaults = open_launchpad(page)
    assert defaults["resources"]["run_options"]["config"] == {
        "allow_mass_action": False,
        "as_of": "",
        "dry_run": False,
    }
    page.replace_config_line("dry_run: false", "dry_run: true")
    page.append_config(IN_PROCESS)
    config = yaml.safe_load(page.editor_text())
    assert config["resources"]["run_options"]["config"]["dry_run"] is True
    assert config["execution"] == {"config": {"in_process": {}}}
    page.shot("01-launchpad-dry-run")
    dry_run_id = launch(page)
    assert final_status(page) == "Success"
    page.text_shown("RUN_SUCCESS")
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
    config = yaml.safe_load(page.editor_text())
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

"""Fixtures of the browser test: the operator's stack on loopback and a headless Chromium."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleanup_pipeline.aws.clients import make_clients
from cleanup_pipeline.cli.local_stack import LOCAL_INSTANCE_CONFIG
from cleanup_pipeline.core.settings import load_settings
from cleanup_pipeline.local.demo_data import seed_demo
from cleanup_pipeline.local.provision import provision
from tests.support.browser_page import CHROMEDRIVER, CHROMIUM, Page
from tests.support.items import now_ms
from tests.support.ui_stack import Stack, dagster_ui

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DEMO_USERS = 150
REPORTS_BUCKET = "cleanup-reports"


@pytest.fixture
def stack(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Moto with a small demo data set, and `dg dev` on the quick start's instance settings
    in the job's environment (runs launched from the UI inherit it). Reports go to an S3 bucket:
    their path on the page is then the same on every machine."""
    (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text(LOCAL_INSTANCE_CONFIG)
    reports = f"s3://{REPORTS_BUCKET}/runs"
    monkeypatch.setenv("CLEANUP_REPORTS_DIR", reports)
    settings = load_settings()
    clients = make_clients(settings)
    provision(clients, settings)
    clients.s3.create_bucket(Bucket=REPORTS_BUCKET)
    demo = seed_demo(clients, settings, DEMO_USERS, now_ms(), big_folder=3)
    with dagster_ui() as url:
        yield Stack(url=url, clients=clients, demo=demo, reports=reports)


@pytest.fixture
def page(stack: Stack) -> Iterator[Page]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium and ChromeDriver are missing: run scripts/system-packages.sh")
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    page = Page(stack.url, ARTIFACTS)
    try:
        yield page
    finally:
        page.close()

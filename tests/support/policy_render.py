"""The job's IAM policy rendered by `deploy/render_policy.py`, as an operator renders it."""

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from moto.core import DEFAULT_ACCOUNT_ID

from cleanup_pipeline.core.data_map import DataMap, load_data_map
from cleanup_pipeline.core.requests import EXPORT_VARIABLE
from cleanup_pipeline.core.settings import S3StepStorage, load_settings, step_storage_from_env

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = DEFAULT_ACCOUNT_ID
REPORTS_BUCKET = "increaser-ops"
STEP_OUTPUTS = S3StepStorage("increaser-steps", "steps")


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_policy", ROOT / "deploy/render_policy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_policy = _render_module()


def rendered_policy() -> dict:
    """The policy as an operator renders it for the current environment and data map."""
    settings = load_settings()
    export = os.environ.get(EXPORT_VARIABLE)
    values = render_policy.placeholders(settings, ACCOUNT, step_storage_from_env(), export)
    return render_policy.render(render_policy.TEMPLATE.read_text(), values, load_data_map(settings))


def full_policy(data_map: DataMap | None = None) -> dict:
    """The policy with every optional statement: reports, archive and step outputs on S3; for
    `data_map`, or the one the environment names."""
    settings = load_settings()
    values = {
        **render_policy.placeholders(settings, ACCOUNT, STEP_OUTPUTS),
        "ReportsBucket": REPORTS_BUCKET,
        "ReportsPrefix": "cleanup/",
        "ArchiveBucket": REPORTS_BUCKET,
        "ArchivePrefix": "archive/",
    }
    data_map = data_map or load_data_map(settings)
    return render_policy.render(render_policy.TEMPLATE.read_text(), values, data_map)

"""An independent IAM linter (parliament, with its community auditors) finds nothing in the
rendered policy, in its fullest form (reports and archive on S3), as rendered by default, and
for the data map with every store kind and coverage."""

import json
import warnings

import pytest

from cleanup_pipeline.core.data_map import MAP_VARIABLE, load_data_map
from cleanup_pipeline.core.settings import load_settings
from tests.support.data_maps import EVERY_KIND_MAP
from tests.support.policy_render import full_policy, rendered_policy

with warnings.catch_warnings():  # parliament imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import parliament


def findings(policy: dict) -> list[str]:
    analysed = parliament.analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    return [f"{f.issue}: {f.detail} at {f.location}" for f in analysed.findings]


@pytest.mark.parametrize("render", [full_policy, rendered_policy], ids=["full", "default"])
def test_the_rendered_policy_has_no_finding(render) -> None:
    assert findings(render()) == []


def test_the_policy_of_every_store_kind_has_no_finding() -> None:
    settings = load_settings()
    data_map = load_data_map(settings, {MAP_VARIABLE: str(EVERY_KIND_MAP)})
    assert data_map.coverage is not None and len({s.kind for s in data_map.stores}) == 4
    assert findings(full_policy(data_map)) == []


def test_the_linter_does_flag_a_careless_policy() -> None:
    """So that the test above cannot pass with a linter that checks nothing."""
    careless = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:PutObjekt", "Resource": "arn:aws:s3:::b/*"},
        ],
    }
    found = " ".join(findings(careless))
    assert "RESOURCE_STAR" in found and "UNKNOWN_ACTION" in found

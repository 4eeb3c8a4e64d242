"""The IAM policy rendered from the data map: per store exactly the actions its kind and action
need, on its own table, index or bucket prefix; the account listings only with coverage."""

import json

import pytest

from cleanup_pipeline.core.data_map import MAP_VARIABLE
from tests.support.data_maps import APP_MAP, AVATARS_BUCKET, EVERY_KIND_MAP
from tests.support.iam import Request, allowed
from tests.support.policy_render import ACCOUNT, full_policy, render_policy, rendered_policy

TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table"


def by_sid(policy: dict) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in policy["Statement"]}


@pytest.fixture
def every_kind(monkeypatch) -> dict[str, dict]:
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    return by_sid(rendered_policy())


def test_each_store_gets_exactly_what_its_kind_needs(every_kind) -> None:
    def grant(sid: str) -> tuple[object, object]:
        return every_kind[sid]["Action"], every_kind[sid]["Resource"]

    assert grant("ListAvatarsFolders") == (
        "s3:ListBucketVersions",
        f"arn:aws:s3:::{AVATARS_BUCKET}",
    )
    assert every_kind["ListAvatarsFolders"]["Condition"] == {
        "StringLike": {"s3:prefix": "avatars/*/"}
    }
    assert grant("DeleteAvatarsFiles") == (
        ["s3:DeleteObject", "s3:DeleteObjectVersion"],
        f"arn:aws:s3:::{AVATARS_BUCKET}/avatars/*/*",
    )
    assert grant("FeaturesTable") == (
        ["dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
        f"{TABLE}/features",
    )
    assert grant("DraftsTable") == (
        ["dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:PutItem"],
        f"{TABLE}/drafts",
    )
    assert grant("ScoreboardsTable") == (
        ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        f"{TABLE}/scoreboards",
    )
    assert grant("TeamsTable") == (
        ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem"],
        f"{TABLE}/teams",
    )
    assert grant("SessionsTable") == (
        ["dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:PutItem"],
        f"{TABLE}/sessions",
    )
    assert grant("CommentsTable") == (
        ["dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:PutItem"],
        f"{TABLE}/comments",
    )
    assert grant("CommentsIndex") == ("dynamodb:Query", f"{TABLE}/comments/index/byAuthor")
    tables = ["users", "emails", "holds", "features", "drafts", "scoreboards", "teams"]
    assert grant("DescribeTables") == (
        "dynamodb:DescribeTable",
        [f"{TABLE}/{name}" for name in [*tables, "sessions", "comments"]],
    )
    assert grant("CheckBucketVersioning") == (
        "s3:GetBucketVersioning",
        ["arn:aws:s3:::increaser-public", f"arn:aws:s3:::{AVATARS_BUCKET}"],
    )
    assert grant(render_policy.COVERAGE_SID) == (
        ["dynamodb:ListTables", "s3:ListAllMyBuckets"],
        "*",
    )


def test_the_policy_denies_what_no_store_needs(monkeypatch) -> None:
    monkeypatch.setenv(MAP_VARIABLE, str(EVERY_KIND_MAP))
    policy = full_policy()

    def s3(action: str, arn: str, **context: str) -> Request:
        return Request(action, f"arn:aws:s3:::{arn}", context)

    def db(action: str, resource: str) -> Request:
        return Request(action, f"{TABLE}/{resource}")

    for request in (
        s3("s3:ListBucketVersions", AVATARS_BUCKET, **{"s3:prefix": "avatars/u1/"}),
        s3("s3:DeleteObjectVersion", f"{AVATARS_BUCKET}/avatars/u1/a.png"),
        db("dynamodb:Query", "sessions"),
        db("dynamodb:Query", "comments/index/byAuthor"),
        db("dynamodb:DeleteItem", "drafts"),
        db("dynamodb:Scan", "teams"),
    ):
        assert allowed(policy, request), request
    for request in (
        s3("s3:ListBucketVersions", AVATARS_BUCKET, **{"s3:prefix": "other/"}),
        s3("s3:ListBucketVersions", AVATARS_BUCKET),
        s3("s3:DeleteObject", f"{AVATARS_BUCKET}/index.html"),
        s3("s3:ListBucket", AVATARS_BUCKET),  # the whole bucket
        s3("s3:GetObject", f"{AVATARS_BUCKET}/avatars/u1/a.png"),
        db("dynamodb:Query", "comments"),  # through the index only
        db("dynamodb:Query", "comments/index/byPost"),
        db("dynamodb:Scan", "sessions"),
        db("dynamodb:Scan", "comments"),
        db("dynamodb:DeleteItem", "features"),  # its attribute is removed, the item stays
        db("dynamodb:DeleteItem", "teams"),
        db("dynamodb:Scan", "scoreboards"),  # its items are named
        db("dynamodb:UpdateItem", "sessions"),
        db("dynamodb:DescribeTable", "invoices"),
        db("dynamodb:DeleteTable", "sessions"),
    ):
        assert not allowed(policy, request), request


def test_the_account_listings_are_granted_only_with_coverage(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MAP_VARIABLE, str(APP_MAP))
    text = json.dumps(rendered_policy())
    assert render_policy.COVERAGE_SID not in text and "ListAllMyBuckets" not in text
    covered = tmp_path / "map.yaml"
    covered.write_text(APP_MAP.read_text() + "\ncoverage: ['increaser-*']\n")
    monkeypatch.setenv(MAP_VARIABLE, str(covered))
    assert render_policy.COVERAGE_SID in by_sid(rendered_policy())


def test_the_app_map_renders_the_builtin_policy(monkeypatch) -> None:
    builtin = rendered_policy()
    monkeypatch.setenv(MAP_VARIABLE, str(APP_MAP))
    assert rendered_policy() == builtin


def test_a_store_named_like_a_job_statement_keeps_both_and_wildcards_are_refused(
    monkeypatch, tmp_path
) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("stores: {emails: {table: mail, partition_key: userId}}\n")
    monkeypatch.setenv(MAP_VARIABLE, str(path))
    sids = by_sid(rendered_policy())
    assert sids["EmailsTable"]["Resource"] == f"{TABLE}/emails"
    assert sids["StoreEmailsTable"]["Resource"] == f"{TABLE}/mail"
    path.write_text("stores: {sessions: {table: 'sess*', partition_key: userId}}\n")
    with pytest.raises(ValueError, match=r"must not contain .*stores\.sessions"):
        rendered_policy()

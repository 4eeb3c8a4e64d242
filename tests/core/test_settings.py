"""Environment settings out of range or malformed are refused at start, naming the variable."""

import pytest

from cleanup_pipeline.core.settings import load_settings

REQUIRED = {"APP_URL": "https://a", "EMAIL_DOMAIN": "a.test", "PUBLIC_BUCKET_NAME": "b"}


@pytest.mark.parametrize(
    ("template", "prefix"),
    [("{id}/", "u-1/"), ("users/{id}/", "users/u-1/"), ("{id}/{id}/", "u-1/u-1/")],
)
def test_the_user_folder_takes_the_id_only(template: str, prefix: str) -> None:
    settings = load_settings({**REQUIRED, "PUBLIC_BUCKET_USER_FOLDER": template})
    assert settings.user_prefix("u-1") == prefix


@pytest.mark.parametrize(
    "template",
    [
        "{id}/{x}/",  # passed the dry run, then failed every user mid-deletion
        "{id}/{}/",
        "{id}/{0}/",
        "{id!r}/",
        "{id:>5}/",
        "{{id}}/",
        "{id}/}/",
        "{id}/{/",
        "users/",
        "{id}",
    ],
)
def test_a_user_folder_with_any_other_brace_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match="PUBLIC_BUCKET_USER_FOLDER") as raised:
        load_settings({**REQUIRED, "PUBLIC_BUCKET_USER_FOLDER": template})
    assert "\n" not in str(raised.value)


def test_a_restore_window_over_ten_years_is_refused_saying_the_bound() -> None:
    with pytest.raises(ValueError) as raised:
        load_settings({**REQUIRED, "RESTORE_WINDOW_DAYS": "1e12"})
    assert str(raised.value) == (
        "RESTORE_WINDOW_DAYS must be a number of days from 0 (no restore window) to 3,650, "
        "not '1e12'"
    )

"""RESTORE_WINDOW_DAYS and CLEANUP_ARCHIVE_DIR (SPEC §6): defaults, fractions, and malformed
values named before any side effect."""

import pytest

from cleanup_pipeline.core.settings import load_settings

REQUIRED = {"APP_URL": "https://a", "EMAIL_DOMAIN": "a.test", "PUBLIC_BUCKET_NAME": "b"}


def test_defaults_are_thirty_days_and_a_local_archive() -> None:
    settings = load_settings(REQUIRED)
    assert (settings.restore_window_days, settings.archive_location) == (30.0, "archive")


@pytest.mark.parametrize(
    ("raw", "days"), [("0", 0.0), ("7", 7.0), ("0.5", 0.5), (" 2.25 ", 2.25), ("3650", 3650.0)]
)
def test_window_takes_whole_and_fractional_days(raw: str, days: float) -> None:
    assert load_settings({**REQUIRED, "RESTORE_WINDOW_DAYS": raw}).restore_window_days == days


@pytest.mark.parametrize(
    "raw", ["-1", "-0.5", "thirty", "nan", "-inf", "inf", "1e999", "30d", "1e12", "3650.5"]
)
def test_malformed_window_is_an_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="RESTORE_WINDOW_DAYS"):
        load_settings({**REQUIRED, "RESTORE_WINDOW_DAYS": raw})


def test_archive_on_s3_needs_a_bucket() -> None:
    located = load_settings({**REQUIRED, "CLEANUP_ARCHIVE_DIR": "s3://ops/archive"})
    assert located.archive_location == "s3://ops/archive"
    with pytest.raises(ValueError, match="CLEANUP_ARCHIVE_DIR"):
        load_settings({**REQUIRED, "CLEANUP_ARCHIVE_DIR": "s3:///archive"})


@pytest.mark.parametrize(
    ("archive", "reports"),
    [
        ("reports", "reports"),
        ("./reports/", "reports"),
        ("{cwd}/reports", "reports"),
        ("reports/archive", "reports"),  # inside
        ("reports/../reports/private", "reports"),
        (".", "reports"),  # containing
        ("ops", "ops/reports/daily"),
        ("{link}", "reports"),  # the same folder under another name
        ("s3://ops/cleanup", "s3://ops/cleanup/"),
        ("s3://ops/cleanup/archive", "s3://ops/cleanup"),
        ("s3://ops", "s3://ops/reports"),
        ("s3://ops/", "s3://ops/reports"),
    ],
)
def test_an_archive_overlapping_the_reports_is_an_error_naming_both(
    archive: str, reports: str, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "reports")
    env = {
        **REQUIRED,
        "CLEANUP_ARCHIVE_DIR": archive.format(cwd=tmp_path, link=tmp_path / "link"),
        "CLEANUP_REPORTS_DIR": reports,
    }
    with pytest.raises(ValueError, match=r"CLEANUP_ARCHIVE_DIR .*CLEANUP_REPORTS_DIR"):
        load_settings(env)


@pytest.mark.parametrize(
    ("archive", "reports"),
    [
        (None, None),  # the defaults: `archive` beside `reports`
        ("archive", None),
        ("reports-archive", "reports"),
        ("/srv/cleanup/archive", "/srv/cleanup/reports"),
        ("s3://ops/archive", "s3://ops/cleanup"),
        ("s3://ops/cleanup-archive", "s3://ops/cleanup"),
        ("s3://ops-private/cleanup", "s3://ops/cleanup"),
        ("s3://reports/x", "reports"),  # one on S3, the other local
    ],
)
def test_an_archive_apart_from_the_reports_is_accepted(
    archive: str | None, reports: str | None, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {**REQUIRED}
    env.update({"CLEANUP_ARCHIVE_DIR": archive} if archive else {})
    env.update({"CLEANUP_REPORTS_DIR": reports} if reports else {})
    settings = load_settings(env)
    assert settings.archive_location == (archive or "archive")


def test_an_erasure_has_its_own_window_zero_by_default() -> None:
    settings = load_settings(REQUIRED)
    assert settings.erasure_restore_window_days == 0.0
    assert settings.for_erasure().restore_window_days == 0.0
    seven = load_settings({**REQUIRED, "ERASURE_RESTORE_WINDOW_DAYS": "7"})
    assert (seven.restore_window_days, seven.for_erasure().restore_window_days) == (30.0, 7.0)


@pytest.mark.parametrize("raw", ["-1", "thirty", "nan", "inf", "3650.5"])
def test_a_malformed_erasure_window_is_an_error_naming_its_variable(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^ERASURE_RESTORE_WINDOW_DAYS must be"):
        load_settings({**REQUIRED, "ERASURE_RESTORE_WINDOW_DAYS": raw})

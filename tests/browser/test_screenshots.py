"""The screenshots of the docs (docs/operations.md, docs/requests.md) are files the browser test
saves, refreshed by one script."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_show_only_screenshots_the_browser_test_takes() -> None:
    pages = {name: (ROOT / "docs" / name).read_text() for name in ("operations.md", "requests.md")}
    shown = [
        name
        for text in pages.values()
        for name in re.findall(r"\(screenshots/([\w-]+)\.png\)", text)
    ]
    script = (ROOT / "scripts" / "refresh-screenshots.sh").read_text()
    refreshed = re.search(r"^shots=\(([^)]*)\)", script, re.MULTILINE)
    taken = re.findall(
        r'page\.shot\("([\w-]+)"\)', (ROOT / "tests/browser/test_run_review.py").read_text()
    )
    assert all("(screenshots/" in text for text in pages.values()), "a page shows no screenshot"
    assert refreshed is not None
    assert sorted(shown) == sorted(refreshed.group(1).split())
    assert set(shown) <= set(taken)
    for name in shown:
        assert (ROOT / "docs" / "screenshots" / f"{name}.png").stat().st_size > 10_000

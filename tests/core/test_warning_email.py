"""The warning email (SPEC §4, notify)."""

from html.parser import HTMLParser

import pytest

from cleanup_pipeline.core.decisions import Policy
from cleanup_pipeline.core.warning_email import render_warning


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.link_texts: list[str] = []
        self.text: list[str] = []
        self._in_link = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])
            self._in_link = True

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_link = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_link:
            self.link_texts.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def render(product="Increaser", url="https://app.increaser.org", policy=None):
    return render_warning(product, url, "increaser.org", policy or Policy())


def test_sender_and_subject():
    message = render()
    assert message.sender == "Increaser <noreply@increaser.org>"
    assert message.subject == "Important: Your Increaser Account is Scheduled for Deletion"


def test_body_names_product_durations_and_links_app():
    message = render()
    page = parse(message.html)
    text = " ".join(page.text)
    assert "Increaser" in text
    assert "60 days" in text
    assert "90 days" in text
    assert "30 days" in text
    assert page.hrefs == ["https://app.increaser.org"]
    assert page.link_texts == ["https://app.increaser.org"]
    for part in ("Increaser", "60 days", "90 days", "30 days", "https://app.increaser.org"):
        assert part in message.text


def test_durations_follow_the_policy():
    message = render(policy=Policy(notify_after_days=45, delete_after_days=52))
    text = " ".join(parse(message.html).text)
    for expected in ("45 days", "52 days", "7 days"):
        assert expected in text
        assert expected in message.text
    for default in ("60 days", "90 days", "30 days"):
        assert default not in text
        assert default not in message.text


HOSTILE_PRODUCT = '<b>&"Inc"'
HOSTILE_URL = 'https://app.example.com/?a="x"&b=<script>'


def test_interpolated_values_are_html_escaped():
    message = render(HOSTILE_PRODUCT, HOSTILE_URL)
    assert "<b>" not in message.html
    assert "<script>" not in message.html
    assert '"Inc"' not in message.html
    assert '"x"' not in message.html
    assert "&lt;b&gt;&amp;&quot;Inc&quot;" in message.html
    page = parse(message.html)
    assert "b" not in page.tags
    assert "script" not in page.tags
    assert set(page.tags) <= {"html", "body", "p", "a", "br"}
    # The browser sees exactly the original values.
    assert page.hrefs == [HOSTILE_URL]
    assert page.link_texts == [HOSTILE_URL]
    assert HOSTILE_PRODUCT in " ".join(page.text)


def test_plain_text_part_and_headers_carry_values_verbatim():
    message = render(HOSTILE_PRODUCT, HOSTILE_URL)
    assert HOSTILE_PRODUCT in message.text
    assert HOSTILE_URL in message.text
    assert message.subject == f"Important: Your {HOSTILE_PRODUCT} Account is Scheduled for Deletion"
    assert message.sender == f"{HOSTILE_PRODUCT} <noreply@increaser.org>"


@pytest.mark.parametrize("product", ["Increaser", "Acme & Co"])
def test_product_name_in_subject(product):
    assert render(product).subject == (
        f"Important: Your {product} Account is Scheduled for Deletion"
    )

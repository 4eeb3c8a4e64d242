"""Headless Chromium driven through the distribution's ChromeDriver, with waits on what the page
shows rather than on time."""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without these Chromium reaches for the network (updates, sync, QUIC probes) and hangs where
# only loopback is reachable; root needs --no-sandbox.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1100",
)
EDITOR_LINES = "//pre[contains(@class, 'CodeMirror-line')]"


def xpath_literal(text: str) -> str:
    return f"'{text}'" if "'" not in text else f'"{text}"'


class Page:
    """One browser tab on the Dagster UI at `base_url`; screenshots go to `artifacts`."""

    def __init__(self, base_url: str, artifacts: Path, wait_seconds: float = 60) -> None:
        self.base_url = base_url
        self.artifacts = artifacts
        self.wait_seconds = wait_seconds
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self._profile}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)

    def visit(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def until(
        self, condition: Callable[[Any], Any], what: str, seconds: float | None = None
    ) -> Any:
        wait = WebDriverWait(
            self.driver,
            seconds or self.wait_seconds,
            poll_frequency=0.5,
            # Re-rendered or briefly covered elements: the next poll finds them again.
            ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException),
        )
        try:
            return wait.until(condition)
        except TimeoutException as error:
            self.shot(f"failed-waiting-for-{what.replace(' ', '-')[:40]}")
            raise AssertionError(f"the page never showed {what}") from error

    def find(self, xpath: str, what: str, seconds: float | None = None) -> WebElement:
        return self.until(ec.visibility_of_element_located((By.XPATH, xpath)), what, seconds)

    def click(self, xpath: str, what: str) -> None:
        self.act(xpath, what, lambda element: element.click())

    def act(self, xpath: str, what: str, action: Callable[[WebElement], None]) -> None:
        """Find the element and act on it, again if the page re-rendered it meanwhile."""

        def attempt(driver: Any) -> bool:
            element = driver.find_element(By.XPATH, xpath)
            if not (element.is_displayed() and element.is_enabled()):
                return False
            action(element)
            return True

        self.until(attempt, what)

    def click_text(self, text: str) -> None:
        self.click(f"//*[normalize-space(text())={xpath_literal(text)}]", repr(text))

    def text_shown(self, text: str, seconds: float | None = None) -> WebElement:
        """The innermost visible element whose own text is exactly `text`."""
        return self.find(f"//*[normalize-space(text())={xpath_literal(text)}]", repr(text), seconds)

    def body(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def shot(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    # The launchpad's YAML editor (CodeMirror), edited with the keyboard as an operator would.

    def editor_text(self) -> str:
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.CodeMirror'))"
            ".map(e => e.CodeMirror.getValue()).join('')"
        )

    def _close_completions(self) -> ActionChains:
        """Keys that first close a completion list typing left open: it can cover the line to
        click next, and the click would then pick a completion instead."""
        return ActionChains(self.driver).send_keys(Keys.ESCAPE)

    def replace_config_line(self, current: str, new: str) -> None:
        """Select the editor line that reads `current` (indentation aside) and type `new`."""

        def retype(line: WebElement) -> None:
            keys = self._close_completions().click(line).send_keys(Keys.END)
            keys = keys.key_down(Keys.SHIFT).send_keys(Keys.HOME).key_up(Keys.SHIFT)
            keys.send_keys(new, Keys.ESCAPE).perform()

        # Only that line changes, its indentation kept: a click on another line shows here.
        before = self.editor_text().split("\n")
        at = [text.strip() for text in before].index(current)
        indent = before[at][: len(before[at]) - len(before[at].lstrip())]
        expected = "\n".join([*before[:at], indent + new, *before[at + 1 :]])
        line = f"{EDITOR_LINES}[normalize-space(.)={xpath_literal(current)}]"
        self.act_on_editor_line(line, current, f"the config line {current!r}", retype)
        self.until(lambda _: self.editor_text() == expected, f"{new!r} in place of {current!r}")

    def act_on_editor_line(
        self, xpath: str, text: str | None, what: str, action: Callable[[WebElement], None]
    ) -> None:
        """Act on the editor line whose trimmed text is `text` (the last line if None). The
        editor panel scrolls and CodeMirror renders only the lines near its view: scroll the
        editor to the line, then the line into the panel's view."""

        def attempt(driver: Any) -> bool:
            driver.execute_script(
                "const cm = document.querySelector('.CodeMirror').CodeMirror;"
                "const n = arguments[0] === null ? cm.lineCount() - 1"
                " : cm.getValue().split('\\n').findIndex(l => l.trim() === arguments[0]);"
                "if (n >= 0) cm.scrollIntoView({line: n, ch: 0}, 80);",
                text,
            )
            found = driver.find_elements(By.XPATH, xpath)
            if not found:
                return False
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
            if not (found[0].is_displayed() and found[0].is_enabled()):
                return False
            action(found[0])
            return True

        self.until(attempt, what)

    def clear_config(self) -> None:
        """Select everything in the editor and delete it."""

        def delete_all(last: WebElement) -> None:
            keys = ActionChains(self.driver).click(last).key_down(Keys.CONTROL).send_keys("a")
            keys.key_up(Keys.CONTROL).send_keys(Keys.DELETE).perform()

        self.act_on_editor_line(
            f"({EDITOR_LINES})[last()]", None, "the last config line", delete_all
        )
        self.until(lambda _: not self.editor_text().strip(), "an empty config")

    def append_config(self, lines: list[str]) -> None:
        """Type `lines` (YAML with their own indentation) at the end of the editor."""

        def type_lines(last: WebElement) -> None:
            keys = self._close_completions().click(last).key_down(Keys.CONTROL)
            keys = keys.send_keys(Keys.END).key_up(Keys.CONTROL)
            for line in lines:
                # Escape closes a completion list the line left open, which Return would pick
                # from; Home twice: to the line's start even after CodeMirror indented it.
                keys = keys.send_keys(Keys.ESCAPE, Keys.RETURN)
                keys = keys.key_down(Keys.SHIFT).send_keys(Keys.HOME)
                keys = keys.send_keys(Keys.HOME).key_up(Keys.SHIFT).send_keys(line)
            keys.send_keys(Keys.ESCAPE).perform()

        self.act_on_editor_line(
            f"({EDITOR_LINES})[last()]", None, "the last config line", type_lines
        )
        self.until(lambda _: lines[-1] in self.editor_text(), "the appended config")

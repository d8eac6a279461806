"""`leakwarden review` in Debian's real headless chromium: log in, filter, triage, undo.

`make test` installs chromium and chromedriver when missing and it may (scripts/ensure-chromium.sh);
the test skips, loudly, only when they are still absent outside CI; in CI (CI set, as .ci/run does)
a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from bot.store import Store

from .conftest import TOKEN

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
DOCS = Path(__file__).resolve().parents[3] / "docs"


def browser_or_skip():
    if CHROMIUM and DRIVER:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1400,1000"):
            options.add_argument(arg)
        return webdriver.Chrome(service=Service(DRIVER), options=options)
    message = ("REVIEW BROWSER TEST NOT RUN: Debian's chromium and chromium-driver are not "
               "installed (apt-get install chromium chromium-driver)")
    if os.environ.get("CI"):
        pytest.fail(message + " — make test (scripts/ensure-chromium.sh) should have installed them")
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(review_cfg, review_history):
    port = free_port()
    env = {**os.environ, "LEAKWARDEN_REVIEW_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import main; main()", "review", "-c",
         str(review_cfg), "--listen", f"127.0.0.1:{port}", "--actor", "alice"],
        env=env, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "leakwarden review: http://127.0.0.1:" in line, line
    assert TOKEN in line
    yield f"http://127.0.0.1:{port}", review_history
    proc.terminate()
    proc.wait(10)


def test_click_through_a_triage_in_chromium(served, review_cfg, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, history = served
    browser = browser_or_skip()
    try:
        browser.get(f"{base}/hits")
        assert "Token required" in browser.title
        browser.get(f"{base}/login?token={TOKEN}")
        assert browser.current_url == f"{base}/hits"
        rows = browser.find_elements(By.CSS_SELECTOR, "a.hit")
        assert len(rows) == 4
        # Hostile text shows as text: no alert fired, no injected <img> in the DOM.
        assert browser.find_elements(By.CSS_SELECTOR, "td.excerpt img") == []
        assert "<script>alert(1)</script>" in browser.find_element(By.TAG_NAME, "main").text
        shot(browser, tmp_path, "review-hits.png")

        # Narrow with a facet, then open the Slack hit.
        click(browser, browser.find_element(By.LINK_TEXT, "slack"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "a.hit")) == 1
        click(browser, browser.find_element(By.CSS_SELECTOR, "a.hit"))
        assert browser.find_element(By.CSS_SELECTOR, "blockquote mark").text == "L4rkspur"

        # False positive for the whole community.
        fp = browser.find_element(By.CSS_SELECTOR, "form.triage button.fp").find_element(
            By.XPATH, "..")
        Select(fp.find_element(By.NAME, "scope")).select_by_value("community")
        click(browser, fp.find_element(By.TAG_NAME, "button"))
        # The incident also reached Discord: it stays open for those hits.
        flash = browser.find_element(By.CSS_SELECTOR, ".flash").text
        assert "1 hit marked false positive in community slack/T1" in flash
        assert "stays open for 2 hits outside that community" in flash
        assert "open" in browser.find_element(By.CSS_SELECTOR, "h1 + blockquote ~ p").text
        assert "false positive" in browser.find_element(By.CSS_SELECTOR, "table.kv").text

        # The memory is listed, and undone with one click.
        click(browser, browser.find_element(By.LINK_TEXT, "False-positive memory"))
        assert "community" in browser.find_element(By.CSS_SELECTOR, "table.list tbody").text
        click(browser, browser.find_element(By.XPATH, "//button[text()='Undo']"))
        assert "#1 undone" in browser.find_element(By.CSS_SELECTOR, ".flash").text

        # Back on the hit: reopen, acknowledge, note.
        browser.get(f"{base}/hits/{history[1].hit_id}")
        click(browser, browser.find_element(By.XPATH, "//button[text()='Reopen']"))
        click(browser, browser.find_element(By.XPATH, "//button[text()='Acknowledge']"))
        note = browser.find_element(By.CSS_SELECTOR, "input[name=note]")
        note.send_keys("asked Slack admins to delete it")
        click(browser, note.find_element(By.XPATH, "../button"))
        history_text = browser.find_element(By.XPATH, "//h2[text()='History']/following::ul"
                                            ).text
        assert "ack by review:alice" in history_text and "asked Slack admins" in history_text
        shot(browser, tmp_path, "review-hit.png")
    finally:
        browser.quit()

    async def events():
        store = await Store.open(review_cfg.parent / "leakwarden.db")
        try:
            return [(e.action, e.actor) for e in (await store.get_hit(history[1].hit_id)).triage]
        finally:
            await store.close()

    assert asyncio.run(events()) == [("fp", "review:alice"), ("unsuppress", "review:alice"),
                                     ("reopen", "review:alice"), ("ack", "review:alice"),
                                     ("note", "review:alice")]


def click(browser, element) -> None:
    """Click and wait until the page it leads to has replaced this one."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(element))


def shot(browser, tmp_path: Path, name: str) -> None:
    """A screenshot (PNG) in tmp; also into docs/ when LEAKWARDEN_DOCS_SCREENSHOTS=1."""
    target = tmp_path / name
    assert browser.save_screenshot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("LEAKWARDEN_DOCS_SCREENSHOTS") == "1":
        shutil.copy(target, DOCS / name)

"""app.py in a real browser: Debian's Chromium driven by Playwright against the real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_home: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSBOT_")}
    process = subprocess.Popen([sys.executable, "app.py", "--home", str(trained_home), "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:  # "Running on" is printed before the server answers: poll the API instead
        try:
            urllib.request.urlopen(f"{url}/gradio_api/info", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"app.py did not start:\n{process.stdout.read()}")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash .ci/setup` (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def send(page, text: str) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def test_customer_gets_a_curated_answer_and_a_fallback(server, browser):
    page = browser.new_page()
    page.goto(server)
    send(page, "Do you offer gift wrapping?")
    expect(page.get_by_test_id("bot").last).to_contain_text("gift wrapping is £4.50", timeout=30_000)
    send(page, "my cat ate the invoice, what now")
    expect(page.get_by_test_id("bot").last).to_contain_text("talk to a person", timeout=30_000)
    expect(page.get_by_test_id("user")).to_have_count(2)
    page.close()


def test_customer_html_is_shown_as_text(server, browser):
    page = browser.new_page()
    page.goto(server)
    hostile = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b> [link](javascript:alert(1))'
    send(page, hostile)
    expect(page.get_by_test_id("user").last).to_contain_text("<b>bold</b>", timeout=30_000)
    assert page.title() != "pwned"
    assert page.locator("[data-testid=user] img, [data-testid=user] b, [data-testid=user] a").count() == 0
    page.close()


def test_each_browser_session_has_its_own_conversation(server, browser):
    first, second = browser.new_page(), browser.new_page()
    first.goto(server)
    second.goto(server)
    send(first, "hello there")
    expect(first.get_by_test_id("bot").last).to_be_visible(timeout=30_000)
    expect(second.get_by_test_id("user")).to_have_count(0)
    first.close()
    second.close()

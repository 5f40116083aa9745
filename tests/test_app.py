"""app.py in a real browser: Debian's Chromium driven by Playwright against the real server,
started on a free port on a copy of the CLI-trained tiny home. Customers at /, staff at /staff,
admins at /admin, and what anonymous visitors and staff accounts may not do."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import clean_environment, free_port, launch_app, open_row, wait_for_app
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

ADMIN_PASSWORD = "admin-browser-test-pw"
IDENTITY_SECRET = "the-shops-identity-secret-of-32-chars!"
STAFF = ("sam", "sam-browser-test-pw")


def start_app(home: Path, port: int, output: Path, env: dict) -> subprocess.Popen:
    process = launch_app(home, port, output, env)
    wait_for_app(process, port, output, timeout=120)
    return process


@dataclass
class Server:
    url: str
    home: Path
    output: Path
    port: int
    env: dict
    process: subprocess.Popen
    shop_port: int = 0  # the shop's own site (another origin) that may show the widget: http://localhost:<port>

    def store(self):
        from csbot.store import Store

        return Store.open(self.home / "csbot.db")

    def chat(self, message: str, conversation_id: str | None = None) -> tuple[dict, float]:
        """POST /api/chat; returns the JSON reply and the seconds it took."""
        body = json.dumps({"conversation_id": conversation_id, "message": message}).encode()
        request = urllib.request.Request(f"{self.url}/api/chat", data=body, headers={"content-type": "application/json"})
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read()), time.monotonic() - started

    def restart(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.process = start_app(self.home, self.port, self.output, self.env)


@pytest.fixture(scope="module")
def server(trained_home: Path, tmp_path_factory):
    from csbot.service.auth import Accounts
    from csbot.store import Store

    home = tmp_path_factory.mktemp("web") / "home"
    shutil.copytree(trained_home, home)
    # A retrain from the admin page must stay short: 24 messages, a few steps.
    (home / "csbot.toml").write_text("[csbot]\nepochs = 2\nbatch_size = 8\n")
    Accounts(Store.open(home / "csbot.db")).create(STAFF[0], STAFF[1], role="staff")
    port, shop_port = free_port(), free_port()
    env = clean_environment(CSBOT_ADMIN_PASSWORD=ADMIN_PASSWORD, CSBOT_WIDGET_ORIGINS=f"http://localhost:{shop_port}",
                            CSBOT_IDENTITY_SECRET=IDENTITY_SECRET)
    output = home / "server.log"
    process = start_app(home, port, output, env)
    server = Server(f"http://127.0.0.1:{port}", home, output, port, env, process, shop_port)
    yield server
    server.process.terminate()
    server.process.wait(timeout=20)


def reload_after_restart(page, timeout: float = 60) -> None:
    """Reload a page that was open while its server restarted. Gradio's frontend reloads the page
    by itself once it reconnects (it polls every 2 s), so our reload can race its own and find the
    old document detached: retry until one reload lands."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            page.reload()
            return
        except PlaywrightError:
            if time.monotonic() > deadline:
                raise
            page.wait_for_load_state()


def send(page, text: str) -> None:
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def log_in(page, url: str, name: str, password: str) -> None:
    page.goto(url)  # an anonymous visitor is sent to our login form
    fill_login(page, name, password)


def fill_login(page, name: str, password: str) -> None:
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_first_admin_is_made_from_the_environment_and_no_password_is_printed(server):
    log = server.output.read_text()
    assert "created the admin account 'admin' with the password from CSBOT_ADMIN_PASSWORD" in log
    assert ADMIN_PASSWORD not in log


def test_customer_gets_a_template_reply_rates_it_and_is_offered_a_person(server, browser):
    page = browser.new_page()
    page.goto(server.url)
    send(page, "how do I return the mugs I bought")
    expect(page.get_by_test_id("bot").last).to_contain_text("within 30 days", timeout=30_000)
    page.get_by_label("Like").last.click()
    store = server.store()
    [conversation] = [c for c in store.db.rows("SELECT * FROM conversations") if store.messages(c["id"])
                      and store.messages(c["id"])[0]["text"] == "how do I return the mugs I bought"]
    reply = store.messages(conversation["id"])[1]
    assert reply["route"] == "template" and reply["intent"] == "return_item"
    deadline = time.monotonic() + 10
    while store.message(reply["id"])["rating"] != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.message(reply["id"])["rating"] == 1

    send(page, "my cat ate the invoice, what now")
    expect(page.get_by_test_id("bot").last).to_contain_text("talk to a person", timeout=30_000)
    page.get_by_role("button", name="Talk to a person").click()
    expect(page.get_by_test_id("bot").last).to_contain_text("asked a member of our team", timeout=30_000)
    assert store.conversation(conversation["id"])["owner"] == "human"
    page.reload()  # the conversation lives in the browser: it survives a reload
    expect(page.get_by_test_id("user")).to_have_count(2, timeout=30_000)
    page.close()


def test_customer_html_is_shown_as_text(server, browser):
    page = browser.new_page()
    page.goto(server.url)
    hostile = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b> [link](javascript:alert(1))'
    send(page, hostile)
    expect(page.get_by_test_id("user").last).to_contain_text("<b>bold</b>", timeout=30_000)
    assert page.title() != "pwned"
    assert page.locator("[data-testid=user] img, [data-testid=user] b, [data-testid=user] a").count() == 0
    page.close()


def test_each_browser_session_has_its_own_conversation(server, browser):
    first, second = browser.new_page(), browser.new_page()
    first.goto(server.url)
    second.goto(server.url)
    send(first, "hello there")
    expect(first.get_by_test_id("bot").last).to_be_visible(timeout=30_000)
    second.reload()
    expect(second.get_by_label("Your message")).to_be_visible()
    expect(second.get_by_test_id("user")).to_have_count(0)
    first.close()
    second.close()


@pytest.mark.parametrize("path", ["/staff/", "/admin/"])
def test_anonymous_visitors_get_a_login_form_not_the_page(server, browser, path):
    page = browser.new_page()
    page.goto(server.url + path)
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Inbox")).to_have_count(0)
    expect(page.get_by_text("Retrain")).to_have_count(0)
    page.close()


def test_a_staff_account_cannot_log_in_to_admin(server, browser):
    page = browser.new_page()
    log_in(page, server.url + "/admin/", *STAFF)
    expect(page.get_by_text("needs an admin account", exact=False)).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Retrain")).to_have_count(0)
    page.close()


def test_admin_retrains_watches_progress_reads_the_report_and_promotes_while_the_chat_answers(server, browser):
    page = browser.new_page()
    log_in(page, server.url + "/admin/", "admin", ADMIN_PASSWORD)
    status = page.locator("#training-status")
    expect(page.get_by_role("button", name="Start training")).to_be_visible(timeout=30_000)
    before = server.store().current_model()["id"]
    page.get_by_role("button", name="Start training").click()
    expect(status).to_contain_text("running", timeout=30_000)
    # the chat keeps answering while the child process trains
    answered = []
    while server.store().jobs(limit=1)[0]["status"] == "running" and len(answered) < 20:
        reply, seconds = server.chat("Do you offer gift wrapping?")
        answered.append((reply["route"], seconds))
    assert answered and all(route == "answer" for route, _ in answered)
    expect(status).to_contain_text("New version", timeout=180_000)
    job = server.store().jobs(limit=1)[0]
    assert job["status"] == "done" and job["step"] == job["total"] > 0
    expect(status).to_contain_text(f"step {job['total']} / {job['total']}")
    page.get_by_role("button", name=f"Show the report of {job['model_version']}").click()
    expect(page.get_by_role("heading", name=job["model_version"])).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Gate: ")).to_be_visible()
    expect(page.get_by_role("tabpanel").locator("img").first).to_be_visible()
    assert server.store().current_model()["id"] == before  # waits for an admin: not promoted by itself
    page.get_by_role("button", name="Promote this version").click()
    deadline = time.monotonic() + 30
    while server.store().current_model()["id"] != job["model_version"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.store().current_model()["id"] == job["model_version"]
    health = json.loads(urllib.request.urlopen(f"{server.url}/api/health").read())
    assert health["model_version"] == job["model_version"]  # swapped in the running server
    # served as exported by the run (its export phase), the answers by the cached ONNX encoder
    assert health["runtime"]["classifier"].startswith("onnxruntime ")
    assert health["runtime"]["answers"].startswith("onnxruntime ")
    reply, _ = server.chat("Do you offer gift wrapping?")
    assert reply["route"] == "answer"
    page.close()


def test_staff_answer_an_unknown_question_from_the_inbox_and_the_next_customer_gets_it(server, browser):
    customer = browser.new_page()
    customer.goto(server.url)
    send(customer, "do you sell gift cards for birthdays")
    expect(customer.get_by_test_id("bot").last).to_contain_text("talk to a person", timeout=30_000)

    staff = browser.new_page()
    log_in(staff, server.url + "/staff/", *STAFF)
    open_row(staff, "do you sell gift cards for birthdays", shown_in=staff.get_by_label("New answer key"),
             value=re.compile("gift_cards"))
    staff.get_by_label("New answer key").fill("gift_cards")
    staff.get_by_label("New answer text").fill("Yes: Bramble & Birch gift cards come in any amount from £10.")
    staff.get_by_role("button", name="Save as a new answer").click()
    expect(staff.get_by_text("Saved answer gift_cards")).to_be_visible(timeout=30_000)

    other = browser.new_page()  # the very next customer, no retraining in between
    other.goto(server.url)
    send(other, "Do you sell gift cards?")
    expect(other.get_by_test_id("bot").last).to_contain_text("gift cards come in any amount", timeout=30_000)
    for page in (customer, staff, other):
        page.close()


def test_staff_take_over_a_handed_off_chat_and_the_customer_sees_the_reply_without_reloading(server, browser):
    customer = browser.new_page()
    customer.goto(server.url)
    send(customer, "hello, live chat test here")
    expect(customer.get_by_test_id("bot").last).to_be_visible(timeout=30_000)
    customer.get_by_role("button", name="Talk to a person").click()
    expect(customer.get_by_test_id("bot").last).to_contain_text("asked a member of our team", timeout=30_000)
    [cid] = [r["conversation_id"] for r in server.store().db.rows(
        "SELECT conversation_id FROM messages WHERE text = 'hello, live chat test here'")]

    staff = browser.new_page()
    log_in(staff, server.url + "/staff/", *STAFF)
    staff.get_by_role("tab", name="Live conversations").click()
    open_row(staff, cid, shown_in=staff.get_by_label("Conversation", exact=True))
    staff.get_by_label("Your reply to the customer").fill("Hi, Sam from the team here. How can I help?")
    staff.get_by_role("button", name="Send", exact=True).click()
    expect(customer.get_by_test_id("bot").last).to_contain_text("Sam from the team here", timeout=60_000)
    send(customer, "my parcel is late")  # a person owns the chat: the bot stays quiet
    expect(staff.get_by_test_id("user").last).to_contain_text("my parcel is late", timeout=60_000)
    staff.get_by_role("button", name="Hand back to bot").click()
    expect(customer.get_by_test_id("bot").last).to_contain_text("handed this chat back", timeout=60_000)
    for page in (customer, staff):
        page.close()


def test_the_pages_make_no_outside_request(server, browser):
    page = browser.new_page()
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((server.url, "data:", "blob:")) else None)
    page.goto(server.url)
    send(page, "hello")
    expect(page.get_by_test_id("bot").last).to_be_visible(timeout=30_000)
    log_in(page, server.url + "/admin/", "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("button", name="Start training")).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name="Dashboard").click()
    page.wait_for_load_state("networkidle")
    assert outside == []
    page.close()


def test_staff_log_out_and_a_password_reset_from_the_cli_ends_their_session(server, browser):
    from conftest import csbot

    page = browser.new_page()
    log_in(page, server.url + "/staff/", *STAFF)
    expect(page.get_by_role("tab", name="Live conversations")).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="Log out").click()
    expect(page.get_by_role("heading", name="Log out of csbot?")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Log out").click()  # a link alone logs nobody out: the form does
    expect(page.get_by_text("You are logged out")).to_be_visible(timeout=30_000)
    page.goto(server.url + "/staff/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=30_000)

    log_in(page, server.url + "/staff/", *STAFF)
    expect(page.get_by_role("tab", name="Live conversations")).to_be_visible(timeout=60_000)
    reset = csbot("user", "reset", STAFF[0], home=server.home, stdin="sam-new-browser-pw\n")
    assert reset.returncode == 0, reset.stderr
    page.reload()  # the running server reads sessions from the store: this one is gone
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=30_000)
    fill_login(page, STAFF[0], "sam-new-browser-pw")
    expect(page.get_by_role("tab", name="Live conversations")).to_be_visible(timeout=60_000)
    page.close()


def test_a_customer_keeps_their_conversation_and_staff_logins_survive_a_restart(server, browser):
    customer = browser.new_page()
    customer.goto(server.url)
    send(customer, "hello before the restart")
    expect(customer.get_by_test_id("bot").last).to_be_visible(timeout=60_000)
    from csbot.service.auth import Accounts

    Accounts(server.store()).create("rita", "rita-browser-test-pw", role="staff")  # her own: no test before this one matters
    staff = browser.new_page()
    log_in(staff, server.url + "/staff/", "rita", "rita-browser-test-pw")
    expect(staff.get_by_role("tab", name="Live conversations")).to_be_visible(timeout=60_000)

    server.restart()
    reload_after_restart(customer)
    expect(customer.get_by_test_id("user").first).to_contain_text("hello before the restart", timeout=60_000)
    send(customer, "and after it")
    expect(customer.get_by_test_id("user")).to_have_count(2, timeout=60_000)
    conversations = {m["conversation_id"] for m in server.store().db.rows(
        "SELECT conversation_id FROM messages WHERE text IN ('hello before the restart', 'and after it')")}
    assert len(conversations) == 1  # the same conversation, not a new one
    reload_after_restart(staff)  # the session is in the store: no new login after a restart
    expect(staff.get_by_role("tab", name="Live conversations")).to_be_visible(timeout=60_000)
    for page in (customer, staff):
        page.close()


@dataclass
class ShopSite:
    """The shop's own site on another origin: pages carrying only the script tag."""
    url: str
    root: Path
    widget: str

    def page(self, name: str, *, link: str, tag_attributes: str = "") -> None:
        (self.root / f"{name}.html").write_text(
            f'<!doctype html><html lang="en"><head><title>Shop page {name}</title></head><body><main>'
            f'<h1>Bramble &amp; Birch, page {name}</h1><a href="/{link}.html">Page {link}</a></main>'
            f'<script src="{self.widget}" {tag_attributes} defer></script></body></html>', encoding="utf-8")


@pytest.fixture(scope="module")
def shop_site(server, tmp_path_factory):
    import functools
    import http.server
    import threading

    site = ShopSite(f"http://localhost:{server.shop_port}", tmp_path_factory.mktemp("shop-site"),
                    f"{server.url}/widget.js")
    site.page("one", link="two")
    site.page("two", link="one")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site.root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", server.shop_port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield site
    httpd.shutdown()


AXE = Path(__file__).resolve().parent.parent / ".ci" / "node_modules" / "axe-core" / "axe.min.js"
WIDGET_BUDGET = 40 * 1024  # everything the widget makes a browser fetch, before any compression


def serious_violations(frame, context: str = "document") -> list[str]:
    """axe-core's serious and critical findings in a frame (the npm package, put in by .ci/setup;
    evaluated over the DevTools protocol, which the page's CSP does not govern)."""
    frame.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found = frame.evaluate("async (context) => (await axe.run(context === 'document' ? document : {include: "
                           "JSON.parse(context)})).violations.filter(v => ['serious', 'critical'].includes(v.impact))"
                           ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))", context)
    return found


def test_the_widget_on_the_shops_own_pages_follows_the_customer_and_hears_staff_live(server, shop_site, browser):
    page = browser.new_page()
    fetched = {}
    page.on("response", lambda r: fetched.__setitem__(r.url, len(r.body())) if r.url.startswith(server.url)
            and r.request.method == "GET" and "/api/" not in r.url else None)
    page.goto(f"{shop_site.url}/one.html")
    page.get_by_role("button", name=re.compile(r"^Chat with")).click()
    frame = page.frame_locator("iframe.csbot-frame")
    box = frame.get_by_label("Your message")
    box.fill("Do you offer gift wrapping?")
    box.press("Enter")
    expect(frame.locator("#log li.bot")).to_contain_text("gift wrapping", timeout=30_000)
    frame.get_by_role("button", name="Helpful", exact=True).click()  # the thumbs, as on the chat page
    expect(frame.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    assert {u.removeprefix(server.url) for u in fetched} == {"/widget.js", "/widget", "/widget/frame.js",
                                                                "/widget/frame.css"}
    assert sum(fetched.values()) <= WIDGET_BUDGET, fetched
    window = next(f for f in page.frames if f.url == f"{server.url}/widget")
    assert serious_violations(window) == []  # the chat window, with a conversation in it
    assert serious_violations(page.main_frame, '[".csbot-launcher", ".csbot-frame"]') == []  # what the tag adds
    cid = page.evaluate(f"localStorage.getItem('csbot-conversation:{server.url}')")  # kept on the shop's side
    assert cid and cid not in page.url
    assert [m["rating"] for m in server.store().messages(cid) if m["role"] == "bot"] == [1]

    page.get_by_role("link", name="Page two").click()  # another page of the shop: the same conversation
    page.get_by_role("button", name=re.compile(r"^Chat with")).click()
    frame = page.frame_locator("iframe.csbot-frame")
    expect(frame.locator("#log li.customer")).to_have_text(["Do you offer gift wrapping?"], timeout=30_000)
    server.store().add_message(cid, role="staff", text="Hello, Sam here", author="sam")  # a staff reply...
    expect(frame.locator("#log li.staff")).to_have_text(["sam: Hello, Sam here"], timeout=30_000)  # ...live

    stranger = browser.new_page()  # the same page on an origin widget_origins does not list
    stranger.goto(f"http://127.0.0.1:{server.shop_port}/one.html")
    stranger.get_by_role("button", name=re.compile(r"^Chat with")).click()
    deadline = time.monotonic() + 30
    while not any(f.url.startswith("chrome-error://") for f in stranger.frames):  # the browser refused it
        assert time.monotonic() < deadline, [f.url for f in stranger.frames]
        stranger.wait_for_timeout(200)
    assert stranger.frame_locator("iframe.csbot-frame").get_by_label("Your message").count() == 0


def test_a_known_customer_in_the_widget_is_named_to_staff_keeps_their_own_chat_and_a_forged_token_is_refused(
        server, shop_site, browser):
    import jwt

    from csbot.web.staff.live import live_rows

    now = int(time.time())
    ada = {"sub": "u-1042", "name": "Ada Lovelace", "email": "ada@example.com", "iat": now, "exp": now + 3600}
    token = jwt.encode(ada, IDENTITY_SECRET, algorithm="HS256")
    shop_site.page("account", link="one", tag_attributes=f'data-identity="{token}"')  # the shop renders it
    shop_site.page("forged", link="one", tag_attributes='data-identity="{}"'.format(
        jwt.encode(ada, "not-the-shops-secret-but-32-chars-long", algorithm="HS256")))
    page = browser.new_page()
    page.goto(f"{shop_site.url}/account.html")
    page.get_by_role("button", name=re.compile(r"^Chat with")).click()
    frame = page.frame_locator("iframe.csbot-frame")
    send(frame, "Do you offer gift wrapping?")
    expect(frame.locator("#log li.bot")).to_contain_text("gift wrapping", timeout=30_000)
    frame.locator("#person").click()  # asks for a person: staff see who is waiting
    expect(frame.locator("#log li.bot")).to_have_count(2, timeout=30_000)
    cid = page.evaluate(f"localStorage.getItem('csbot-conversation:{server.url}:u-1042')")
    assert cid and server.store().conversation(cid)["owner"] == "human"
    row = next(r for r in live_rows(server.store().live_conversations(limit=100)) if r[0] == cid)
    assert row[1] == "Ada Lovelace <ada@example.com> ✓"

    page.evaluate("csbotWidget.identify(null)")  # logged out on the shop's page: not Ada's chat any more
    expect(frame.locator("#log li")).to_have_count(0, timeout=30_000)
    send(frame, "hello")
    expect(frame.locator("#log li.bot")).to_have_count(1, timeout=30_000)
    anonymous = page.evaluate(f"localStorage.getItem('csbot-conversation:{server.url}')")
    assert anonymous and anonymous != cid and not server.store().conversation(anonymous)["identity_verified_at"]
    page.evaluate("token => csbotWidget.identify(token)", token)  # logged in again: Ada's chat is back
    expect(frame.locator("#log li.customer")).to_have_text(["Do you offer gift wrapping?"], timeout=30_000)

    forged = browser.new_page()
    forged.goto(f"{shop_site.url}/forged.html")
    forged.evaluate("window.refused = []; addEventListener('csbot:identity-refused', e => refused.push(e.detail.error))")
    forged.get_by_role("button", name=re.compile(r"^Chat with")).click()
    send(forged.frame_locator("iframe.csbot-frame"), "a message under a forged name")
    expect(forged.frame_locator("iframe.csbot-frame").locator("#log li.error")).to_contain_text(
        "not one signed", timeout=30_000)
    forged.wait_for_function("window.refused.length > 0", timeout=30_000)  # the page hears it, and may sign anew
    assert ["not one signed" in said for said in forged.evaluate("refused")] == [True]
    assert server.store().db.rows("SELECT count(*) AS n FROM messages WHERE text = ?",
                                  ["a message under a forged name"])[0]["n"] == 0

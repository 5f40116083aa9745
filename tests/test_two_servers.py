"""Two `python app.py` processes on two ports sharing one home behave as one service: a customer
on A and staff on B see the same conversations; a login made on A works on B; an answer written
on B is used on A within 5 s; a promote on A serves on B within 10 s; SIGKILL of A in the middle
of a client loop loses no acknowledged message, and B keeps answering."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

from conftest import copy_version, free_port, launch_app, wait_for_app
from csbot.store import Store

ADMIN_PASSWORD = "two-servers-admin-pw"


class App:
    def __init__(self, home: Path, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSBOT_")}
        env["CSBOT_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        self.log = home / f"server-{name}.log"
        self.process = launch_app(home, self.port, self.log, env)

    def wait_ready(self) -> None:
        wait_for_app(self.process, self.port, self.log)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.loads(response.read())

    def chat(self, message: str, conversation_id: str | None = None, *, timeout: float = 30) -> dict:
        body = json.dumps({"conversation_id": conversation_id, "message": message}).encode()
        request = urllib.request.Request(f"{self.url}/api/chat", data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def login(self, name: str, password: str, page: str) -> str:
        """Log in through the form; returns the session cookie's value."""
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None
        data = urllib.parse.urlencode({"username": name, "password": password, "next": page}).encode()
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(f"{self.url}/login", data=data, timeout=30)
        except urllib.error.HTTPError as exc:  # the 303 to the page
            assert exc.code == 303, exc.read()
            cookie = exc.headers["set-cookie"]
            return cookie.split(";")[0].split("=", 1)[1]
        pytest.fail("the login did not redirect")

    def page(self, path: str, token: str) -> Client:
        return Client(f"{self.url}{path}", headers={"Cookie": f"csbot_session={token}"}, verbose=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def eventually(check, *, within: float, what: str):
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def servers(trained_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("two") / "home"
    shutil.copytree(trained_home, home)
    store = Store.open(home / "csbot.db")
    old = store.current_model()
    new_id = copy_version(store, home)  # a second version to promote
    a, b = App(home, "a"), App(home, "b")  # started together, racing over the same empty-ish home
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b, store, old["id"], new_id
    finally:
        a.stop()
        b.stop()


def test_a_customer_on_a_is_seen_by_staff_on_b_with_a_login_made_on_a(servers):
    a, b, store, *_ = servers
    reply = a.chat("my cat ate the invoice, what now")
    assert reply["route"] == "fallback"
    token = a.login("admin", ADMIN_PASSWORD, "/staff/")
    staff_on_b = b.page("/staff/", token)  # no sticky sessions: B knows A's login
    inbox = staff_on_b.predict(api_name="/inbox")
    assert "my cat ate the invoice, what now" in json.dumps(inbox)
    # and a conversation started on A goes on on B
    more = b.chat("and the receipt too", reply["conversation_id"])
    assert more["conversation_id"] == reply["conversation_id"]
    assert [m["text"] for m in store.messages(reply["conversation_id"]) if m["role"] == "customer"] == [
        "my cat ate the invoice, what now", "and the receipt too"]


def test_an_answer_written_on_b_is_used_on_a_within_5_s(servers):
    a, b, *_ = servers
    token = b.login("admin", ADMIN_PASSWORD, "/staff/")
    staff_on_b = b.page("/staff/", token)
    staff_on_b.predict(None, "gift_cards", "Do you sell gift cards for birthdays?",
                       "Yes: gift cards come in any amount from £10.", "", api_name="/save_answer")
    saved = time.monotonic()
    eventually(lambda: "gift cards come in any amount" in (a.chat("Do you sell gift cards for birthdays?")["reply"] or ""),
               within=5, what="A answering with B's new answer")
    assert time.monotonic() - saved <= 5


def test_a_promote_on_a_serves_on_b_within_10_s(servers):
    a, b, store, old, new = servers
    token = a.login("admin", ADMIN_PASSWORD, "/admin/")
    a.page("/admin/", token).predict(new, api_name="/promote")
    promoted = time.monotonic()
    assert a.get("/api/health")["model_version"] == new
    eventually(lambda: b.get("/api/health")["model_version"] == new, within=10, what="B serving the promoted model")
    assert time.monotonic() - promoted <= 10
    assert b.chat("hello")["model_version"] == new
    assert store.audit_log(action="promote")[0]["target"] == new


def test_sigkill_of_a_under_load_loses_no_acknowledged_message(servers):
    a, b, store, *_ = servers
    acknowledged, failed, stop = [], [], threading.Event()

    def client(n: int) -> None:
        server, i = a, 0
        while not stop.is_set():
            text = f"load client {n} message {i}: where is my order?"
            try:
                reply = server.chat(text, timeout=15)
                acknowledged.append((text, reply["message_id"], reply["conversation_id"]))
            except (OSError, urllib.error.URLError):
                failed.append(text)
                server = b  # the client's retry goes to the other server, as a load balancer would
            i += 1
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    eventually(lambda: len(acknowledged) >= 20, within=120, what="20 acknowledged messages on A")
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=30)
    count_at_kill = len(acknowledged)
    eventually(lambda: len(acknowledged) >= count_at_kill + 12, within=120, what="B answering after A died")
    stop.set()
    for t in threads:
        t.join(timeout=60)
    for text, message_id, cid in acknowledged:  # each acknowledged message: stored once, with its reply
        rows = store.query("SELECT id, role FROM messages WHERE text = ?", [text])
        assert len(rows) == 1 and rows[0]["role"] == "customer", text
        assert store.message(message_id)["conversation_id"] == cid and store.message(message_id)["role"] == "bot"
    assert b.get("/api/health")["status"] == "ok"

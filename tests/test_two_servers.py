"""Two `python app.py` replicas behave as one service, on each engine: sharing one home's SQLite
file, or on two homes (two machines) sharing only a PostgreSQL store and an artifacts folder, with
a training worker beside them. A customer on A and staff on B see the same conversations; a login
made on A works on B; an answer written on B is used on A within 5 s; a promote on A serves on B
within 10 s; a retrain asked for on A is trained by the worker and served by both once promoted;
SIGKILL of A in the middle of a client loop loses no acknowledged message, and B keeps answering."""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    clean_environment,
    copy_version,
    free_port,
    launch_app,
    wait_for_app,
)
from gradio_client import Client

from csbot.store import Store

ADMIN_PASSWORD = "two-servers-admin-pw"


def environment(extra: dict) -> dict:
    return clean_environment(CSBOT_ADMIN_PASSWORD=ADMIN_PASSWORD, **extra)


class App:
    def __init__(self, home: Path, name: str, extra: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = environment(extra)
        home.mkdir(parents=True, exist_ok=True)
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
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(f"{self.url}/login", timeout=30).read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode({"username": name, "password": password, "next": page, "csrf": csrf}).encode()
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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def servers(request, trained_home, tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    worker = None
    if request.param == "sqlite":  # one machine: both replicas on one home
        shutil.copytree(trained_home, root / "home")
        homes, extra, shared = [root / "home"] * 2, {"CSBOT_DRAIN_SECONDS": "3"}, root / "home"
        store = Store.open(root / "home" / "csbot.db")
    else:  # two machines: nothing shared but the database and the artifacts folder
        postgres = request.getfixturevalue("postgres")
        url = postgres.create_database("two_servers")
        shared = root / "shared"
        shutil.copytree(trained_home / "models", shared / "models")
        shutil.copytree(trained_home / "cache", shared / "cache")  # the answer encoder's export, made once already
        copied = subprocess.run([sys.executable, "-m", "csbot", "copy-store", "--to", url, "--home", str(trained_home)],
                                cwd=ROOT, env=environment({}), capture_output=True, text=True, timeout=120)
        assert copied.returncode == 0 and "messages" in copied.stdout, copied.stderr
        homes = [root / "machine-a", root / "machine-b"]
        extra = {"CSBOT_DATABASE_URL": url, "CSBOT_ARTIFACTS_DIR": str(shared), "CSBOT_TRAINING": "worker",
                 "CSBOT_DRAIN_SECONDS": "3"}
        store = Store.open(url)
        (root / "gpu-box").mkdir()
        with open(root / "gpu-box" / "worker.log", "w") as log:  # the training worker, on a third "machine"
            worker = subprocess.Popen([sys.executable, "-m", "csbot", "worker", "--poll-seconds", "0.5",
                                       "--home", str(root / "gpu-box")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      env=environment({**extra, "CSBOT_EPOCHS": "1", "CSBOT_BATCH_SIZE": "8",
                                                       "CSBOT_DEVICE": "cpu"}))
    old = store.current_model()
    new_id = copy_version(store, shared)  # a second version to promote
    a, b = App(homes[0], "a", extra), App(homes[1], "b", extra)  # started together, racing over one store
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b, store, old["id"], new_id, worker
    finally:
        a.stop()
        b.stop()
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        store.close()
        if request.param == "postgresql":
            postgres.drop_database("two_servers")


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
    a, b, store, old, new, _ = servers
    token = a.login("admin", ADMIN_PASSWORD, "/admin/")
    a.page("/admin/", token).predict(new, api_name="/promote")
    promoted = time.monotonic()
    assert a.get("/api/health")["model_version"] == new
    eventually(lambda: b.get("/api/health")["model_version"] == new, within=10, what="B serving the promoted model")
    assert time.monotonic() - promoted <= 10
    assert b.chat("hello")["model_version"] == new
    assert store.audit_log(action="promote")[0]["target"] == new


def test_a_retrain_asked_for_on_a_is_trained_by_the_worker_and_served_by_both(servers):
    a, b, store, _, _, worker = servers
    token = a.login("admin", ADMIN_PASSWORD, "/admin/")
    admin_on_a = a.page("/admin/", token)
    status = admin_on_a.predict(1, False, api_name="/start_training")
    job = store.jobs(limit=1)[0]
    assert job["status"] in ("queued", "running") and "Status" in status
    done = eventually(lambda: store.job(job["id"])["status"] not in ("queued", "running") and store.job(job["id"]),
                      within=300, what="the training run to finish")
    assert done["status"] == "done", done
    if worker is not None:
        assert done["pid"] == worker.pid and done["worker"].endswith(f":{worker.pid}") and done["device"] == "cpu"
    version = done["model_version"]
    admin_on_a.predict(version, api_name="/promote")
    for server in (a, b):
        eventually(lambda: server.get("/api/health")["model_version"] == version, within=15,
                   what=f"{server.url} serving {version}")
        assert server.chat("hello")["model_version"] == version


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
        rows = store.db.rows("SELECT id, role FROM messages WHERE text = ?", [text])
        assert len(rows) == 1 and rows[0]["role"] == "customer", text
        assert store.message(message_id)["conversation_id"] == cid and store.message(message_id)["role"] == "bot"
    assert b.get("/api/health")["status"] == "ok"



def test_sigterm_drains_b_answering_while_readiness_fails_then_it_exits(servers):
    """What a load balancer sees on a deploy: not ready at once, every request still answered
    during the drain, then the port closes and the process exits cleanly."""
    _, b, store, *_ = servers
    assert b.get("/api/ready") == {"ready": True, "problems": []}

    def connection_header(path: str) -> str | None:  # over a keep-alive connection (urllib asks for close itself)
        import http.client
        from urllib.parse import urlsplit

        connection = http.client.HTTPConnection(urlsplit(b.url).hostname, urlsplit(b.url).port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.getheader("connection")
        finally:
            connection.close()
    assert connection_header("/api/health") != "close" and connection_header("/login") != "close"
    b.process.send_signal(signal.SIGTERM)

    def not_ready():
        try:
            b.get("/api/ready")
        except urllib.error.HTTPError as exc:
            return exc.code == 503 and json.loads(exc.read())["problems"] == ["shutting down"]
        return False
    eventually(not_ready, within=5, what="B's readiness failing after SIGTERM")
    reply = b.chat("draining: where is my order?")  # still served while draining
    assert store.message(reply["message_id"])["role"] == "bot"
    # and told to close: a proxy keeps no connection to a replica about to close it (a redirect too)
    assert connection_header("/api/health") == "close" and connection_header("/staff/") == "close"
    # uvicorn ends by re-raising the SIGTERM it handled, as a process stopped by it should
    assert b.process.wait(timeout=60) == -signal.SIGTERM
    assert "draining for 3 s" in b.log.read_text()
    with pytest.raises(OSError):
        b.get("/api/health")

"""Load benchmark of the running web app: startup time, then N chat clients in a closed loop on
POST /api/chat for S seconds, a check that every acknowledged message is stored exactly once
with exactly one bot reply, and the same load again while a retrain runs in the background.

    python benchmarks/load.py --home DIR [--clients 16] [--seconds 60] [--seed 7]
                              [--out benchmarks/results/load.json] [--skip-retrain]
                              [--warmup 5] [--retrain-epochs E] [--timeout 120]

DIR must be a csbot home with a trained model. It is copied to a temporary folder (the database
with SQLite's backup API, so a home in use is fine) and `python app.py` serves the copy with the
chat rate limits off (CSBOT_CHAT_PER_MINUTE=0, CSBOT_CHAT_IP_PER_MINUTE=0): every client comes
from 127.0.0.1. The retrain is started the way the admin page does it (its `/start_training`
API event, logged in as an admin), or, if that fails, by spawning the command jobs.py runs.

Figures go to --out as JSON and a short summary is printed. This is a benchmark, not a test: it
asserts nothing and exits 0 whatever it measures (non-zero only when the server does not start).
Run it on an otherwise idle machine; the figures of a shared one mean little.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

import csbot  # noqa: E402  (sets the offline environment the server inherits)

CONVERSATION_LENGTH = (3, 6)  # a client starts a new conversation every 3-6 messages


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id exists and is ours to signal. Example: process_alive(None) -> False

    Only for processes this machine started just now: a job's liveness is its lease (jobs.py)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile. Example: percentile([1, 2, 3, 4], 50) -> 3"""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_home(home: Path, dest: Path) -> None:
    """Copy a home; the database through the backup API so a live WAL is copied consistently."""
    shutil.copytree(home, dest, ignore=shutil.ignore_patterns("csbot.db", "csbot.db-*", "logs"))
    source, target = sqlite3.connect(home / "csbot.db"), sqlite3.connect(dest / "csbot.db")
    with target:
        source.backup(target)
    source.close()
    target.close()


def log_tail(path: Path, lines: int = 40) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:] if path.exists() else []


def log_problems(path: Path) -> list[str]:
    """Lines of the server log that look like trouble (tracebacks, errors, warnings)."""
    words = ("Traceback", "Error", "error", "Exception", "WARNING", "locked", "500")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return [line for line in lines if any(w in line for w in words)][:200]


# --- the server -------------------------------------------------------------------------
class Server:
    """`python app.py` on a copy of the home, its output in a log file."""

    def __init__(self, home: Path, *, env: dict[str, str], log: Path, port: int | None = None):
        self.home, self.port, self.log = home, port or free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        self._out = open(log, "ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "app.py", "--home", str(home), "--port", str(self.port)],
                                        cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float) -> float:
        """Seconds from Popen to the first chat message answered with 200; SystemExit if it never is."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while time.perf_counter() - self.started < timeout:
                if self.process.poll() is not None:
                    self.fail(f"the server exited with code {self.process.returncode} before answering")
                try:
                    if client.post("/api/chat", json={"conversation_id": None, "message": "hello"}).status_code == 200:
                        return time.perf_counter() - self.started
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.fail(f"the server did not answer a chat message within {timeout:.0f} s")

    def fail(self, why: str):
        print(f"error: {why}. The end of its log:", file=sys.stderr)
        print("\n".join("    " + line for line in log_tail(self.log)), file=sys.stderr)
        raise SystemExit(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


def health(url: str) -> dict:
    return httpx.get(url + "/api/health", timeout=10).json()


def admin_client(url: str, *, user: str, password: str):
    """A gradio_client for /admin/, logged in through csbot's login form (its session cookie)."""
    from gradio_client import Client

    with httpx.Client(timeout=60, follow_redirects=False) as browser:  # the form's token and its cookie
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get(url + "/login").text).group(1)
        response = browser.post(url + "/login", data={"username": user, "password": password, "next": "/admin/",
                                                      "csrf": csrf})
    if response.status_code != 303 or "csbot_session" not in response.cookies:
        raise RuntimeError(f"the admin login failed with HTTP {response.status_code}")
    return Client(url + "/admin/", headers={"Cookie": f"csbot_session={response.cookies['csbot_session']}"},
                  verbose=False, download_files=False, analytics_enabled=False)


# --- the load phase ----------------------------------------------------------------------
def client_loop(url: str, *, texts: list[str], rng: random.Random, start: threading.Barrier, deadline: list[float],
                stop: threading.Event, timeout: float, records: list[dict]) -> None:
    """One customer after another on one keep-alive connection, each waiting for its reply."""
    cid, left = None, 0
    with httpx.Client(base_url=url, timeout=timeout) as client:
        start.wait()
        while time.perf_counter() < deadline[0] and not stop.is_set():
            if left == 0:
                cid, left = None, rng.randint(*CONVERSATION_LENGTH)
            text = rng.choice(texts)
            t0 = time.perf_counter()
            record = {"sent_cid": cid, "text": text, "status": None, "error": None, "cid": None, "at": t0}
            try:
                response = client.post("/api/chat", json={"conversation_id": cid, "message": text})
                record["status"] = response.status_code
                if response.status_code == 200:
                    body = response.json()
                    cid = record["cid"] = body["conversation_id"]
                    record["route"] = body.get("route")
                    left -= 1
                else:
                    record["error"] = f"http_{response.status_code}"
                    if response.status_code == 404:
                        left = 0
            except Exception as exc:  # a benchmark counts failures; it does not stop on them
                record["error"] = type(exc).__name__
            record["ms"] = (time.perf_counter() - t0) * 1000
            records.append(record)  # list.append is atomic under the GIL


def run_load(url: str, *, clients: int, seconds: float, texts: list[str], seed: int, timeout: float,
             stop: threading.Event | None = None) -> tuple[dict, list[dict]]:
    """N client threads for `seconds` (or until `stop` is set). Returns the figures and the records."""
    stop = stop or threading.Event()
    records: list[dict] = []
    barrier, deadline = threading.Barrier(clients + 1), [0.0]
    threads = [threading.Thread(target=client_loop, daemon=True, name=f"client-{i}",
                                args=(url,), kwargs=dict(texts=texts, rng=random.Random(seed * 1000 + i),
                                                         start=barrier, deadline=deadline, stop=stop,
                                                         timeout=timeout, records=records))
               for i in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    barrier.wait()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    elapsed = time.perf_counter() - started
    ok = [r["ms"] for r in records if r["status"] == 200]
    figures = {"clients": clients, "seconds": round(elapsed, 2), "requests": len(records), "ok": len(ok),
               "requests_per_second": round(len(records) / elapsed, 2),
               "ok_per_second": round(len(ok) / elapsed, 2),
               "errors": len(records) - len(ok),
               "errors_by_kind": dict(Counter(r["error"] for r in records if r["status"] != 200)),
               "routes": dict(Counter(r.get("route") for r in records if r["status"] == 200))}
    if ok:
        figures["latency_ms"] = {"p50": round(percentile(ok, 50), 1), "p95": round(percentile(ok, 95), 1),
                                 "p99": round(percentile(ok, 99), 1), "max": round(max(ok), 1),
                                 "mean": round(sum(ok) / len(ok), 1), "of": "the 200 responses"}
    return figures, records


# --- stored exactly once -------------------------------------------------------------------
def max_message_id(db_path: Path) -> int:
    from csbot.store import Store

    store = Store.open(db_path)
    try:
        return store.db.rows("SELECT coalesce(max(id), 0) AS m FROM messages")[0]["m"]
    finally:
        store.db.close()


def check_stored(db_path: Path, records: list[dict], *, after_id: int) -> dict:
    """Compare what the clients got a 200 for with the customer messages stored after `after_id`.

    Each acknowledged (conversation, cleaned text) must be stored once, and each stored customer
    message must have exactly one bot reply before the next customer message, none when the chat
    was in a person's hands (the server flags those messages inbox='human' and sends no reply).
    Messages stored for requests that failed on the client side (timeouts, 5xx) are counted apart.
    """
    from csbot.dialogue.bot import clean_message
    from csbot.store import Store

    def clean(text: str) -> str:
        return clean_message(text, max_chars=1_000_000)

    acked = Counter((r["cid"], clean(r["text"])) for r in records if r["status"] == 200)
    failed = Counter((r["sent_cid"], clean(r["text"])) for r in records if r["status"] != 200 and r["sent_cid"])
    used = {r["cid"] for r in records if r["status"] == 200}
    store = Store.open(db_path)
    try:
        rows = store.db.rows("SELECT id, conversation_id, role, text, inbox FROM messages WHERE id > ? ORDER BY id",
                           [after_id])
    finally:
        store.db.close()
    ours = [r for r in rows if r["conversation_id"] in used]
    stored = Counter((r["conversation_id"], r["text"]) for r in ours if r["role"] == "customer")
    missing, extra = acked - stored, stored - acked
    from_failed = extra & failed
    duplicated = extra - from_failed
    by_conversation: dict[str, list[dict]] = {}
    for row in ours:
        by_conversation.setdefault(row["conversation_id"], []).append(row)
    no_reply, several, handed_off, examples = 0, 0, 0, []
    for cid, messages in by_conversation.items():
        for i, row in enumerate(messages):
            if row["role"] != "customer":
                continue
            replies = 0
            for later in messages[i + 1:]:
                if later["role"] == "customer":
                    break
                replies += later["role"] == "bot"
            expected = 0 if row["inbox"] == "human" else 1
            handed_off += expected == 0
            if replies != expected:
                no_reply += replies < expected
                several += replies > expected
                if len(examples) < 5:
                    examples.append({"conversation_id": cid, "message_id": row["id"], "bot_replies": replies,
                                     "expected": expected})
    unknown = sum(1 for r in rows if r["role"] == "customer" and r["conversation_id"] not in used)
    ok = not missing and not duplicated and not no_reply and not several
    return {"stored_exactly_once": ok, "acknowledged": sum(acked.values()), "conversations": len(used),
            "stored": sum(stored.values()), "missing": sum(missing.values()),
            "duplicated": sum(duplicated.values()), "stored_from_failed_requests": sum(from_failed.values()),
            "missing_examples": [list(k) for k in list(missing)[:5]],
            "duplicated_examples": [list(k) for k in list(duplicated)[:5]],
            "customer_messages_without_bot_reply": no_reply, "customer_messages_with_several_bot_replies": several,
            "bot_reply_examples": examples, "handed_off_messages_without_reply_as_expected": handed_off,
            "customer_messages_in_other_conversations": unknown}


# --- the retrain ----------------------------------------------------------------------------
def admin_name(db_path: Path, password: str) -> tuple[str, bool]:
    """The admin account to log in as: the one app.py makes from CSBOT_ADMIN_PASSWORD, or, when the
    home already has an admin (whose password we do not know), a new admin in the copy.
    Returns (name, made_here)."""
    from csbot.service.auth import Accounts
    from csbot.store import Store

    store = Store.open(db_path)
    try:
        users = {u["name"]: u["role"] for u in store.users()}
        if "admin" in users.values():
            name = next(n for n in (f"loadbench{i or ''}" for i in range(100)) if n not in users)
            Accounts(store).create(name, password, role="admin")
            return name, True
        return next(n for n in (f"admin{i or ''}" for i in range(100)) if n not in users), False
    finally:
        store.db.close()


class Retrain:
    """Starts a training run on the served home and makes sure it is gone at the end."""

    def __init__(self, server: Server, *, user: str, password: str, epochs: float):
        self.server, self.user, self.password, self.epochs = server, user, password, epochs
        self.admin = None  # gradio_client.Client when started through the admin page
        self.child: subprocess.Popen | None = None
        self.via = None

    def start(self) -> None:
        try:
            self.admin = admin_client(self.server.url, user=self.user, password=self.password)
            self.admin.predict(self.epochs, False, api_name="/start_training")
            self.via = "admin page API: gradio_client /admin/ api_name=/start_training"
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"[:300]
            print(f"load: could not start the retrain through the admin page ({why}); spawning the child "
                  "command jobs.py runs instead", flush=True)
            command = [sys.executable, "-m", "csbot", "train", "--no-promote", "--background",
                       "--home", str(self.server.home), "--epochs", str(self.epochs)]
            self.child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
            self.via = f"child process `{' '.join(command[1:])}` (fallback: {why})"

    def job(self) -> dict | None:
        """The newest training job row, read from the database."""
        db = sqlite3.connect(self.server.home / "csbot.db", timeout=10)
        try:
            rows = db.execute("SELECT id, status, phase, step, total, elapsed_seconds, pid, error FROM jobs "
                              "ORDER BY started_at DESC LIMIT 1").fetchall()
        finally:
            db.close()
        keys = ("id", "status", "phase", "step", "total", "elapsed_seconds", "pid", "error")
        return dict(zip(keys, rows[0])) if rows else None

    def stop(self) -> None:
        """Cancel a run still going (through the page when we can), then kill it by its pid."""
        if self.child is not None:  # ours: stop it like the server would
            if self.child.poll() is None:
                self.child.terminate()
                try:
                    self.child.wait(20)
                except subprocess.TimeoutExpired:
                    self.child.kill()
                    self.child.wait()
            return
        job = self.job()
        if not job or job["status"] != "running":
            return
        pid, cancelled = job["pid"], False
        if self.admin is not None and self.server.process.poll() is None:
            try:
                self.admin.predict(api_name="/cancel_training")
                cancelled = True
            except Exception:
                pass
        if not cancelled and pid and process_alive(pid):  # no server to cancel through (Ctrl-C reached it too)
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + (40 if cancelled else 20)  # the server kills it after a 30 s grace
        while pid and process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if pid and process_alive(pid):
            os.kill(pid, signal.SIGKILL)

    def gone(self) -> bool:
        """The fallback child exited (it cannot be seen in /api/health before it makes its job row)."""
        return self.child is not None and self.child.poll() is not None


def wait_for_fine_tune(url: str, *, timeout: float, gone=lambda: False) -> dict:
    """Poll /api/health until the run is fine-tuning (the part that loads the CPU) or has ended."""
    started, seen = time.perf_counter(), []
    while time.perf_counter() - started < timeout:
        training = health(url).get("training")
        phase = training and (training.get("phase") or "")
        if phase and phase not in seen:
            seen.append(phase)
        if phase and phase.startswith("fine_tune"):
            break
        if training is None and (seen or gone()):
            break  # it ended before we saw it fine-tune
        time.sleep(0.2)
    return {"phases_seen": seen, "waited_seconds": round(time.perf_counter() - started, 1),
            "fine_tuning": bool(seen and seen[-1].startswith("fine_tune"))}


def run_during_retrain(server: Server, retrain: Retrain, *, load_args: dict, wait_timeout: float) -> dict:
    requested = time.perf_counter()
    retrain.start()
    wait = wait_for_fine_tune(server.url, timeout=wait_timeout, gone=retrain.gone)
    stop, ended = threading.Event(), []

    def watch() -> None:  # end the phase early when the training run ends
        while not stop.is_set():
            try:
                if health(server.url).get("training") is None:
                    ended.append(time.perf_counter())
                    stop.set()
                    return
            except Exception:
                pass
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True, name="training-watch")
    watcher.start()
    after_id = max_message_id(server.home / "csbot.db")
    figures, records = run_load(server.url, stop=stop, **load_args)
    finished = bool(ended)
    stop.set()
    watcher.join(5)
    figures["stored"] = check_stored(server.home / "csbot.db", records, after_id=after_id)
    job = retrain.job()
    figures["retrain"] = {"started_via": retrain.via, "wait_for_fine_tune": wait,
                          "finished_during_phase": finished,
                          "training_seconds_from_request": round(ended[0] - requested, 1) if finished else None,
                          "job_after_phase": job}
    return figures


# --- putting it together -----------------------------------------------------------------------
def read_texts(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f) if (row.get("text") or "").strip()]


def machine() -> dict:
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), read before it stops; None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def summary_line(name: str, f: dict) -> str:
    lat = f.get("latency_ms") or {}
    stored = f.get("stored") or {}
    return (f"{name}: {f['clients']} clients, {f['seconds']} s, {f['requests']} requests "
            f"({f['requests_per_second']}/s), p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, "
            f"p99 {lat.get('p99')} ms, max {lat.get('max')} ms, errors {f['errors']} {f['errors_by_kind'] or ''}, "
            f"stored exactly once: {stored.get('stored_exactly_once')} (missing {stored.get('missing')}, "
            f"duplicated {stored.get('duplicated')}, bot-reply problems "
            f"{(stored.get('customer_messages_without_bot_reply') or 0) + (stored.get('customer_messages_with_several_bot_replies') or 0)})")


def load_arguments(description: str, *, out: str) -> argparse.ArgumentParser:
    """The arguments every load benchmark takes: the home to copy, the clients, the length, the seed,
    the request timeout and where the figures go."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="a csbot home with a trained model (it is copied, not changed)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=120, help="seconds one chat request may take")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / out))
    return parser


def main() -> int:
    parser = load_arguments(__doc__, out="load.json")
    parser.add_argument("--skip-retrain", action="store_true", help="skip the load phase during a retrain")
    parser.add_argument("--retrain-epochs", type=float, help="epochs of the retrain (default: the home's setting, "
                                                             "as the admin page proposes)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of unrecorded load first, so the first "
                                                                  "phase does not pay for the kernels' first calls")
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--runtime", choices=["onnx", "torch"], help="serve with this CSBOT_RUNTIME (default: the setting)")
    args = parser.parse_args()
    home = Path(args.home).expanduser().resolve()
    if not (home / "csbot.db").is_file():
        print(f"error: {home} has no csbot.db; give --home a trained csbot home "
              "(python -m csbot init --home DIR && python -m csbot train --home DIR)", file=sys.stderr)
        return 2
    texts = read_texts(ROOT / "data" / "support_log.csv")
    figures: dict = {"command": sys.argv, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "csbot_version": csbot.__version__, "machine": machine()}
    tmp = Path(tempfile.mkdtemp(prefix="csbot-load-"))
    server = retrain = None
    try:
        copy = tmp / "home"
        copy_home(home, copy)
        password = secrets.token_urlsafe(18)
        user, made_here = admin_name(copy / "csbot.db", password)
        env = {**os.environ, "CSBOT_CHAT_PER_MINUTE": "0", "CSBOT_CHAT_IP_PER_MINUTE": "0",
               "CSBOT_ADMIN_PASSWORD": password, **({"CSBOT_RUNTIME": args.runtime} if args.runtime else {})}
        from csbot.settings import load_settings

        settings = load_settings(home=copy, environ=env)
        epochs = args.retrain_epochs or settings.epochs
        figures["settings"] = {
            "home": str(home), "clients": args.clients, "seconds": args.seconds, "seed": args.seed,
            "request_timeout_s": args.timeout, "warmup_seconds": args.warmup,
            "message_pool": f"{len(texts)} texts of data/support_log.csv",
            "conversation_length": list(CONVERSATION_LENGTH), "retrain": not args.skip_retrain,
            "retrain_epochs": None if args.skip_retrain else epochs,
            "server_env": {"CSBOT_CHAT_PER_MINUTE": "0", "CSBOT_CHAT_IP_PER_MINUTE": "0",
                           "CSBOT_ADMIN_PASSWORD": "(random)"},
            "admin_account": f"{user} ({'added to the copy' if made_here else 'made by app.py'})",
            "csbot": {k: str(v) for k, v in vars(settings).items()}}
        print(f"load: serving a copy of {home} ...", flush=True)
        server = Server(copy, env=env, log=tmp / "server.log")
        figures["startup_seconds"] = round(server.wait_ready(args.startup_timeout), 2)
        figures["model_version"] = health(server.url).get("model_version")
        print(f"load: ready after {figures['startup_seconds']} s; {args.clients} clients for {args.seconds} s",
              flush=True)
        load_args = dict(clients=args.clients, seconds=args.seconds, texts=texts, seed=args.seed, timeout=args.timeout)
        if args.warmup > 0:
            warm, _ = run_load(server.url, **{**load_args, "seconds": args.warmup, "seed": args.seed + 100})
            figures["warmup"] = {k: warm.get(k) for k in ("seconds", "requests", "errors", "latency_ms")}
        after_id = max_message_id(copy / "csbot.db")
        first, records = run_load(server.url, **load_args)
        first["stored"] = check_stored(copy / "csbot.db", records, after_id=after_id)
        figures["load"] = first
        print(summary_line("load", first), flush=True)
        if args.skip_retrain:
            figures["load_during_retrain"] = {"skipped": True}
        else:
            print("load: starting a retrain, then the same load while it runs", flush=True)
            retrain = Retrain(server, user=user, password=password, epochs=epochs)
            second = run_during_retrain(server, retrain, load_args={**load_args, "seed": args.seed + 1},
                                        wait_timeout=args.startup_timeout)
            a, b = first.get("latency_ms") or {}, second.get("latency_ms") or {}
            second["versus_load"] = {f"{q}_ratio": round(b[q] / a[q], 2) if a.get(q) and b.get(q) else None
                                     for q in ("p50", "p95", "p99")}
            figures["load_during_retrain"] = second
            print(summary_line("during retrain", second), flush=True)
            r = second["retrain"]
            print(f"  retrain via {r['started_via'][:60]}...; fine-tuning during the phase: "
                  f"{r['wait_for_fine_tune']['fine_tuning']}; finished during the phase: {r['finished_during_phase']}; "
                  f"p50 x{second['versus_load']['p50_ratio']}, p95 x{second['versus_load']['p95_ratio']}", flush=True)
    except KeyboardInterrupt:
        print("load: interrupted; stopping the server", file=sys.stderr)
        figures["interrupted"] = True
        return 130
    finally:
        if retrain is not None:
            retrain.stop()
        if server is not None:
            figures["server_peak_rss_mb"] = peak_rss_mb(server.process.pid)
            server.stop()
            figures["server"] = {"exit_code": server.process.returncode,
                                 "log_problem_lines": log_problems(server.log), "log_tail": log_tail(server.log, 30)}
            if "load" in figures:  # write what was measured, even after a failure half-way
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(figures, indent=2, default=str))
                print(f"load: figures in {out}; server log problem lines: "
                      f"{len(figures['server']['log_problem_lines'])}", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

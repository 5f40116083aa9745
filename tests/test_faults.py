"""Faults injected for real, each followed by what a restarted process finds: SIGKILL during a
training run, an index save, an answer import and a promote; a disk that refuses writes while
the index is saved. Each leaves the data and the serving model intact and loses nothing that
was acknowledged. Processes are real (`python -m csbot ...` or a small script), killed with
SIGKILL at several points of their work; the checks hold wherever the kill lands."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import DATA, ROOT, HashingEncoder, clean_environment, copy_version, csbot

from csbot.dialogue.answers import AnswerIndex
from csbot.settings import load_settings
from csbot.store import Store

TESTS = Path(__file__).parent


def home_copy(trained_home: Path, tmp_path: Path, toml: str = "") -> Path:
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    (home / "csbot.toml").write_text(f"[csbot]\n{toml or 'batch_size = 8'}\n")
    return home


def wait_until(condition, *, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process exited ({process.returncode}) before {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_sigkill_during_training_interrupts_the_job_and_keeps_the_serving_model(trained_home, tmp_path):
    from csbot.service.engine import Engine
    from csbot.service.jobs import Retrainer

    home = home_copy(trained_home, tmp_path, "epochs = 40\nbatch_size = 4\njob_lease_seconds = 5")
    store = Store.open(home / "csbot.db")
    serving, versions, examples = store.current_model()["id"], len(store.model_versions()), store.example_counts()
    now = time.time()
    job = store.start_job(kind="train", device="cpu", options="{}", at=now, stale_before=now - 5)
    child = subprocess.Popen([sys.executable, "-m", "csbot", "train", "--job", job, "--no-promote", "--background",
                              "--home", str(home)], cwd=ROOT, env=clean_environment(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until(lambda: (store.job(job)["phase"] == "fine_tune" and store.job(job)["step"] >= 2), timeout=300,
               what="fine-tuning to start", process=child)
    kill(child)  # the server that started it is gone too: nobody records how it ended

    engine = Engine(load_settings(home=home, environ={}))  # a restarted server
    retrainer = Retrainer(engine)
    assert retrainer.running()["id"] == job  # within its lease it still counts as running...
    wait_until(lambda: retrainer.running() is None, timeout=60, what="the lease to run out")
    assert store.job(job)["status"] == "interrupted"  # ...then it is interrupted and blocks nothing
    assert store.current_model()["id"] == serving and len(store.model_versions()) == versions
    assert store.example_counts() == examples
    assert engine.bot.classifier.version == serving and engine.bot.respond("hello").route


def test_sigkill_during_index_saves_always_leaves_a_loadable_index(tmp_path):
    folder = tmp_path / "answers"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from conftest import HashingEncoder
        from csbot.dialogue.answers import AnswerIndex
        encoder = HashingEncoder()
        answers = [{{"id": i, "questions": [f"question {{i}} about item {{j}}" for j in range(5)],
                     "answer": f"answer {{i}}"}} for i in range(int(sys.argv[1]))]
        index = AnswerIndex.build(answers, encoder, encoder=encoder.name, dim=encoder.dim, generation=int(sys.argv[1]))
        print("ready", flush=True)
        while True:
            index.save({str(folder)!r})
    """)
    for n, delay in ((50, 0.05), (400, 0.15), (60, 0.3), (800, 0.45), (70, 0.6)):
        saver = subprocess.Popen([sys.executable, "-c", script, str(n)], cwd=ROOT, env=clean_environment(),
                                 stdout=subprocess.PIPE, text=True)
        assert saver.stdout.readline().strip() == "ready"
        time.sleep(delay)
        kill(saver)
        index = AnswerIndex.load(folder, HashingEncoder(), encoder="hashing-fake", dim=256)
        assert len(index) == index.generation * 6  # a whole generation, never a torn one
        assert index.search("question 3 about item 1")[0].score == pytest.approx(1.0)  # its texts are there


def test_sigkill_during_an_answer_import_stores_all_of_it_or_none(trained_home, tmp_path):
    home = home_copy(trained_home, tmp_path)
    store = Store.open(home / "csbot.db")
    before = {a["key"]: a["answer"] for a in store.answers()}

    def import_file(marker: str) -> Path:
        path = tmp_path / f"answers-{marker}.csv"
        rows = [f"bulk_{i},How about thing {i}?|Thing {i} please,{marker} answer {i}." for i in range(1500)]
        path.write_text("key,questions,answer\n" + "\n".join(rows) + "\n")
        return path

    def started(marker: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "csbot", "import-answers", str(import_file(marker)),
                                 "--home", str(home)], cwd=ROOT, env=clean_environment(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stored(marker: str) -> int:
        return store.db.rows("SELECT count(*) AS n FROM answers WHERE answer LIKE ?", [f"{marker} answer %"])[0]["n"]

    # how long until the import's transaction commits (it is audited right after)
    t0, first = time.monotonic(), started("first")
    wait_until(lambda: store.audit_log(action="import_answers", text="answers-first.csv"), timeout=300,
               what="the import to commit", process=first)
    committed = time.monotonic() - t0
    kill(first)  # now it is re-embedding: the rows are in, the index is not saved
    assert stored("first") == 1500
    markers = ["first"]
    for n, fraction in enumerate((0.3, 0.7, 0.9, 1.0, 1.2)):
        marker = f"run{n}"
        markers.append(marker)
        process = started(marker)
        time.sleep(committed * fraction)
        kill(process)
        assert stored(marker) in (0, 1500)  # all or nothing, wherever the kill landed
        # an import replaces by key, also all or nothing: one import's text holds every bulk key
        assert sorted(stored(m) for m in markers) == [0] * (len(markers) - 1) + [1500]
    for key, text in before.items():  # answers the imports did not touch are as they were
        assert {a["key"]: a["answer"] for a in store.answers()}[key] == text


def test_sigkill_during_a_promote_leaves_one_loadable_current_version(trained_home, tmp_path):
    from csbot.service.registry import ModelRegistry

    home = home_copy(trained_home, tmp_path)
    store = Store.open(home / "csbot.db")
    old = store.current_model()
    new_id = copy_version(store, home)
    t0 = time.monotonic()
    done = csbot("promote", old["id"], home=home)
    assert done.returncode == 0, done.stderr
    took = time.monotonic() - t0
    registry = ModelRegistry(store, home / "models")
    for n, fraction in enumerate((0.4, 0.7, 0.85, 0.95, 1.1)):
        target = new_id if n % 2 == 0 else old["id"]
        process = subprocess.Popen([sys.executable, "-m", "csbot", "promote", target, "--home", str(home)], cwd=ROOT,
                                   env=clean_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(took * fraction)
        kill(process)
        current = [v for v in store.model_versions() if v["is_current"]]
        assert len(current) == 1 and current[0]["id"] in (old["id"], new_id)
        assert registry.load(current[0]["id"]).version == current[0]["id"]  # and its folder loads


def test_a_disk_that_refuses_writes_keeps_the_old_index_and_the_new_answer_serving(trained_home, tmp_path):
    home = home_copy(trained_home, tmp_path)
    script = textwrap.dedent(f"""
        import json, logging, resource, signal, sys
        sys.path.insert(0, {str(TESTS)!r})
        from conftest import HashingEncoder
        from csbot.service.engine import Engine
        from csbot.settings import load_settings
        logging.basicConfig(level=logging.ERROR)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        engine = Engine(load_settings(home={str(home)!r}, environ={{}}), encoder=HashingEncoder())
        engine.reindex()
        assert engine.bot.index is engine.index
        answer_id = engine.save_answer(key="gift_cards", questions=["do you sell gift cards"], answer="Yes, from 10.")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, hard))  # from now on no file grows past 2 KB
        saved = engine.follower.save_index(engine.index)
        hit = engine.index.search("do you sell gift cards")[0]  # the index in memory has the answer
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # (the store cannot write on a full disk either)
        reply = engine.bot.respond("do you sell gift cards")
        print(json.dumps({{"saved": saved, "route": reply.route, "answer_id": reply.answer_id, "expected": answer_id,
                          "hit": hit.answer_id}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=clean_environment(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["saved"] is False and "could not write the answer index" in result.stderr
    assert "previous index is untouched" in result.stderr
    assert outcome["hit"] == outcome["answer_id"] == outcome["expected"] and outcome["route"] == "answer"
    folder = home / "indexes" / "answers"
    on_disk = AnswerIndex.load(folder, HashingEncoder(), encoder="hashing-fake", dim=256)  # the old one, whole
    store = Store.open(home / "csbot.db")
    assert on_disk.generation < store.generations()["answers"]
    # no half-written generation left behind: every one there is complete
    assert all((g / "meta.json").is_file() and (g / "index.faiss").is_file() for g in folder.glob("gen-*"))


# --- PostgreSQL going away, and machines whose clocks differ ------------------------------------
def test_postgresql_down_for_10_s_under_chat_load_and_a_training_run_loses_nothing(postgres, database_url, tmp_path):
    """The server is stopped at once (as a crash or a failover does) for 10 s while a customer
    keeps chatting and a training run goes on: every reply given was stored, the calls made while
    it was down waited for it instead of failing, and the run finishes."""
    import threading

    from csbot.service.engine import Engine

    settings = load_settings(home=tmp_path, environ={}, database_url=database_url, epochs=1, batch_size=8,
                             device="cpu", data_dir=str(DATA), quantize="none")
    engine = Engine(settings, encoder=HashingEncoder())
    engine.load_defaults()  # the tiny shop: a run of a few seconds' steps, each writing its progress
    replies, failures, stop = [], [], threading.Event()

    def customer():
        while not stop.is_set():
            try:
                replies.append(engine.bot.respond(f"where is my order BB-{100000 + len(replies)}?"))
            except Exception as exc:  # the edge says "please send it again": counted, never hidden
                failures.append(exc)
    chatting = threading.Thread(target=customer)
    trained = {}
    training = threading.Thread(target=lambda: trained.update(engine.train(promote=False)))
    chatting.start()
    training.start()
    while len(replies) < 20:
        time.sleep(0.05)
    during = len(replies)
    assert training.is_alive()  # the outage comes in the middle of the run
    postgres.pause(10)
    training.join(timeout=600)
    stop.set()
    chatting.join(timeout=120)
    assert trained.get("version"), "the training run did not finish"
    assert engine.store.job(trained["job"])["status"] == "done"
    assert len(replies) > during + 5  # the chat went on after the outage
    assert len(failures) <= 1, failures  # at most a call cut mid-way at the moment it stopped
    stored = {m["id"] for m in engine.store.db.rows("SELECT id FROM messages WHERE role = 'customer'")}
    assert all(r.message_id in stored or engine.store.message(r.message_id) for r in replies)
    assert len(stored) >= len(replies)


def test_a_machine_whose_clock_is_40_s_behind_keeps_its_lease_and_sessions(database_url):
    from csbot.service.auth import Accounts

    behind = Store.open(database_url)
    behind.db.local_clock = lambda: time.time() - 40  # a worker whose clock runs 40 s slow
    on_time = Store.open(database_url)
    assert abs(behind.clock() - on_time.clock()) < 1  # both by the database's clock
    job = behind.start_job(kind="train", device="cpu", options="{}", at=behind.clock(),
                           stale_before=behind.clock() - 30)
    behind.heartbeat(job, at=behind.clock(), worker="slow:1")
    assert on_time.interrupt_stale_jobs(stale_before=on_time.clock() - 30) == []  # its lease is fresh
    assert on_time.job(job)["status"] == "running"
    Accounts(behind).create("sam", "sam's long staff password", role="staff")
    token = Accounts(behind).login("sam", "sam's long staff password", address="a")
    assert Accounts(on_time).session_user(token) == "sam"
    assert Accounts(on_time).session_left(token) > 3600 - 5  # not 40 s gone already

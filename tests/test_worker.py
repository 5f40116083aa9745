"""Training on a worker: web replicas with CSBOT_TRAINING=worker queue runs, `csbot worker`
claims each once (FOR UPDATE SKIP LOCKED on PostgreSQL), trains where it runs and publishes the
version to the shared artifacts folder, and every replica serves it once promoted."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import DATA, HashingEncoder

from csbot.errors import TrainingError
from csbot.service.engine import Engine
from csbot.service.jobs import Retrainer
from csbot.service.worker import Worker
from csbot.settings import load_settings
from csbot.store import Store


def queue(store: Store, user: str = "ada") -> str:
    return store.start_job(kind="train", device="worker", options=json.dumps({"user": user}), at=100.0,
                           stale_before=70.0, queued=True)


def test_a_queued_run_waits_for_a_worker_blocks_a_second_and_is_claimed_once(store):
    job = queue(store)
    assert store.job(job)["status"] == "queued" and store.job(job)["heartbeat_at"] is None
    with pytest.raises(TrainingError, match="waiting for a worker, started by ada"):
        queue(store, "kim")
    store.interrupt_stale_jobs(stale_before=10**12)  # a queued run has no lease to run out
    assert store.job(job)["status"] == "queued"
    claimed = store.claim_job(worker="gpu-1:42", device="cuda", at=200.0)
    assert claimed["id"] == job and (claimed["status"], claimed["worker"], claimed["device"]) == ("running", "gpu-1:42", "cuda")
    assert claimed["heartbeat_at"] == 200.0
    assert store.claim_job(worker="gpu-2:7", device="cuda", at=201.0) is None
    assert not store.cancel_queued_job(job)  # taken: cancelling is the running run's cancel now


def test_a_queued_run_can_be_cancelled_before_a_worker_takes_it(store):
    job = queue(store)
    assert store.cancel_queued_job(job)
    assert store.job(job)["status"] == "cancelled" and store.claim_job(worker="w:1", device="cpu", at=1.0) is None
    assert queue(store) != job  # nothing blocks the next run


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_workers_racing_for_one_run_claim_it_once(engine, request, tmp_path):
    """Four workers, each with its own connection, claim at the same moment: one gets the run."""
    where = tmp_path / "csbot.db" if engine == "sqlite" else request.getfixturevalue("database_url")
    stores = [Store.open(where) for _ in range(4)]
    job = queue(stores[0])
    barrier, claimed = threading.Barrier(4), []

    def claim(store: Store, n: int) -> None:
        barrier.wait()
        claimed.append(store.claim_job(worker=f"w:{n}", device="cpu", at=300.0))
    threads = [threading.Thread(target=claim, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    won = [c for c in claimed if c]
    assert len(claimed) == 4 and len(won) == 1 and won[0]["id"] == job
    assert stores[1].job(job)["worker"] == won[0]["worker"]
    for store in stores:
        store.close()


def test_a_run_queued_by_a_replica_is_trained_by_a_worker_elsewhere_and_served_once_promoted(database_url, tmp_path):
    """The web replica and the worker share only the PostgreSQL store and the artifacts folder."""
    def settings(machine: str):
        return load_settings(home=tmp_path / machine, environ={}, database_url=database_url,
                             artifacts_dir=str(tmp_path / "shared"), training="worker", epochs=1, batch_size=8,
                             device="cpu", data_dir=str(DATA))
    web = Engine(settings("web"), encoder=HashingEncoder())
    web.load_defaults(DATA)
    retrainer = Retrainer(web)
    job = retrainer.start(user="ada", epochs=1, promote_if_better=True)
    assert retrainer._process is None  # nothing trains on the web machine
    assert retrainer.status()["status"] == "queued" and retrainer.running()["id"] == job

    worker = Worker(Engine(settings("gpu-box"), encoder=HashingEncoder()), name="gpu-box:1")
    summary = worker.run_once()
    row = web.store.job(job)
    assert row["status"] == "done" and row["worker"].startswith("gpu-box") and row["device"] == "cpu"
    assert summary["version"] == row["model_version"] and summary["promoted"]
    assert (tmp_path / "shared" / "models" / row["model_version"] / "meta.json").is_file()
    assert not (tmp_path / "web" / "models").exists()  # published to the shared folder only
    assert web.store.current_model()["id"] == row["model_version"]
    web.sync()  # what the follower does every second
    assert web.bot.classifier.version == row["model_version"]
    assert worker.run_once() is None  # nothing else waits
    assert [a["action"] for a in web.store.audit_log(text=job)][-2:] == ["train_claim", "train_start"]


def test_the_admin_page_shows_a_run_waiting_for_a_worker_then_which_worker_runs_it_and_where(store):
    from csbot.web.admin.retrain import status_html

    job = queue(store)
    waiting = status_html({**store.job(job), "options": {"user": "ada"}})
    assert "queued" in waiting and "waiting for a training worker" in waiting
    store.claim_job(worker="gpu-box:4242", device="cuda", at=1.0)
    running = status_html({**store.job(job), "options": {"user": "ada"}})
    assert "gpu-box:4242" in running and "GPU (cuda)" in running


def test_a_run_started_to_promote_itself_does_so_with_no_server_watching(trained_home, tmp_path):
    """The admin's "promote automatically" is in the job row, and the run itself acts on it: the
    server that started it may restart meanwhile (here no server exists at all)."""
    import shutil

    shutil.copytree(trained_home, tmp_path / "home")  # a trained home: a version serves to compare against
    settings = load_settings(home=tmp_path / "home", environ={}, epochs=1, batch_size=8, device="cpu", quantize="none")
    engine = Engine(settings, encoder=HashingEncoder())
    first = engine.store.current_model()["id"]
    job = engine.store.start_job(kind="train", device="cpu", at=100.0, stale_before=0.0, options=json.dumps(
        {"user": "ada", "epochs": 1, "promote_if_better": True}))
    summary = engine.train(job=job, promote=False)  # as `csbot train --job` runs it, told nothing else
    row, current = engine.store.job(job), engine.store.current_model()["id"]
    assert summary["promoted"] == summary["gate"]["passed"]
    assert current == (summary["version"] if summary["gate"]["passed"] else first)
    assert (row["error"] == "not promoted: it did not pass the gate") == (not summary["gate"]["passed"])
    if summary["promoted"]:
        assert engine.store.audit_log(actor="ada")[0]["action"] == "promote"

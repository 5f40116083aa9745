"""Training jobs hold a lease in the store: a run whose heartbeat stopped is interrupted whatever
its pid says, never blocks a new run, and can be cancelled when its process is gone; two
starters cannot both start one. The store and a fake clock; no training here (test_faults.py
kills a real one)."""

from __future__ import annotations

import os
import threading

import pytest
from conftest import FakeClock, HashingEncoder

from csbot.errors import TrainingError
from csbot.service.engine import Engine
from csbot.service.jobs import Retrainer
from csbot.settings import load_settings
from csbot.store import Store


@pytest.fixture
def sleeper(tmp_path):
    """A stand-in for the Python that would train: a real process that only waits (the heavy
    boundary), so these tests start and watch real children without training anything."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(0o755)
    return str(script)


def stop_children(*retrainers) -> None:
    for retrainer in retrainers:
        if retrainer._process and retrainer._process.poll() is None:
            retrainer._process.kill()
            retrainer._process.wait()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path, data_dir):
    """A home on each engine: its SQLite file, or a new PostgreSQL database."""
    url = request.getfixturevalue("database_url") if request.param == "postgresql" else ""
    return load_settings(home=tmp_path / "home", environ={}, data_dir=str(data_dir), database_url=url)


@pytest.fixture
def engine(settings, data_dir):
    engine = Engine(settings, encoder=HashingEncoder())
    engine.store.add_examples([{"text": "hello", "intent": "greeting"}], source="test")
    return engine


def test_a_job_whose_heartbeat_stopped_is_interrupted_even_when_its_pid_is_alive(engine):
    clock = FakeClock(10_000.0)
    job = engine.store.create_job(kind="train", device="cpu", at=clock.now)
    engine.store.update_job(job, pid=os.getpid())  # after a reboot the pid is someone else's, alive
    retrainer = Retrainer(engine, clock=clock)
    clock.now += engine.settings.job_lease_seconds - 1
    assert retrainer.running()["id"] == job  # the lease still holds
    engine.store.heartbeat(job, at=clock.now, worker="elsewhere:1")
    clock.now += engine.settings.job_lease_seconds - 1
    assert retrainer.running()["id"] == job  # renewed
    clock.now += 2
    assert retrainer.status()["status"] == "interrupted"  # what the admin page shows, without a start
    assert retrainer.running() is None
    row = engine.store.job(job)
    assert row["status"] == "interrupted" and "heartbeat" in row["error"] and row["finished_at"]


def test_a_lost_job_never_blocks_a_new_run(engine, sleeper):
    clock = FakeClock(10_000.0)
    lost = engine.store.create_job(kind="train", device="cpu", at=clock.now - 3600)
    retrainer = Retrainer(engine, clock=clock, python=sleeper)
    try:
        job = retrainer.start(user="ada")
        assert engine.store.job(lost)["status"] == "interrupted"
        assert engine.store.job(job)["pid"] == retrainer._process.pid and retrainer._process.poll() is None
        with pytest.raises(TrainingError, match="already running"):
            retrainer.start(user="kim")
    finally:
        stop_children(retrainer)


def test_cancel_works_when_the_process_is_gone(engine):
    clock = FakeClock(10_000.0)
    job = engine.store.create_job(kind="train", device="cpu", at=clock.now - 3600)
    engine.store.update_job(job, phase="fine_tune")
    retrainer = Retrainer(engine, clock=clock)
    # the lease ran out already, so the look before cancelling marks it; nothing is left to cancel
    with pytest.raises(TrainingError, match="nothing to cancel"):
        retrainer.cancel()
    fresh = engine.store.create_job(kind="train", device="cpu", at=clock.now)
    assert retrainer.cancel() == fresh
    clock.now += engine.settings.job_lease_seconds + 1  # its process never renews the lease
    assert retrainer.running() is None
    assert engine.store.job(fresh)["status"] == "cancelled"


def test_two_servers_starting_at_once_start_one_run(engine, settings, sleeper):
    """Two Retrainers over two connections to one database, racing: exactly one run is recorded."""
    results, barrier, retrainers = [], threading.Barrier(2), []

    def start(store: Store) -> None:
        other = Engine(settings, store=store, encoder=HashingEncoder())
        retrainer = Retrainer(other, python=sleeper)
        retrainers.append(retrainer)
        barrier.wait()
        try:
            results.append(retrainer.start(user="ada"))
        except TrainingError as exc:
            results.append(exc)
    threads = [threading.Thread(target=start, args=(Store.open(settings.database),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:  # counted while the child lives: once it is killed, its watcher marks the run failed within 0.5 s
        assert sum(isinstance(r, str) for r in results) == 1 and sum(isinstance(r, TrainingError) for r in results) == 1
        assert len(engine.store.jobs(status="running")) == 1
    finally:
        stop_children(*retrainers)
    assert len(engine.store.jobs()) == 1  # one run recorded, whatever its end


def test_a_run_whose_lease_was_taken_away_stops_and_the_interrupted_mark_stands(trained_home, tmp_path):
    """The run's process was only frozen (not dead) past its lease; another process marked it
    interrupted and may have started a new run. When it wakes up it stops, promotes nothing, and
    does not write "done" over the mark."""
    import shutil

    from csbot.errors import TrainingCancelled

    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    engine = Engine(load_settings(home=home, environ={}, epochs=1, batch_size=8))
    serving = engine.store.current_model()["id"]
    job = engine.store.create_job(kind="train", device="cpu", at=0.0)  # its lease ran out long ago
    engine.store.interrupt_stale_jobs(stale_before=1.0)
    with pytest.raises(TrainingCancelled):
        engine.train(job=job)
    assert engine.store.job(job)["status"] == "interrupted"
    assert engine.store.current_model()["id"] == serving


def test_a_runs_pace_gives_its_job_row_the_phase_steps_and_time_left():
    from csbot.nlu.finetune import Progress
    from csbot.service.jobs import Pace

    clock = FakeClock(100.0)
    pace = Pace(clock)
    clock.now = 104.0
    assert pace.fields(Progress("split")) == {"phase": "split", "elapsed_seconds": 4.0}
    assert pace.fields(Progress("fine_tune", step=0, total=40)) == {  # the loop starts: no pace yet
        "phase": "fine_tune", "elapsed_seconds": 4.0, "step": 0, "total": 40, "loss": None}
    clock.now = 124.0  # 10 steps in 20 s: 30 more take about 60 s, plus a little
    fields = pace.fields(Progress("fine_tune", step=10, total=40, loss=0.8))
    assert fields["eta_seconds"] == pytest.approx(60 * 1.05 + 2, abs=0.1) and fields["loss"] == 0.8
    assert pace.fields(Progress("calibrate"))["eta_seconds"] == 2.0 and pace.elapsed == 24.0

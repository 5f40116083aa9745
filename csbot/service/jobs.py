"""Background retraining for the web app: one training run at a time, in a child process.

`Retrainer.start` records a job row and starts `python -m csbot train --job ID --no-promote
--background` on the same home. The child reports phase, step, loss, elapsed time and an
estimate of the time left into that row (engine.py), and the admin page polls it, so a reload
or a second admin sees the same run. A child process rather than a thread because training
would otherwise share the server's PyTorch thread pool and slow every chat reply; the child runs
at idle CPU priority on one core fewer, and a crash in it cannot take the server down.

Each run holds a lease in the store: the child (and, while it lives, the server that started it)
renews `heartbeat_at` every few seconds. A run whose heartbeat is older than `job_lease_seconds`
is gone, whatever process ids say (after a reboot a pid usually belongs to someone else), and is
marked interrupted by the next look, so it never blocks a new run. Starting checks for a live run
and records the new one in one transaction, so two servers cannot start two.

Cancelling sets `cancel_requested` on the row; the child stops at its next step (and is
killed if it has not stopped after `grace_seconds`); a run whose process is gone is marked
cancelled once its lease runs out. When the child exits, a watcher thread records a crash as a failed job and,
if asked, promotes the new version in this process.

With `CSBOT_TRAINING=worker` the server starts nothing: `start` queues the run, and a training
worker (worker.py, `python -m csbot worker`, on a GPU machine) claims it and runs it there.

This module does not train (training.py) nor decide what is served (registry.py).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from csbot.errors import TrainingError
from csbot.settings import PROJECT_ROOT
from csbot.store import now

log = logging.getLogger("csbot.service.jobs")


class Pace:
    """Turns a training run's progress reports into its job row's fields, with an estimate of the
    time left: fine-tuning is nearly all of a run, so its pace so far is extrapolated, plus a little.

    Example: pace.fields(Progress("fine_tune", step=10, total=40, loss=0.8)) 20 s into the loop ->
             {"phase": "fine_tune", "step": 10, "total": 40, "loss": 0.8, "eta_seconds": 65.0, ...}
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock()
        self.loop_started: float | None = None

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def fields(self, progress) -> dict:
        elapsed = self.elapsed
        fields = {"phase": progress.phase, "elapsed_seconds": round(elapsed, 1)}
        if progress.total:
            fields.update(step=progress.step, total=progress.total, loss=progress.loss)
            if self.loop_started is None:
                self.loop_started = elapsed - 1e-9
            if progress.step:
                per_step = (elapsed - self.loop_started) / progress.step
                fields["eta_seconds"] = round(per_step * (progress.total - progress.step) * 1.05 + 2, 1)
        elif progress.phase in ("export", "calibrate", "evaluate"):
            fields["eta_seconds"] = 2.0
        return fields


class Lease:
    """Renews a running job's lease in the store every `every` seconds from a thread of its own
    (a long training step must not look like a dead run). Whether to stop (a cancel, or the lease
    taken away) the training loop reads from the job row itself, at each step.

    Example: lease = Lease(store, job, worker="host:123", every=7.5); ...train...; lease.stop()
    """

    def __init__(self, store, job: str, *, worker: str, every: float):
        self.store, self.job, self.worker, self.every = store, job, worker, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{job}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.store.heartbeat(self.job, at=self.store.clock(), worker=self.worker)
            except Exception:  # a busy database: the next beat retries well within the lease
                log.exception("could not renew the lease of job %s", self.job)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Retrainer:
    """Starts, watches and cancels the web app's training runs."""

    def __init__(self, engine, *, python: str = sys.executable, grace_seconds: float = 30.0,
                 clock: Callable[[], float] | None = None):
        self.engine = engine
        self.store = engine.store
        self.python = python
        self.grace_seconds = grace_seconds
        self.lease_seconds = engine.settings.job_lease_seconds
        self.clock = clock or self.store.clock  # leases are stamped and judged by the database's clock
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self.recover()

    def recover(self) -> list[str]:
        """Mark runs whose lease ran out (their process was killed, crashed or its machine rebooted)
        as interrupted, or cancelled when a cancel was asked for. Returns their ids."""
        return self.store.interrupt_stale_jobs(stale_before=self.clock() - self.lease_seconds)

    def running(self) -> dict | None:
        """The live run: running, or queued for a worker."""
        self.recover()
        return self.store.live_job()

    @property
    def by_worker(self) -> bool:
        """Whether runs wait for a training worker (CSBOT_TRAINING=worker) instead of starting here."""
        return self.engine.settings.training == "worker"

    def start(self, *, user: str, epochs: float | None = None, promote_if_better: bool = False) -> str:
        """Start a training run in the background, or queue it for a worker (`by_worker`). Returns its
        job id; refuses while one runs or waits."""
        from csbot.nlu.device import device_kind

        with self._lock:
            if not self.store.example_counts()["examples"]:
                raise TrainingError("there are no training examples; import a support log first")
            options = {"user": user, "epochs": epochs, "promote_if_better": promote_if_better}
            now_at = self.clock()
            device = "worker" if self.by_worker else device_kind(self.engine.settings.device)
            job = self.store.start_job(kind="train", device=device, options=json.dumps(options), at=now_at,
                                       stale_before=now_at - self.lease_seconds, queued=self.by_worker)
            self.store.audit(user, "train_start", job, detail={"epochs": epochs, "promote_if_better": promote_if_better,
                                                               "where": "worker" if self.by_worker else "local"})
            if not self.by_worker:
                self.store.update_job(job, phase="starting")
                self._spawn(job, options)
            return job

    def _spawn(self, job: str, options: dict) -> None:
        """Start the training child for `job` and a thread that watches it."""
        epochs = options.get("epochs")
        # whether it promotes itself is in the job's options in the store (engine.train reads them)
        command = [self.python, "-m", "csbot", "train", "--job", job, "--background",
                   "--home", str(self.engine.settings.home)]
        if epochs:
            command += ["--epochs", str(epochs)]
        log = self.engine.settings.home / "logs" / f"train-{job}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            # Its own session, so a Ctrl-C meant for the server does not kill it mid-save.
            self._process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.store.update_job(job, pid=self._process.pid)
        threading.Thread(target=self._watch, args=(job, self._process, log, options), daemon=True,
                         name=f"train-{job}").start()

    def cancel(self, job_id: str | None = None, *, user: str = "system") -> str:
        """Ask the running job to stop; it stops at its next step. A job whose process is gone is
        marked cancelled as soon as its lease runs out (at once when it already has). Returns the id."""
        job = self.store.job(job_id) if job_id else self.running()
        if job and job["status"] == "queued" and self.store.cancel_queued_job(job["id"]):
            self.store.audit(user, "train_cancel", job["id"])
            return job["id"]
        if job and job["status"] == "queued":  # a worker took it just now: cancel the running run
            job = self.store.job(job["id"])
        if not job or job["status"] != "running":
            raise TrainingError("no training run is running, so there is nothing to cancel")
        self.store.update_job(job["id"], cancel_requested=1, phase=f"{job['phase']} (cancelling)")
        self.store.audit(user, "train_cancel", job["id"])
        self.recover()
        return job["id"]

    def status(self, job_id: str | None = None) -> dict | None:
        """The job (the latest when no id is given) with its options decoded, or None."""
        self.recover()  # a run whose lease ran out shows as interrupted, not as running for ever
        if job_id:
            job = self.store.job(job_id)
        else:
            jobs = self.store.jobs(limit=1)
            job = jobs[0] if jobs else None
        if job is None:
            return None
        return {**job, "options": json.loads(job.get("options") or "{}")}

    def _watch(self, job_id: str, process: subprocess.Popen, log_path, options: dict) -> None:
        """Renew the child's lease while it lives, kill it when a cancel is not obeyed in time, then
        record how it ended and promote if asked. A failing store read only delays the next look."""
        try:
            self._watch_child(job_id, process)
            self._finished(job_id, process, log_path, options)
        except Exception:
            log.exception("watching training job %s failed; its lease decides how it ended", job_id)

    def _watch_child(self, job_id: str, process: subprocess.Popen) -> None:
        deadline, worker, beat = None, f"{socket.gethostname()}:{process.pid}", 0.0
        while process.poll() is None:
            time.sleep(0.5)
            try:
                if time.monotonic() - beat > self.lease_seconds / 4:  # the child lives: keep its lease
                    self.store.heartbeat(job_id, at=self.clock(), worker=worker)
                    beat = time.monotonic()
                cancelled = self.store.job(job_id).get("cancel_requested")
            except Exception:  # a busy database for a moment: look again next time
                log.exception("could not read training job %s; looking again", job_id)
                continue
            if cancelled:
                deadline = deadline or time.monotonic() + self.grace_seconds
                if time.monotonic() > deadline:
                    process.kill()

    def _finished(self, job_id: str, process: subprocess.Popen, log_path, options: dict) -> None:
        job = self.store.job(job_id)
        if job["status"] == "running":  # the child died without recording why
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-600:] if log_path.exists() else ""
            status = "cancelled" if job.get("cancel_requested") else "failed"
            self.store.finish_job(job_id, status=status, finished_at=now(), eta_seconds=None,
                                  error=f"training process exited with code {process.returncode}: {tail.strip()}")
            return

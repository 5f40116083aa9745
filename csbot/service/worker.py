"""The training worker: `python -m csbot worker` claims queued training runs from the store and
runs them on the machine it is on (a GPU box), then publishes the version where every replica
reads it (the artifacts folder) and records it in the store.

Web replicas started with `CSBOT_TRAINING=worker` only queue runs (jobs.Retrainer). Claiming is
one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL, store.claim_job), so several workers can
wait on one store and each run is taken once. A running job holds the same lease as a local run
(engine.train renews it); if this worker dies, the lease runs out and the job is marked
interrupted, so it blocks nothing. On SIGTERM the worker takes no new job and stops the current
run at its next step (it is recorded as cancelled: the serving model is untouched).

Whether to promote follows the run's options ("promote automatically if at least as good"): the
worker promotes in the store and every replica swaps the model in within a poll.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading

from csbot.errors import TrainingError

log = logging.getLogger("csbot.service.worker")


class Worker:
    """Claims and runs queued training jobs. `engine` trains; `poll_seconds` is the wait between looks."""

    def __init__(self, engine, *, poll_seconds: float = 2.0, name: str | None = None):
        self.engine, self.store = engine, engine.store
        self.poll_seconds = poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()

    def device(self) -> str:
        from csbot.nlu.device import device_kind

        return device_kind(self.engine.settings.device)

    def run_once(self) -> dict | None:
        """Claim the oldest queued run and train it here. Returns the training summary (None when no
        run waited); a failed run is recorded on its job and returned as {"job", "error"}."""
        job = self.store.claim_job(worker=self.name, device=self.device(), at=self.store.clock())
        if job is None:
            return None
        options = json.loads(job.get("options") or "{}")
        log.warning("worker %s: training job %s (options %s)", self.name, job["id"], options)
        self.store.audit(f"worker:{self.name}", "train_claim", job["id"], detail={"device": self.device()})
        try:
            return self.engine.train(epochs=options.get("epochs"), job=job["id"],
                                     promote=bool(options.get("promote_if_better")),
                                     should_stop=self.stopping.is_set, worker=self.name)
        except TrainingError as exc:  # recorded on the job by engine.train; the worker carries on
            log.warning("job %s did not finish: %s", job["id"], exc)
            return {"job": job["id"], "error": str(exc)}

    def run(self, *, once: bool = False) -> None:
        """Claim and run jobs until stopped (SIGTERM, SIGINT), or after the first with `once`."""
        while not self.stopping.is_set():
            try:
                done = self.run_once()
            except Exception:  # a store that is briefly unreachable: look again after the pause
                log.exception("worker %s: claiming or running a job failed", self.name)
                done = None
            if done is not None and once:
                return
            self.stopping.wait(self.poll_seconds)

    def stop_on_signals(self) -> None:
        def stop(signum, frame) -> None:
            log.warning("worker %s: %s, stopping (a running job stops at its next step)", self.name,
                        signal.Signals(signum).name)
            self.stopping.set()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

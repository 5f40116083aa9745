"""Training jobs: a row per run with its phase, progress, outcome and a lease.

A job is `queued` (waiting for a training worker to claim it), then `running`, then done, failed,
cancelled or interrupted. A running job's process writes `heartbeat_at` every few seconds; a job whose heartbeat is older
than the lease is gone (killed, crashed, its machine rebooted) whatever its pid says, and is
marked interrupted by whoever looks next, so it never blocks a new run. Starting a run checks
for a live one and records the new one in a single write transaction, so two servers cannot
start two. jobs.py (the package's, not this) runs them; this module keeps rows.
"""

from __future__ import annotations

import json
import uuid

from csbot.errors import DataError, TrainingError
from csbot.store.backend import now, serialized, write

INTERRUPTED = "the training process stopped sending its heartbeat before it finished (killed, crashed or restarted)"


class JobRows:
    @serialized
    def create_job(self, *, kind: str, device: str, options: str | None = None, at: float | None = None) -> str:
        job_id = uuid.uuid4().hex[:12]
        self.db.insert("jobs", {"id": job_id, "kind": kind, "status": "running", "phase": "queued",
                                "step": 0, "total": 0, "device": device, "started_at": now(),
                                "updated_at": now(), "options": options, "heartbeat_at": at}, returning=None)
        return job_id

    @serialized
    def start_job(self, *, kind: str, device: str, options: str, at: float, stale_before: float,
                  queued: bool = False) -> str:
        """Record a new job unless a live one runs or waits (stale ones are marked interrupted first),
        in one transaction: running at once, or `queued` for a worker to claim. Returns the new id;
        TrainingError names the live run."""
        with write(self.db):
            self.interrupt_stale_jobs(stale_before=stale_before, kind=kind)
            busy = self.live_job(kind)
            if busy:
                by = json.loads(busy.get("options") or "{}").get("user") or "the command line"
                state = "waiting for a worker" if busy["status"] == "queued" else "already running"
                what = "training run" if kind == "train" else f"{kind} run"
                raise TrainingError(f"a {what} ({busy['id']}) is {state}, started by {by}; "
                                    "wait for it or cancel it")
            job_id = self.create_job(kind=kind, device=device, options=options, at=at)
            if queued:
                self.update_job(job_id, status="queued", phase="waiting for a worker", heartbeat_at=None)
            return job_id

    @serialized
    def live_job(self, kind: str = "train") -> dict | None:
        """The job of a kind that runs or waits for a worker (start_job keeps it to one), or None."""
        return self.db.one("SELECT * FROM jobs WHERE kind = ? AND status IN ('running', 'queued') "
                           "ORDER BY started_at DESC LIMIT 1", [kind])

    @serialized
    def claim_job(self, *, worker: str, device: str, at: float, kind: str = "train") -> dict | None:
        """Take the oldest queued job for `worker`, which runs it on `device`; None when none waits.
        One statement: on PostgreSQL the row is locked and other workers skip it (SKIP LOCKED), so
        two workers never take the same job, and neither waits for the other."""
        claimed = self.db.value(
            "UPDATE jobs SET status = 'running', phase = 'starting', worker = ?, device = ?, heartbeat_at = ?, "
            "updated_at = ? WHERE id = (SELECT id FROM jobs WHERE kind = ? AND status = 'queued' "
            f"ORDER BY started_at LIMIT 1{self.db.dialect.skip_locked}) RETURNING id",
            [worker, device, at, now(), kind])
        return self.job(claimed) if claimed else None

    @serialized
    def cancel_queued_job(self, job_id: str) -> bool:
        """Cancel a job no worker has taken yet; False when it is not waiting (a worker took it)."""
        return self.db.execute("UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ?, "
                               "updated_at = ? WHERE id = ? AND status = 'queued'", [now(), now(), job_id]).rowcount == 1

    @serialized
    def interrupt_stale_jobs(self, *, stale_before: float, kind: str = "train") -> list[str]:
        """Mark running jobs whose heartbeat is older than `stale_before` as interrupted (cancelled when
        a cancel was asked for). Returns their ids. One statement, so a heartbeat or an end written at
        the same moment is never overwritten: the row is checked again under its lock. A plain read
        when there are none (health checks call this)."""
        find = "SELECT id FROM jobs WHERE kind = ? AND status = 'running' AND coalesce(heartbeat_at, 0) < ?"
        if not self.db.in_transaction and not self.db.execute(find, [kind, stale_before]).fetchone():
            return []
        stamp = now()
        return [r[0] for r in self.db.execute(
            "UPDATE jobs SET status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'interrupted' END, "
            "error = CASE WHEN cancel_requested = 1 THEN NULL ELSE ? END, finished_at = ?, updated_at = ?, "
            "eta_seconds = NULL WHERE kind = ? AND status = 'running' AND coalesce(heartbeat_at, 0) < ? RETURNING id",
            [INTERRUPTED, stamp, stamp, kind, stale_before]).fetchall()]

    @serialized
    def heartbeat(self, job_id: str, *, at: float, worker: str) -> None:
        """Renew a running job's lease (a job no longer running keeps its end)."""
        self.db.execute("UPDATE jobs SET heartbeat_at = ?, worker = ? WHERE id = ? AND status = 'running'",
                        [at, worker, job_id])

    @serialized
    def update_job(self, job_id: str, **changes) -> None:
        self.db.update("jobs", job_id, {**changes, "updated_at": now()})

    @serialized
    def finish_job(self, job_id: str, **changes) -> bool:
        """Record a running job's end; False (nothing written) when it is no longer running: its lease
        ran out and another process marked it interrupted, which stands."""
        sets = ", ".join(f"{k} = ?" for k in [*changes, "updated_at"])
        cursor = self.db.execute(f"UPDATE jobs SET {sets} WHERE id = ? AND status = 'running'",
                                 [*changes.values(), now(), job_id])
        return cursor.rowcount == 1

    @serialized
    def job(self, job_id: str) -> dict:
        found = self.db.one("SELECT * FROM jobs WHERE id = ?", [job_id])
        if found is None:
            raise DataError(f"no training run {job_id!r}; see the admin page's list of runs")
        return found

    @serialized
    def jobs(self, *, kind: str = "train", status: str | None = None, limit: int = 20) -> list[dict]:
        """Jobs of a kind, newest first (optionally only those with a status, e.g. 'running')."""
        where, params = "kind = ?", [kind]
        if status:
            where, params = where + " AND status = ?", params + [status]
        return self.db.rows(f"SELECT * FROM jobs WHERE {where} ORDER BY started_at DESC LIMIT ?", [*params, limit])

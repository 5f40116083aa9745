"""The shop's webhook endpoints and the deliveries to them.

An event is recorded once per subscribed endpoint, keyed by its message id (`msg_id`, the same for
the same event wherever it is recorded), so recording it twice adds nothing. Deliveries are claimed
for a lease (`claim_due`): a process that dies mid-send leaves the claim to expire and another
sends it, and two processes never send the same delivery at once. This module stores; the
sending, signing and retry schedule are service/webhooks.py's.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from csbot.errors import DataError
from csbot.store.backend import now, serialized, write

EVENTS = ("conversation.handoff", "conversation.closed", "message.fallback", "message.rated")


class WebhookRows:
    @serialized
    def add_webhook(self, *, url: str, secret: str, events: list[str], actor: str) -> int:
        unknown = sorted(set(events) - set(EVENTS))
        if not events or unknown:
            raise DataError(f"pick one or more events of {', '.join(EVENTS)}; found {unknown or 'none'}")
        if not url.startswith(("https://", "http://")) or len(url) > 2000:
            raise DataError(f"the endpoint must be an http(s) URL of up to 2,000 characters; found {url[:80]!r}")
        return self.db.insert("webhooks", {"url": url, "secret": secret, "events": " ".join(sorted(set(events))),
                                           "actor": actor, "created_at": now()})

    @serialized
    def webhooks(self) -> list[dict]:
        return [{**r, "events": r["events"].split()} for r in self.db.rows("SELECT * FROM webhooks ORDER BY id")]

    @serialized
    def delete_webhook(self, webhook_id: int) -> None:
        with write(self.db):
            if not self.db.one("SELECT id FROM webhooks WHERE id = ?", [webhook_id]):
                raise DataError(f"no webhook endpoint {webhook_id}; refresh the list")
            self.db.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", [webhook_id])
            self.db.execute("DELETE FROM webhooks WHERE id = ?", [webhook_id])

    @serialized
    def record_event(self, event: str, msg_id: str, payload: dict | Callable[[], dict]) -> int:
        """A delivery of this event to every endpoint that listens for it, due now; an event recorded
        before (the same msg_id) adds nothing. Returns how many deliveries were added. `payload` may
        be a function making it, called only when some endpoint listens."""
        listening = [hook for hook in self.webhooks() if event in hook["events"]]
        if not listening:  # the usual case: no payload read, no write transaction, for an event nobody hears
            return 0
        body = json.dumps(payload() if callable(payload) else payload, ensure_ascii=False, separators=(",", ":"))
        added, due = 0, self.clock()
        with write(self.db):
            for hook in listening:  # from the endpoint's row: one removed meanwhile gets nothing
                cursor = self.db.execute(
                    "INSERT INTO webhook_deliveries (webhook_id, event, msg_id, payload, status, attempts, next_at, "
                    "created_at) SELECT id, ?, ?, ?, 'pending', 0, ?, ? FROM webhooks WHERE id = ? "
                    "ON CONFLICT DO NOTHING", [event, msg_id, body, due, now(), hook["id"]])
                added += max(cursor.rowcount, 0)
        return added

    @serialized
    def claim_due(self, *, lease: float, limit: int = 20) -> list[dict]:
        """Deliveries due now (pending, or claimed by a process whose lease ran out), claimed for
        `lease` seconds, each with its endpoint's url and secret."""
        at = self.clock()
        with write(self.db):
            rows = self.db.rows("SELECT id FROM webhook_deliveries WHERE (status = 'pending' AND next_at <= ?) "
                                "OR (status = 'sending' AND claimed_until < ?) ORDER BY id LIMIT ?", [at, at, limit])
            claimed = []
            for row in rows:  # one conditional update each: of two processes, only one wins a row
                cursor = self.db.execute("UPDATE webhook_deliveries SET status = 'sending', claimed_until = ? "
                                         "WHERE id = ? AND ((status = 'pending' AND next_at <= ?) OR "
                                         "(status = 'sending' AND claimed_until < ?))", [at + lease, row["id"], at, at])
                if cursor.rowcount == 1:
                    claimed.append(row["id"])
            if not claimed:
                return []
            marks = ", ".join("?" * len(claimed))
            return self.db.rows(f"SELECT d.*, w.url, w.secret FROM webhook_deliveries d JOIN webhooks w "
                                f"ON w.id = d.webhook_id WHERE d.id IN ({marks}) ORDER BY d.id", claimed)

    @serialized
    def delivery_result(self, delivery_id: int, *, status: str, code: int | None, error: str | None,
                        next_at: float | None = None) -> None:
        """Record an attempt: delivered, failed for good, or pending again at `next_at`."""
        if status not in ("delivered", "failed", "pending"):
            raise ValueError(f"status must be delivered, failed or pending; found {status!r}")
        self.db.execute("UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status = ?, "
                        "last_error = ?, next_at = coalesce(?, next_at), claimed_until = NULL, "
                        "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END WHERE id = ?",
                        [status, code, (error or "")[:500] or None, next_at, status, now(), delivery_id])

    @serialized
    def deliveries(self, *, limit: int = 100) -> list[dict]:
        """The newest deliveries first, with their endpoint's url."""
        return self.db.rows("SELECT d.id, d.event, d.msg_id, d.status, d.attempts, d.last_status, d.last_error, "
                            "d.created_at, d.delivered_at, w.url FROM webhook_deliveries d JOIN webhooks w "
                            "ON w.id = d.webhook_id ORDER BY d.id DESC LIMIT ?", [limit])

    @serialized
    def resend(self, delivery_id: int) -> None:
        """Send a delivery again now (an admin's "send again"), whatever became of it."""
        cursor = self.db.execute("UPDATE webhook_deliveries SET status = 'pending', next_at = ?, claimed_until = NULL "
                                 "WHERE id = ?", [self.clock(), delivery_id])
        if cursor.rowcount != 1:
            raise DataError(f"no delivery {delivery_id}; refresh the log")

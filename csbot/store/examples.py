"""Labelled training examples: the support log, imported files and staff labels from the inbox.

An example's id is a hash of its normalised text and intent, so importing a file twice adds
nothing. This module does not read CSV (importer.py) nor train (training.py).
"""

from __future__ import annotations

import hashlib

from csbot.store.backend import now, serialized, write


def example_id(text: str, intent: str) -> str:
    """Stable id of a labelled example, so importing a file twice adds nothing.

    Example: example_id("Where is my order?", "order_status") == example_id("where is my order? ", "order_status")
    """
    key = " ".join(text.lower().split()) + "\x00" + intent
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]


class ExampleRows:
    @serialized
    def add_examples(self, rows: list[dict], *, source: str) -> int:
        """Insert labelled examples, skipping ones already present (all in one transaction).
        Returns how many were new."""
        stamp = now()
        with write(self.db):
            count = "SELECT count(*) FROM examples"
            before = self.db.value(count)
            self.db.insert_many("examples",
                [{"id": example_id(r["text"], r["intent"]), "text": r["text"], "intent": r["intent"],
                  "source": source, "agent_reply": r.get("agent_reply") or None,
                  "created_at": r.get("created_at") or None, "added_at": stamp} for r in rows],
                ignore=True)
            return self.db.value(count) - before

    @serialized
    def examples(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.db.execute("SELECT text, intent FROM examples ORDER BY id").fetchall()]

    @serialized
    def example_counts(self) -> dict:
        """How many examples there are, and how many of them staff labelled (source "staff:<name>").

        Example: {"examples": 1975, "staff": 12}
        """
        examples, staff = self.db.execute(
            "SELECT count(*), coalesce(sum(CASE WHEN source LIKE 'staff:%' THEN 1 ELSE 0 END), 0) FROM examples"
        ).fetchone()
        return {"examples": examples, "staff": staff}

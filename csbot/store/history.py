"""Raw support history: what an import of unlabelled conversations keeps. Customer turns, each with
the agent reply that answered it, already scrubbed of personal data by the caller; the raw file
is never stored. Turns are keyed by conversation, position and text, so importing the same
history twice adds nothing. This module does not read files (importer.py) nor scrub
(dialogue/scrub.py).
"""

from __future__ import annotations

import hashlib
import json

from csbot.store.backend import json_text, now, serialized, write


def turn_key(turn: dict) -> str:
    """Example: turn_key({"conversation": "c1", "position": 0, "text": "hi"}) -> "3b5d..." (20 hex digits)"""
    raw = f"{turn['conversation']}\x00{turn['position']}\x00{turn['text']}"
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]


class HistoryRows:
    @serialized
    def add_history(self, *, name: str, turns: list[dict], scrubbed: dict, actor: str) -> dict:
        """Store an import's scrubbed turns, all or none. The import's id is a hash of its turns, so
        the same history imported twice is one import. Example: -> {"import": "9f3a...", "turns": 120,
        "new": 120, "conversations": 40}"""
        import_id = hashlib.sha256(json.dumps([turn_key(t) for t in turns]).encode()).hexdigest()[:16]
        conversations = len({t["conversation"] for t in turns})
        stamp = now()
        with write(self.db):
            self.db.insert_many("history_imports", [{
                "id": import_id, "name": name, "turns": len(turns),
                "conversations": conversations, "scrubbed": json_text(scrubbed),
                "created_at": stamp, "actor": actor}], ignore=True)
            count = "SELECT count(*) FROM history_turns"
            before = self.db.value(count)
            self.db.insert_many("history_turns", [{
                "key": turn_key(t), "import_id": import_id, "conversation": t["conversation"],
                "position": t["position"], "text": t["text"], "agent_reply": t.get("agent_reply"),
                "created_at": t.get("created_at"), "added_at": stamp} for t in turns], ignore=True)
            new = self.db.value(count) - before
        return {"import": import_id, "turns": len(turns), "new": new, "conversations": conversations}

    @serialized
    def history_turns(self, import_id: str | None = None) -> list[dict]:
        """Customer turns in the order they were imported (of one import, or of all)."""
        where, params = ("WHERE import_id = ?", [import_id]) if import_id else ("", [])
        return self.db.rows(f"SELECT key, conversation, position, text, agent_reply, created_at, import_id "
                            f"FROM history_turns {where} ORDER BY id", params)

    @serialized
    def has_history(self, import_id: str) -> bool:
        """Whether an import keeps any customer turn (without reading them all)."""
        return self.db.value("SELECT count(*) FROM (SELECT 1 FROM history_turns WHERE import_id = ? LIMIT 1) t",
                             [import_id]) > 0

    @serialized
    def history_conversation(self, turn_key: str) -> list[dict]:
        """Every kept turn of the conversation a turn belongs to, in order: what the staff read
        behind a proposed example. Example: -> [{"key": ..., "text": "hi", "agent_reply": "Hello!"}, ...]"""
        return self.db.rows("SELECT h.key, h.text, h.agent_reply, h.position FROM history_turns h JOIN history_turns "
                            "t ON t.import_id = h.import_id AND t.conversation = h.conversation WHERE t.key = ? "
                            "ORDER BY h.position", [turn_key])

    @serialized
    def history_imports(self) -> list[dict]:
        rows = self.db.rows("SELECT * FROM history_imports ORDER BY created_at DESC")
        return [{**r, "scrubbed": json.loads(r["scrubbed"] or "{}")} for r in rows]

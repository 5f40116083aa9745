"""Proposed intents from discovery, and the staff's review of them: what the Discover tab shows.

A proposal is a group of imported customer turns (history_turns, by key) with a name, key phrases,
draft replies and the existing intent it is closest to. Its key is a hash of its turns, so running
discovery twice on the same import adds nothing; a turn belongs to one proposal at a time (merge and
move change which). Review changes the status: open → accepted (into an intent), rejected, merged
(into another proposal) or split (into finer ones). This module changes rows only; grouping is
dialogue/discovery.py's and who did what is the audit's.
"""

from __future__ import annotations

import hashlib
import json

from csbot.errors import DataError
from csbot.store.backend import json_text, now, serialized, write

OPEN = "open"


def proposal_key(turns: list[str]) -> str:
    """Example: proposal_key(["b", "a"]) == proposal_key(["a", "b"]) -> "5f1c..." (20 hex digits)"""
    return hashlib.sha1("\x00".join(sorted(turns)).encode()).hexdigest()[:20]


class ProposalRows:
    @serialized
    def add_proposals(self, import_id: str, proposals: list[dict]) -> int:
        """Store a discovery run's proposals, each {"name", "phrases", "drafts", "tightness", "closest",
        "closest_score", "turns": [keys, most typical first]}, skipping ones already stored and turns
        that another proposal holds. Returns how many proposals were new."""
        stamp = now()
        new = 0
        with write(self.db):
            held = {r["turn_key"] for r in self.db.rows("SELECT turn_key FROM proposal_turns")}
            for p in proposals:
                turns = [t for t in p["turns"] if t not in held]
                key = proposal_key(p["turns"])
                if len(turns) < 2 or self.db.value("SELECT count(*) FROM proposals WHERE key = ?", [key]):
                    continue
                self._insert(key, import_id, p, turns, closest=(p.get("closest"), p.get("closest_score")), at=stamp)
                held |= set(turns)
                new += 1
        return new

    @serialized
    def proposals(self, *, status: str | None = OPEN) -> list[dict]:
        """Proposals, largest first, each with its size.

        Example: [{"id": 3, "name": "card_arrived", "size": 41, ...}]"""
        where, params = ("WHERE p.status = ?", [status]) if status else ("", [])
        rows = self.db.rows(
            "SELECT p.*, (SELECT count(*) FROM proposal_turns t WHERE t.proposal_id = p.id) AS size "
            f"FROM proposals p {where} ORDER BY size DESC, p.id", params)
        return [_decoded(r) for r in rows]

    @serialized
    def proposal(self, proposal_id: int, *, open_only: bool = False) -> dict:
        """One proposal with its turns (text, agent reply, conversation), most typical first; with
        `open_only`, DataError unless it is still open for review."""
        if open_only:
            self._open(proposal_id)
        row = self.db.one("SELECT * FROM proposals WHERE id = ?", [int(proposal_id)])
        if row is None:
            raise DataError(f"no proposal {proposal_id}; pick one from the Discover list (it may have been merged)")
        turns = self.db.rows(
            "SELECT h.key, h.text, h.agent_reply, h.conversation, h.position, h.import_id FROM proposal_turns t "
            "JOIN history_turns h ON h.key = t.turn_key WHERE t.proposal_id = ? ORDER BY t.position, h.id",
            [int(proposal_id)])
        return {**_decoded(row), "turns": turns, "size": len(turns)}

    @serialized
    def rename_proposal(self, proposal_id: int, name: str) -> None:
        self._open(proposal_id)
        with write(self.db):
            self.db.execute("UPDATE proposals SET name = ?, updated_at = ? WHERE id = ?", [name, now(), proposal_id])

    @serialized
    def merge_proposals(self, into: int, other: int) -> None:
        """Move every turn of `other` into `into`, and mark `other` merged."""
        if int(into) == int(other):
            raise DataError("pick two different proposals to merge")
        self._open(into), self._open(other)
        with write(self.db):
            base = self.db.value("SELECT coalesce(max(position), 0) + 1 FROM proposal_turns WHERE proposal_id = ?",
                                 [into])
            self.db.execute("UPDATE proposal_turns SET proposal_id = ?, position = position + ? WHERE proposal_id = ?",
                            [into, base, other])
            self.db.execute("UPDATE proposals SET status = 'merged', merged_into = ?, updated_at = ? WHERE id = ?",
                            [into, now(), other])
            self.db.execute("UPDATE proposals SET updated_at = ? WHERE id = ?", [now(), into])

    @serialized
    def move_turn(self, turn_key: str, to: int) -> None:
        """Move one customer turn into another open proposal."""
        self._open(to)
        with write(self.db):
            moved = self.db.execute("UPDATE proposal_turns SET proposal_id = ?, position = "
                                    "(SELECT coalesce(max(position), 0) + 1 FROM proposal_turns WHERE proposal_id = ?) "
                                    "WHERE turn_key = ?", [to, to, turn_key]).rowcount
        if not moved:
            raise DataError(f"no proposed example {turn_key!r}; pick one from the proposal's examples")

    @serialized
    def split_proposal(self, proposal_id: int, parts: list[dict]) -> list[int]:
        """Replace an open proposal by finer ones (each like add_proposals' items); returns their ids."""
        self._open(proposal_id)
        stamp = now()
        ids = []
        with write(self.db):
            old = self.db.one("SELECT * FROM proposals WHERE id = ?", [proposal_id])
            self.db.execute("DELETE FROM proposal_turns WHERE proposal_id = ?", [proposal_id])
            self.db.execute("UPDATE proposals SET status = 'split', updated_at = ? WHERE id = ?", [stamp, proposal_id])
            for p in parts:
                key = proposal_key([f"split of {proposal_id}", *p["turns"]])  # unlike any proposal before
                ids.append(self._insert(key, old["import_id"], p, p["turns"],
                                        closest=(old["closest"], old["closest_score"]), at=stamp))
        return ids

    @serialized
    def reject_proposal(self, proposal_id: int) -> None:
        """Mark a proposal rejected; its turns stay with it, so discovery never proposes them again."""
        self._open(proposal_id)
        with write(self.db):
            self.db.execute("UPDATE proposals SET status = 'rejected', updated_at = ? WHERE id = ?",
                            [now(), proposal_id])

    @serialized
    def accept_proposal(self, proposal_id: int, *, intent: str, description: str, templates: list[str] | None,
                        examples: list[dict]) -> int:
        """Accept a proposal in one transaction: the intent made (with `templates`) or, templates None,
        an existing one kept; the examples added for the next training run; the proposal closed.
        Returns how many examples were new."""
        self._open(proposal_id)
        with write(self.db):
            if templates is not None:
                self.set_intent(intent, description=description, templates=templates)
            new = self.add_examples(examples, source="discovery")
            self.db.execute("UPDATE proposals SET status = 'accepted', intent = ?, updated_at = ? WHERE id = ?",
                            [intent, now(), proposal_id])
        return new

    def _insert(self, key: str, import_id: str, p: dict, turns: list[str], *, closest: tuple, at: str) -> int:
        """One open proposal row and its turns, in the caller's transaction; its id."""
        pid = self.db.insert("proposals", {
            "key": key, "import_id": import_id, "name": p["name"], "status": OPEN,
            "phrases": json_text(p.get("phrases") or []), "drafts": json_text(p.get("drafts") or []),
            "tightness": p.get("tightness"), "closest": closest[0], "closest_score": closest[1],
            "created_at": at, "updated_at": at})
        self.db.insert_many("proposal_turns", [{"proposal_id": pid, "turn_key": t, "position": i}
                                               for i, t in enumerate(turns)])
        return pid

    def _open(self, proposal_id: int) -> None:
        status = self.db.value("SELECT status FROM proposals WHERE id = ?", [int(proposal_id)])
        if status != OPEN:
            raise DataError(f"proposal {proposal_id} is {status or 'gone'}, not open; reload the Discover list")


def _decoded(row: dict) -> dict:
    return {**row, "phrases": json.loads(row.get("phrases") or "[]"), "drafts": json.loads(row.get("drafts") or "[]")}

"""From imported history to intents: discovery runs and the staff's review of what they propose.

`Review.run` groups an import's customer turns (dialogue/discovery.py) with the home's answer
encoder and keeps the groups as proposals in the store (store/proposals.py), each with the existing
intent it overlaps, if any. `Review.start` does that in a background thread that records its
progress in a job row (kind "discover", with a lease), so every server shows the same progress
bar and a run whose process died never blocks the next. The review actions (rename, merge, split,
move, reject, accept) are one store transaction each and are audited. Accepting makes an intent
(or adds to an existing one) with the proposal's examples as training examples for the next run,
and its draft replies, checked by the reply book, as its templates.

This module does not group (discovery.py), store (store/), or render (web/).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np

from csbot.errors import DataError
from csbot.service.jobs import Lease
from csbot.store import checked_intent_name

log = logging.getLogger("csbot.service.review")

INTENT_SAMPLE = 40  # examples per intent embedded for its centre
SPLIT_RESOLUTION = 3.0  # a split re-groups one proposal this much finer
KIND = "discover"
GAP_MIN_SIZE = 2  # unanswered messages are few: two alike make a topic
TYPICAL_SHOWN = 5


class Review:
    def __init__(self, engine):
        self.engine = engine
        self.store = engine.store

    # --- discovery ----------------------------------------------------------------------
    def run(self, import_id: str, *, actor: str, progress=None) -> dict:
        """Discover an import's intents and keep them as proposals. Example: -> {"groups": 35, "new": 35,
        "outliers": 40, "turns": 645}"""
        from csbot.dialogue.discovery import discover

        turns = self.store.history_turns(import_id)
        if not turns:
            raise DataError(f"no imported history {import_id!r}; import a history file first")
        texts = [t["text"] for t in turns]
        encode = self.engine.encoder
        found = discover(texts, encode, replies=[t["agent_reply"] for t in turns], progress=progress)
        centres = self.intent_centres()
        proposals = []
        for group in found.groups:
            closest, score, overlaps = _closest(group.centre, centres)
            proposals.append({"name": group.name, "phrases": group.phrases, "drafts": group.drafts,
                              "tightness": round(group.tightness, 4),
                              "closest": closest if overlaps else None, "closest_score": round(score, 4),
                              "turns": [turns[i]["key"] for i in _typical_first(group)]})
        new = self.store.add_proposals(import_id, proposals)
        result = {"groups": len(found.groups), "new": new, "outliers": sum(n < 0 for n in found.labels),
                  "turns": len(turns)}
        self.store.audit(actor, "discover", import_id, detail=result)
        return result

    def discover_file(self, path, *, progress=None) -> dict:
        """`csbot discover FILE`: group a history file's customer turns without storing anything; the
        turns are scrubbed first (dialogue/scrub.py), and any intent column is never read. Returns
        discovery's JSON (Discovery.as_dict) with each group's closest existing intent."""
        from pathlib import Path

        from csbot.dialogue.discovery import discover
        from csbot.dialogue.scrub import scrub_turns
        from csbot.importer import read_history

        turns, counts = scrub_turns(read_history(Path(path)))
        texts = [t["text"] for t in turns]
        found = discover(texts, self.engine.encoder, replies=[t.get("agent_reply") for t in turns], progress=progress)
        out = found.as_dict(texts)
        centres = self.intent_centres()
        for group, shown in zip(found.groups, out["groups"]):
            closest, score, overlaps = _closest(group.centre, centres)
            shown["closest_intent"] = {"intent": closest, "similarity": round(score, 4),
                                       "overlaps": overlaps} if closest else None
        out["turns"] = [{"conversation": t["conversation"], "position": t["position"]} for t in turns]
        out["scrubbed"] = counts
        return out

    def intent_centres(self) -> dict[str, np.ndarray]:
        """Each intent's centre: the mean of (up to INTENT_SAMPLE of) its examples' unit vectors."""
        by_intent: dict[str, list[str]] = {}
        for text, intent in self.store.examples():
            if len(by_intent.setdefault(intent, [])) < INTENT_SAMPLE:
                by_intent[intent].append(text)
        if not by_intent:
            return {}
        from csbot.dialogue.discovery import unit

        names = list(by_intent)
        vectors = np.asarray(self.engine.encoder([t for n in names for t in by_intent[n]]), dtype=np.float32)
        sizes = np.cumsum([len(by_intent[n]) for n in names])[:-1]
        centres = unit(np.stack([part.mean(0) for part in np.split(vectors, sizes)]))
        return dict(zip(names, centres))

    def start(self, import_id: str, *, user: str) -> str:
        """Run discovery in a background thread; returns its job id (one run at a time)."""
        settings = self.engine.settings
        if not self.store.has_history(import_id):
            raise DataError(f"no imported history {import_id!r}; import a history file first")
        job = self.store.start_job(kind=KIND, device="cpu", options=json.dumps({"import": import_id, "user": user}),
                                   at=self.store.clock(), stale_before=self.store.clock() - settings.job_lease_seconds)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        lease = Lease(self.store, job, worker=worker, every=settings.job_lease_seconds / 4)

        def progress(share: float, phase: str) -> None:
            self.store.update_job(job, phase=phase, step=round(share * 100), total=100)

        def work() -> None:
            try:
                result = self.run(import_id, actor=user, progress=progress)
                self.store.finish_job(job, status="done", phase="done", step=100, total=100,
                                      error=None, model_version=f"{result['new']} new of {result['groups']}")
            except Exception as exc:  # recorded for the page; the store keeps what was there before
                log.exception("discovery run %s failed", job)
                self.store.finish_job(job, status="failed", error=str(exc)[:500])
            finally:
                lease.stop()

        threading.Thread(target=work, daemon=True, name=f"discover-{job}").start()
        return job

    def status(self) -> dict | None:
        """The latest discovery run, with stale ones marked interrupted first."""
        self.store.interrupt_stale_jobs(stale_before=self.store.clock() - self.engine.settings.job_lease_seconds,
                                        kind=KIND)
        runs = self.store.jobs(kind=KIND, limit=1)
        return runs[0] if runs else None

    # --- the gaps: what the bot could not answer ------------------------------------------
    def gaps(self, *, days: int = 30, now: datetime | None = None) -> list[dict]:
        """The topics of the last `days` days' unanswered messages (fallbacks, low-confidence answers,
        dislikes: store.gap_messages), grouped as discovery groups history, most messages first, then
        fastest growing. growth: messages in the window's later half minus its earlier half.

        Example: -> [{"name": "mars_ship", "phrases": ["mars", "ship"], "messages": 6, "growth": 4,
                      "open": 5, "ids": [...], "examples": ["do you ship to mars", ...]}]
        """
        from csbot.dialogue.discovery import cluster, describe, terms, unit
        from csbot.dialogue.scrub import scrub

        now = now or datetime.now(timezone.utc)
        start = now - timedelta(days=days)
        middle = (now - timedelta(days=days / 2)).isoformat()
        rows = self.store.gap_messages(start.isoformat(), now.isoformat())
        if not rows:
            return []
        texts = [scrub(r["text"] or "") for r in rows]
        x = unit(self.engine.encoder(texts))
        labels, _ = cluster(x, min_size=GAP_MIN_SIZE)
        everyone = Counter(t for text in texts for t in set(terms(text)))
        topics = []
        for number in range(labels.max() + 1):
            group = describe(number, np.flatnonzero(labels == number), x, texts, everyone)
            topics.append(_topic([rows[i] for i in group.nearest], [texts[i] for i in group.nearest],
                                 group.phrases, group.name, middle))
        # the unanswered that fit no topic, each a topic of one
        topics += [_topic([rows[i]], [texts[i]], [], f"single_{rows[i]['id']}", middle)
                   for i in np.flatnonzero(labels < 0)]
        return sorted(topics, key=lambda t: (-t["messages"], -t["growth"], t["name"]))

    def answer_topic(self, message_ids: list[int], *, key: str, answer: str, actor: str) -> int:
        """Answer a whole gap topic at once: one curated answer whose phrasings are the topic's
        messages (scrubbed by save_answer), live at once; their open inbox items close as answered."""
        rows = [self.store.message(int(i)) for i in message_ids]
        questions = list(dict.fromkeys(r["text"] for r in rows if r and r["role"] == "customer"))
        if not questions:
            raise DataError("the topic has no customer messages left; refresh the list")
        answer_id = self.engine.save_answer(key=key, questions=questions, answer=answer, actor=actor,
                                            create_only=True)
        for row in rows:
            if row and row.get("inbox_status") == "open":
                self.store.set_inbox_status(row["id"], "answered")
        self.store.audit(actor, "gap_answer", key, detail={"answer": answer_id, "messages": len(rows)})
        return answer_id

    # --- review -------------------------------------------------------------------------
    def rename(self, proposal_id: int, name: str, *, actor: str) -> None:
        name = checked_intent_name(name)
        self.store.rename_proposal(proposal_id, name)
        self.store.audit(actor, "proposal_rename", str(proposal_id), detail={"name": name})

    def merge(self, into: int, other: int, *, actor: str) -> None:
        self.store.merge_proposals(into, other)
        self.store.audit(actor, "proposal_merge", str(into), detail={"merged": int(other)})

    def move(self, turn_key: str, to: int, *, actor: str) -> None:
        self.store.move_turn(turn_key, to)
        self.store.audit(actor, "proposal_move", str(to), detail={"turn": turn_key})

    def reject(self, proposal_id: int, *, actor: str) -> None:
        self.store.reject_proposal(proposal_id)
        self.store.audit(actor, "proposal_reject", str(proposal_id))

    def split(self, proposal_id: int, *, actor: str) -> list[int]:
        """Re-group one proposal finer; DataError when it does not come apart."""
        from csbot.dialogue.discovery import cluster, key_phrases, name_of, terms, unit

        proposal = self.store.proposal(proposal_id, open_only=True)
        turns = proposal["turns"]
        x = unit(self.engine.encoder([t["text"] for t in turns]))
        labels, _ = cluster(x, resolution=SPLIT_RESOLUTION)
        if labels.max() < 1:
            raise DataError(f"proposal {proposal['name']!r} does not come apart into finer groups; "
                            "move single examples out of it instead")
        centres = np.stack([x[labels == n].mean(0) for n in range(labels.max() + 1)])
        loose = labels < 0  # examples in no finer group join the group they are nearest
        labels[loose] = np.argmax(x[loose] @ centres.T, axis=1) if loose.any() else []
        everyone = Counter(t for turn in turns for t in set(terms(turn["text"])))
        parts = []
        for number in range(labels.max() + 1):
            members = [turns[i] for i in np.flatnonzero(labels == number)]
            phrases = key_phrases([m["text"] for m in members], everyone, len(turns))
            parts.append({"name": f"{proposal['name']}_{name_of(phrases, number)}"[:64], "phrases": phrases,
                          "drafts": proposal["drafts"], "tightness": None, "turns": [m["key"] for m in members]})
        ids = self.store.split_proposal(proposal_id, parts)
        self.store.audit(actor, "proposal_split", str(proposal_id), detail={"into": ids})
        return ids

    def accept(self, proposal_id: int, *, actor: str, intent: str | None = None,
               templates: list[str] | None = None) -> dict:
        """Make the proposal an intent: a new one named after it with `templates` (its drafts when
        None), or, with `intent` naming an existing one, more examples for that intent."""
        proposal = self.store.proposal(proposal_id, open_only=True)
        existing = self.store.intents()
        if intent:
            if intent not in existing:
                raise DataError(f"no intent {intent!r} to add to; pick one of the list or leave it empty "
                                "to make a new intent")
            name, variants, description = intent, None, existing[intent]
        else:
            name = checked_intent_name(proposal["name"])
            if name in existing:
                raise DataError(f"an intent {name!r} exists already; rename the proposal, or add it to {name!r}")
            variants = [v for v in (templates if templates is not None else proposal["drafts"]) if v.strip()]
            if not variants:
                raise DataError("a new intent needs at least one reply template; write one in the drafts box")
            variants = self.engine.reply_book().cleaned(name, variants)  # TemplateError with the reason
            description = "Proposed by discovery: " + (", ".join(proposal["phrases"]) or name)
        examples = [{"text": t["text"], "intent": name, "agent_reply": t["agent_reply"]} for t in proposal["turns"]]
        new = self.store.accept_proposal(proposal_id, intent=name, description=description, templates=variants,
                                         examples=examples)
        self.store.audit(actor, "proposal_accept", str(proposal_id),
                         detail={"intent": name, "examples": len(examples), "new_examples": new,
                                 "new_intent": variants is not None})
        self.engine.sync()
        return {"intent": name, "examples": len(examples), "new_examples": new}


def _topic(rows: list[dict], texts: list[str], phrases: list[str], name: str, middle: str) -> dict:
    later = sum(1 for r in rows if str(r["created_at"]) >= middle)
    return {"name": name, "phrases": phrases, "messages": len(rows), "growth": later - (len(rows) - later),
            "open": sum(1 for r in rows if r.get("inbox_status") == "open"), "ids": [r["id"] for r in rows],
            "examples": list(dict.fromkeys(texts))[:TYPICAL_SHOWN]}


def _closest(centre, centres: dict[str, np.ndarray]) -> tuple[str | None, float, bool]:
    """The intent whose centre is nearest a proposal's, the cosine, and whether the proposal overlaps
    it: it is closer to that intent than the intent's own nearest other intent is. A relative bar,
    since what a cosine means depends on the encoder (e5's centres all lie above 0.96, MiniLM's
    between 0.5 and 0.9 on the demo shops). With one intent, the bar is the encoder-free 0.8."""
    if centre is None or not centres:
        return None, 0.0, False
    names = list(centres)
    matrix = np.stack([centres[n] for n in names])
    scores = matrix @ centre
    best = int(np.argmax(scores))
    between = matrix @ matrix[best]
    between[best] = -1.0
    bar = float(between.max()) if len(names) > 1 else 0.8
    return names[best], float(scores[best]), float(scores[best]) >= bar


def _typical_first(group) -> list[int]:
    typical = set(group.typical)
    return [*group.typical, *(i for i in group.members if i not in typical)]

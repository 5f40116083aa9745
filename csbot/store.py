"""The SQLite store: every piece of state csbot keeps, through sqlite-utils.

Tables: shop facts, intents and their templates, training examples, curated answers and their
question phrasings, conversations and messages (each reply with its routing trace), model
versions and training jobs. The schema is a list of migrations applied on open.

This module does not embed, search or train; it keeps rows. Files (FAISS indexes, model
weights) live beside the database, not in it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from csbot.errors import DataError

MIGRATIONS = Migrations("csbot")


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    db["shop_facts"].create({"key": str, "value": str}, pk="key")
    db["intents"].create({"name": str, "description": str}, pk="name")
    db["templates"].create({"id": int, "intent": str, "position": int, "text": str,
                            "updated_at": str}, pk="id", foreign_keys=[("intent", "intents", "name")])
    db["templates"].create_index(["intent", "position"], unique=True)
    db["examples"].create({"id": str, "text": str, "intent": str, "source": str,
                           "agent_reply": str, "created_at": str, "added_at": str}, pk="id")
    db["examples"].create_index(["intent"])
    db["answers"].create({"id": int, "key": str, "answer": str, "created_at": str,
                          "updated_at": str}, pk="id")
    db["answers"].create_index(["key"], unique=True)
    db["answer_questions"].create({"id": int, "answer_id": int, "question": str}, pk="id",
                                  foreign_keys=[("answer_id", "answers", "id")])
    db["answer_questions"].create_index(["answer_id", "question"], unique=True)
    db["conversations"].create({"id": str, "channel": str, "created_at": str, "updated_at": str,
                                "customer_name": str, "owner": str, "slots": str,
                                "pending_intent": str, "pending_slot": str}, pk="id")
    db["messages"].create({"id": int, "conversation_id": str, "created_at": str, "role": str,
                           "text": str, "route": str, "intent": str, "confidence": float,
                           "answer_id": int, "model_version": str, "latency_ms": float,
                           "trace": str, "rating": int, "inbox": str, "inbox_status": str},
                          pk="id", foreign_keys=[("conversation_id", "conversations", "id")])
    db["messages"].create_index(["conversation_id", "id"])
    db["messages"].create_index(["inbox_status"])
    db["model_versions"].create({"id": str, "path": str, "created_at": str, "base_model": str,
                                 "data_hash": str, "metrics": str, "threshold": float,
                                 "device": str, "train_seconds": float, "is_current": int,
                                 "note": str}, pk="id")
    db["jobs"].create({"id": str, "kind": str, "status": str, "phase": str, "step": int,
                       "total": int, "loss": float, "device": str, "started_at": str,
                       "updated_at": str, "finished_at": str, "error": str,
                       "model_version": str}, pk="id")


@MIGRATIONS()
def m002_web(db: Database) -> None:
    """Accounts, staff replies and hand-offs, cancellable background jobs, version reports."""
    db["users"].create({"name": str, "role": str, "password_hash": str, "created_at": str,
                        "updated_at": str}, pk="name")
    db["messages"].add_column("author", str)  # the staff member who wrote a role='staff' message
    db["messages"].create_index(["created_at"])
    db["conversations"].add_column("handoff_at", str)  # when a person was asked for
    db["conversations"].create_index(["owner", "updated_at"])
    for column, kind in (("cancel_requested", int), ("eta_seconds", float), ("elapsed_seconds", float),
                         ("options", str), ("pid", int)):
        db["jobs"].add_column(column, kind)
    db["model_versions"].add_column("comparison", str)  # JSON: the new model against the serving one


def serialized(method):
    """Run a Store method under the store's lock: web handlers share one connection across threads,
    and a transaction must not interleave with another thread's writes."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def example_id(text: str, intent: str) -> str:
    """Stable id of a labelled example, so importing a file twice adds nothing.

    Example: example_id("Where is my order?", "order_status") == example_id("where is my order? ", "order_status")
    """
    key = " ".join(text.lower().split()) + "\x00" + intent
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]


class Store:
    """All reads and writes of csbot's rows. Takes an open Database (tests pass memory=True)."""

    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.RLock()
        MIGRATIONS.apply(db)

    @classmethod
    def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = Database(sqlite3.connect(str(path), check_same_thread=False))
        db.enable_wal()
        # WAL + NORMAL: no corruption on a crash, only the last commits can be lost on power failure,
        # and a chat message costs no fsync per write (the usual setting for WAL).
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA busy_timeout = 5000")
        return cls(db)

    # --- shop facts -------------------------------------------------------------------
    @serialized
    def set_shop(self, facts: dict[str, str]) -> None:
        self.db["shop_facts"].upsert_all([{"key": k, "value": v} for k, v in facts.items()], pk="key")

    @serialized
    def shop(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self.db["shop_facts"].rows}

    # --- intents and templates --------------------------------------------------------
    @serialized
    def set_intent(self, name: str, *, description: str, templates: list[str]) -> None:
        """Create or replace an intent and all of its template variants, in one transaction."""
        with self.db.atomic():
            self.db["intents"].upsert({"name": name, "description": description}, pk="name")
            self.db.execute("DELETE FROM templates WHERE intent = ?", [name])
            self.db["templates"].insert_all(
                [{"intent": name, "position": i, "text": t, "updated_at": now()}
                 for i, t in enumerate(templates)])

    @serialized
    def intents(self) -> dict[str, str]:
        return {r["name"]: r["description"] for r in self.db["intents"].rows_where(order_by="name")}

    @serialized
    def templates(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for row in self.db["templates"].rows_where(order_by="intent, position"):
            out.setdefault(row["intent"], []).append(row["text"])
        return out

    # --- training examples ------------------------------------------------------------
    @serialized
    def add_examples(self, rows: list[dict], *, source: str) -> int:
        """Insert labelled examples, skipping ones already present. Returns how many were new."""
        before = self.db["examples"].count
        stamp = now()
        self.db["examples"].insert_all(
            [{"id": example_id(r["text"], r["intent"]), "text": r["text"], "intent": r["intent"],
              "source": source, "agent_reply": r.get("agent_reply") or None,
              "created_at": r.get("created_at") or None, "added_at": stamp} for r in rows],
            ignore=True)
        return self.db["examples"].count - before

    @serialized
    def examples(self) -> list[tuple[str, str]]:
        return [(r["text"], r["intent"]) for r in self.db["examples"].rows_where(order_by="id")]

    # --- curated answers --------------------------------------------------------------
    @serialized
    def upsert_answer(self, *, key: str, questions: list[str], answer: str) -> int:
        """Create the answer `key`, or replace its text and phrasings. Returns its id."""
        with self.db.atomic():
            existing = list(self.db["answers"].rows_where("key = ?", [key]))
            if existing:
                answer_id = existing[0]["id"]
                self.db["answers"].update(answer_id, {"answer": answer, "updated_at": now()})
                self.db.execute("DELETE FROM answer_questions WHERE answer_id = ?", [answer_id])
            else:
                answer_id = self.db["answers"].insert(
                    {"key": key, "answer": answer, "created_at": now(), "updated_at": now()}).last_pk
            self.db["answer_questions"].insert_all(
                [{"answer_id": answer_id, "question": q} for q in dict.fromkeys(questions)])
        return answer_id

    @serialized
    def upsert_answers(self, answers: list[dict]) -> None:
        """Store several answers (dicts with key, questions, answer) in one transaction."""
        with self.db.atomic():
            for answer in answers:
                self.upsert_answer(key=answer["key"], questions=answer["questions"], answer=answer["answer"])

    @serialized
    def delete_answer(self, answer_id: int) -> None:
        self.answer(answer_id)  # DataError when it is already gone (a double click, two staff)
        with self.db.atomic():
            self.db.execute("DELETE FROM answer_questions WHERE answer_id = ?", [answer_id])
            self.db.execute("DELETE FROM answers WHERE id = ?", [answer_id])

    @serialized
    def answer(self, answer_id: int) -> dict:
        rows = list(self.db["answers"].rows_where("id = ?", [answer_id]))
        if not rows:
            raise DataError(f"no curated answer {answer_id}; it may have just been deleted. Refresh the list")
        return rows[0]

    @serialized
    def answers(self) -> list[dict]:
        rows = list(self.db["answers"].rows_where(order_by="key"))
        questions: dict[int, list[str]] = {}
        for q in self.db["answer_questions"].rows_where(order_by="id"):
            questions.setdefault(q["answer_id"], []).append(q["question"])
        return [{**r, "questions": questions.get(r["id"], [])} for r in rows]

    @serialized
    def questions(self, answer_id: int | None = None) -> list[dict]:
        """Question phrasings with their ids (the ids the answer index uses)."""
        if answer_id is None:
            return list(self.db["answer_questions"].rows_where(order_by="id"))
        return list(self.db["answer_questions"].rows_where("answer_id = ?", [answer_id], order_by="id"))

    # --- conversations and messages ---------------------------------------------------
    @serialized
    def conversation(self, conversation_id: str | None, *, channel: str = "cli") -> dict:
        """The conversation with this id, created if new (a new id is made when None)."""
        conversation_id = conversation_id or uuid.uuid4().hex
        table = self.db["conversations"]
        rows = list(table.rows_where("id = ?", [conversation_id]))
        if rows:
            row = rows[0]
        else:
            row = {"id": conversation_id, "channel": channel, "created_at": now(), "updated_at": now(),
                   "customer_name": None, "owner": "bot", "slots": "{}", "pending_intent": None,
                   "pending_slot": None}
            table.insert(row)
        return {**row, "slots": json.loads(row["slots"] or "{}")}

    @serialized
    def claim_for_person(self, conversation_id: str) -> bool:
        """Give a bot-owned conversation to a person, in one step; False when a person had it already
        (so a double click or two staff at once hand it over only once)."""
        cursor = self.db.execute("UPDATE conversations SET owner = 'human', handoff_at = ?, updated_at = ?, "
                                 "pending_intent = NULL, pending_slot = NULL WHERE id = ? AND owner != 'human'",
                                 [now(), now(), conversation_id])
        self.db.conn.commit()
        return cursor.rowcount == 1

    @serialized
    def update_conversation(self, conversation_id: str, **changes) -> None:
        if "slots" in changes:
            changes["slots"] = json.dumps(changes["slots"])
        self.db["conversations"].update(conversation_id, {**changes, "updated_at": now()})

    @serialized
    def add_message(self, conversation_id: str, *, role: str, text: str, **fields) -> int:
        if "trace" in fields and not isinstance(fields["trace"], str):
            fields["trace"] = json.dumps(fields["trace"])
        return self.db["messages"].insert({"conversation_id": conversation_id, "created_at": now(),
                                           "role": role, "text": text, **fields}).last_pk

    @serialized
    def messages(self, conversation_id: str) -> list[dict]:
        return list(self.db["messages"].rows_where("conversation_id = ?", [conversation_id],
                                                   order_by="id"))

    @serialized
    def last_bot_message(self, conversation_id: str) -> dict | None:
        rows = list(self.db["messages"].rows_where("conversation_id = ? AND role = 'bot'",
                                                   [conversation_id], order_by="id desc", limit=1))
        return rows[0] if rows else None

    @serialized
    def count_intent_replies(self, conversation_id: str, intent: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'bot' AND intent = ?"
            " AND route = 'template'", [conversation_id, intent]).fetchone()[0]

    @serialized
    def message(self, message_id: int) -> dict | None:
        rows = list(self.db["messages"].rows_where("id = ?", [message_id]))
        return rows[0] if rows else None

    @serialized
    def messages_after(self, conversation_id: str, after_id: int = 0) -> list[dict]:
        """The conversation's messages with an id above after_id (what a polling page has not seen)."""
        return list(self.db["messages"].rows_where("conversation_id = ? AND id > ?", [conversation_id, after_id],
                                                   order_by="id"))

    @serialized
    def flag_for_inbox(self, message_id: int, *, reason: str) -> None:
        self.db["messages"].update(message_id, {"inbox": reason, "inbox_status": "open"})

    @serialized
    def set_inbox_status(self, message_id: int, status: str) -> None:
        """Close an inbox item: 'labelled', 'answered' or 'dismissed' (or 'open' to reopen it)."""
        if status not in ("open", "labelled", "answered", "dismissed"):
            raise DataError(f"inbox status must be open, labelled, answered or dismissed; found {status!r}")
        if self.message(message_id) is None:
            raise DataError(f"no message {message_id}")
        self.db["messages"].update(message_id, {"inbox_status": status})

    @serialized
    def inbox(self, *, status: str = "open", limit: int = 200) -> list[dict]:
        """Customer messages waiting for staff, newest first, each with the bot's reply to it
        (`reply_text`, `reply_route`, `reply_trace` as a dict, `reply_id`, `rating`) when there was one."""
        rows = self.db.execute(
            """SELECT m.*, r.id AS reply_id, r.text AS reply_text, r.route AS reply_route, r.trace AS reply_trace,
                      r.rating AS rating, r.model_version AS model_version_reply
               FROM messages m LEFT JOIN messages r ON r.id = (
                   SELECT min(id) FROM messages WHERE conversation_id = m.conversation_id AND id > m.id
                   AND role = 'bot' AND id < coalesce((SELECT min(id) FROM messages WHERE
                   conversation_id = m.conversation_id AND id > m.id AND role = 'customer'), 9e18))
               WHERE m.inbox_status = ? ORDER BY m.id DESC LIMIT ?""", [status, limit])
        columns = [c[0] for c in rows.description]
        out = []
        for values in rows.fetchall():
            row = dict(zip(columns, values))
            row["reply_trace"] = json.loads(row["reply_trace"]) if row["reply_trace"] else {}
            out.append(row)
        return out

    @serialized
    def rate(self, conversation_id: str, message_id: int, rating: int) -> None:
        """Store a customer's like (1) or dislike (-1) of a bot reply in their own conversation.
        A dislike sends the customer message it answered to the inbox."""
        if rating not in (-1, 0, 1):
            raise DataError(f"a rating is 1 (like), -1 (dislike) or 0 (none); found {rating!r}")
        message = self.message(message_id)
        if message is None or message["conversation_id"] != conversation_id or message["role"] != "bot":
            raise DataError(f"message {message_id} is not a bot reply in this conversation")
        with self.db.atomic():
            self.db["messages"].update(message_id, {"rating": rating})
            if rating == -1:
                asked = list(self.db["messages"].rows_where(
                    "conversation_id = ? AND id < ? AND role = 'customer'", [conversation_id, message_id],
                    order_by="id desc", limit=1))
                if asked and asked[0]["inbox_status"] in (None, "dismissed"):
                    self.flag_for_inbox(asked[0]["id"], reason="disliked")

    @serialized
    def live_conversations(self, *, limit: int = 100) -> list[dict]:
        """Conversations a person owns or was asked for, most recently active first."""
        return [{**r, "slots": json.loads(r["slots"] or "{}")} for r in self.db["conversations"].rows_where(
            "owner = 'human' OR handoff_at IS NOT NULL", order_by="updated_at desc", limit=limit)]

    @serialized
    def recent_customer_messages(self, limit: int = 500) -> list[str]:
        return [r["text"] for r in self.db["messages"].rows_where("role = 'customer'", order_by="id desc",
                                                                  limit=limit)]

    @serialized
    def query(self, sql: str, params: list | tuple = ()) -> list[dict]:
        """Rows of a read-only SQL query as dicts (the dashboard's figures)."""
        cursor = self.db.execute(sql, list(params))
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, values)) for values in cursor.fetchall()]

    # --- user accounts ----------------------------------------------------------------
    @serialized
    def add_user(self, name: str, *, role: str, password_hash: str) -> None:
        if list(self.db["users"].rows_where("name = ?", [name])):
            raise DataError(f"there is already a user named {name!r}; pick another name or reset its password")
        self.db["users"].insert({"name": name, "role": role, "password_hash": password_hash,
                                 "created_at": now(), "updated_at": now()})

    @serialized
    def user(self, name: str) -> dict | None:
        rows = list(self.db["users"].rows_where("name = ?", [name]))
        return rows[0] if rows else None

    @serialized
    def users(self) -> list[dict]:
        """Accounts without their password hashes."""
        return [{k: v for k, v in r.items() if k != "password_hash"}
                for r in self.db["users"].rows_where(order_by="name")]

    @serialized
    def update_user(self, name: str, **changes) -> None:
        if self.user(name) is None:
            raise DataError(f"no user named {name!r}")
        self.db["users"].update(name, {**changes, "updated_at": now()})

    # --- model versions ---------------------------------------------------------------
    @serialized
    def add_model_version(self, row: dict) -> None:
        row = {**row, "metrics": json.dumps(row.get("metrics") or {}), "is_current": 0}
        self.db["model_versions"].insert(row)

    @serialized
    def model_versions(self) -> list[dict]:
        rows = self.db["model_versions"].rows_where(order_by="created_at desc")
        return [{**r, "metrics": json.loads(r["metrics"] or "{}"),
                 "comparison": json.loads(r["comparison"]) if r.get("comparison") else None} for r in rows]

    @serialized
    def set_comparison(self, version: str, comparison: dict) -> None:
        self.db["model_versions"].update(version, {"comparison": json.dumps(comparison)})

    @serialized
    def current_model(self) -> dict | None:
        rows = [r for r in self.model_versions() if r["is_current"]]
        return rows[0] if rows else None

    @serialized
    def set_current_model(self, version: str) -> None:
        if not list(self.db["model_versions"].rows_where("id = ?", [version])):
            raise DataError(f"no model version {version!r}; see `python -m csbot models` for the list")
        with self.db.atomic():
            self.db.execute("UPDATE model_versions SET is_current = (id = ?)", [version])

    # --- training jobs ----------------------------------------------------------------
    @serialized
    def create_job(self, *, kind: str, device: str) -> str:
        job_id = uuid.uuid4().hex[:12]
        self.db["jobs"].insert({"id": job_id, "kind": kind, "status": "running", "phase": "queued",
                                "step": 0, "total": 0, "device": device, "started_at": now(),
                                "updated_at": now()})
        return job_id

    @serialized
    def update_job(self, job_id: str, **changes) -> None:
        self.db["jobs"].update(job_id, {**changes, "updated_at": now()})

    @serialized
    def job(self, job_id: str) -> dict:
        return self.db["jobs"].get(job_id)

    @serialized
    def jobs(self, *, kind: str = "train", status: str | None = None, limit: int = 20) -> list[dict]:
        """Jobs of a kind, newest first (optionally only those with a status, e.g. 'running')."""
        where, params = "kind = ?", [kind]
        if status:
            where, params = where + " AND status = ?", params + [status]
        return list(self.db["jobs"].rows_where(where, params, order_by="started_at desc", limit=limit))

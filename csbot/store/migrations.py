"""The schema, written once: a list of sqlite-utils migrations applied in order when a store opens.

A migration is never edited once released; a change to the schema is a new function below.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

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


@MIGRATIONS()
def m003_shared(db: Database) -> None:
    """What every process must see alike: change counters, login sessions and failures, shared rate
    counters, the audit log, account state and training-job leases."""
    # One counter per kind of shared state (answers, templates, shop, model); a process compares
    # them with what it serves and catches up when one moved.
    db["generations"].create({"name": str, "value": int, "updated_at": str}, pk="name")
    db["service_keys"].create({"name": str, "value": str, "created_at": str}, pk="name")
    db["users"].add_column("disabled", int, not_null_default=0)
    # A login session: the sha-256 of the cookie's token (a stolen database holds no usable token).
    db["sessions"].create({"id": str, "user": str, "created_at": float, "seen_at": float,
                           "expires_at": float, "address": str, "agent": str}, pk="id")
    db["sessions"].create_index(["user"])
    db["login_failures"].create({"name": str, "address": str, "failures": int, "last_at": float,
                                 "locked_until": float}, pk=("name", "address"))
    db["rate_hits"].create({"key": str, "window": int, "hits": int}, pk=("key", "window"))
    db["audit"].create({"id": int, "at": str, "actor": str, "action": str, "target": str,
                        "detail": str, "address": str}, pk="id")
    db["audit"].create_index(["at"])
    db["audit"].create_index(["actor", "at"])
    db["audit"].create_index(["action", "at"])
    db["jobs"].add_column("heartbeat_at", float)  # epoch seconds; a stale one means the run is gone
    db["jobs"].add_column("worker", str)  # host:pid of the process that runs it

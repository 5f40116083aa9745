"""The store: every piece of state csbot keeps, and the one source of truth every process follows.

`Store` opens a database (backend.py: a SQLite file in WAL mode, shared by the processes of one
machine, or PostgreSQL through a connection pool, shared by many machines; the SQL is written once
for both) and is made of one part per noun, each in its own module:

    catalog        shop facts, intents, reply templates
    examples       labelled training examples
    answers        curated answers and their phrasings (and what a valid answer is)
    conversations  conversations, messages, the staff inbox, ratings
    users          accounts (and the last-admin rule), sessions: logins, failed logins, rate counters
    models, jobs   model versions and which serves; training runs and their leases
    audit          who did what
    generations    change counters every process polls to catch up with the others

The schema is a list of migrations (migrations.py) applied on open. This package does not embed,
search or train; it keeps rows. Files (FAISS indexes, model weights) live in the artifacts folder.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from csbot.store.answers import AnswerRows, clean_answer, clean_question
from csbot.store.audit import AuditRows, local_actor
from csbot.store import migrations
from csbot.store.backend import Database, open_database, now, serialized, snapshot, write
from csbot.store.catalog import CatalogRows
from csbot.store.conversations import ConversationRows
from csbot.store.examples import ExampleRows, example_id
from csbot.store.generations import GenerationRows
from csbot.store.jobs import JobRows
from csbot.store.models import ModelRows
from csbot.store.sessions import SessionRows
from csbot.store.users import UserRows

__all__ = ["Database", "Store", "open_database", "snapshot", "clean_answer", "clean_question", "example_id", "local_actor", "now", "write"]


class Store(CatalogRows, ExampleRows, AnswerRows, ConversationRows, UserRows, SessionRows, ModelRows,
            JobRows, AuditRows, GenerationRows):
    """All reads and writes of csbot's rows. Takes an open Database (tests pass SqliteDatabase(":memory:"))."""

    def __init__(self, db: Database):
        self.db = db
        with db.lock:  # two processes opening an old store at once migrate it once (migrations.apply)
            migrations.apply(db)

    @classmethod
    def open(cls, target: str | Path, *, pool_size: int = 10) -> Store:
        """The store at a `postgresql://` URL (`pool_size` connections at most) or in a SQLite file
        (made when missing)."""
        return cls(open_database(target, pool_size=pool_size))

    @classmethod
    def from_settings(cls, settings) -> Store:
        return cls.open(settings.database, pool_size=settings.database_pool_size)

    def close(self) -> None:
        self.db.close()

    @serialized
    def query(self, sql: str, params: list | tuple = ()) -> list[dict]:
        """Rows of a read-only SQL query as dicts (the dashboard's figures)."""
        return self.db.rows(sql, params)

    @serialized
    def service_key(self, name: str) -> str:
        """A random secret shared by every process of this store (made on first use, then kept).

        Example: service_key("browser_state") -> "Qx3...": the same value in every server process.
        """
        self.db.execute("INSERT INTO service_keys (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [name, secrets.token_urlsafe(32), now()])
        return self.db.value("SELECT value FROM service_keys WHERE name = ?", [name])

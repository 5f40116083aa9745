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
    stats          the dashboard's counts over a window of days
    history        raw support history imported without labels (scrubbed customer turns)
    proposals      intents proposed by discovery, and the staff's review of them

The schema is a list of migrations (migrations.py) applied on open. This package does not embed,
search or train; it keeps rows. Files (FAISS indexes, model weights) live in the artifacts folder.

May import: csbot.errors, and sqlite3, sqlite-utils and psycopg (the only layer that does: all of
csbot's SQL is written here). Must not import any other csbot layer. tests/test_layers.py checks this.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from csbot.store import migrations
from csbot.store.answers import AnswerRows, clean_answer, clean_question
from csbot.store.audit import AuditRows, local_actor
from csbot.store.backend import Database, now, serialized, snapshot, write
from csbot.store.catalog import CatalogRows, checked_intent_name
from csbot.store.conversations import ConversationRows, client_key, valid_conversation_id
from csbot.store.examples import ExampleRows, example_id
from csbot.store.generations import GenerationRows
from csbot.store.history import HistoryRows
from csbot.store.jobs import JobRows
from csbot.store.models import ModelRows
from csbot.store.proposals import ProposalRows
from csbot.store.sessions import SessionRows
from csbot.store.stats import StatsRows
from csbot.store.users import UserRows
from csbot.store.webhooks import WebhookRows

__all__ = ["Database", "Store", "checked_intent_name", "clean_answer", "clean_question", "client_key", "example_id",
           "local_actor", "now", "open_database", "snapshot", "valid_conversation_id", "write"]


def open_database(target, *, pool_size: int = 10) -> Database:
    """The database a store lives in: a `postgresql://` URL, or the path of a SQLite file.

    Example: open_database("postgresql://csbot@db/csbot"); open_database(Path("home/csbot.db"))
    """
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from csbot.store.postgres import PostgresDatabase  # psycopg only when asked for
        return PostgresDatabase(text, pool_size=pool_size)
    from csbot.store.sqlite import SqliteDatabase
    return SqliteDatabase(text.removeprefix("sqlite://"))  # sqlite:///abs/path.db or a plain path


class Store(CatalogRows, ExampleRows, AnswerRows, ConversationRows, UserRows, SessionRows, ModelRows,
            JobRows, AuditRows, GenerationRows, StatsRows, HistoryRows, ProposalRows, WebhookRows):
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

    def clock(self) -> float:
        """Now by the database's clock (seconds since the epoch): leases, sessions and lockouts are
        stamped and compared with it, never with the clocks of the different machines using the store."""
        return self.db.clock()

    @serialized
    def service_key(self, name: str) -> str:
        """A random secret shared by every process of this store (made on first use, then kept).

        Example: service_key("browser_state") -> "Qx3...": the same value in every server process.
        """
        self.db.execute("INSERT INTO service_keys (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [name, secrets.token_urlsafe(32), now()])
        return self.db.value("SELECT value FROM service_keys WHERE name = ?", [name])

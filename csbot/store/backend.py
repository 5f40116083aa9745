"""The connection under the store: opening the SQLite file, the lock that serialises a process's
use of its one connection, write transactions, and the clock the rows are stamped with.

SQLite in WAL mode lets several processes on one machine share the file: readers never block,
writers take turns (busy_timeout). A read-then-write runs in `write()`, a `BEGIN IMMEDIATE`
transaction that takes the write lock before it reads, so the check and the change cannot be
split by another process's write. This module knows no table.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database


def now() -> str:
    """The time rows are stamped with: UTC ISO 8601 with milliseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def connect(path: Path) -> Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(sqlite3.connect(str(path), check_same_thread=False))
    db.enable_wal()
    # WAL + NORMAL: no corruption on a crash, only the last commits can be lost on power failure,
    # and a chat message costs no fsync per write (the usual setting for WAL).
    db.execute("PRAGMA synchronous = NORMAL")
    # Another process holding the write lock (a training child, a second server, the CLI) makes
    # a writer wait this long before "database is locked".
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def serialized(method):
    """Run a Store method under the store's lock: web handlers share one connection across threads,
    and a transaction must not interleave with another thread's writes."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


@contextlib.contextmanager
def write(db: Database) -> Iterator[Database]:
    """One write transaction that holds SQLite's write lock from its first statement (BEGIN
    IMMEDIATE), so what it reads cannot change before it writes. Nested use joins the outer one."""
    if db.conn.in_transaction:
        with db.atomic():  # a savepoint inside the outer transaction
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (a full disk, a busy lock) can leave the transaction open; left open, every
        # later write of this connection would join it uncommitted and hold the lock for good.
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise


def rows(db: Database, sql: str, params: list | tuple = ()) -> list[dict]:
    """The rows of a query as dicts."""
    cursor = db.execute(sql, list(params))
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, values)) for values in cursor.fetchall()]

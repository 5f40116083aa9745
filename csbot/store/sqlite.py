"""The SQLite engine: one file in WAL mode, shared by the processes of one machine.

Readers never block; writers take turns (busy_timeout). A process has one connection, shared by
its threads under a lock. A serial write is `BEGIN IMMEDIATE`, which takes the file's write lock
before its first read, so another process's write cannot land between a check and its change.
sqlite-utils opens the file and sets WAL.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database as SqliteUtilsDatabase

from csbot.store.backend import SQLITE, Database, Result


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, path: str):
        """`path` is a file (made with its folder when missing) or ":memory:" (tests)."""
        if path == ":memory:":
            self.utils = SqliteUtilsDatabase(memory=True)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.utils = SqliteUtilsDatabase(sqlite3.connect(path, check_same_thread=False))
            self.utils.enable_wal()
            # WAL + NORMAL: no corruption on a crash, only the last commits can be lost on power
            # failure, and a chat message costs no fsync per write (the usual setting for WAL).
            self.utils.execute("PRAGMA synchronous = NORMAL")
            # Another process holding the write lock (a training child, a second server, the CLI)
            # makes a writer wait this long before "database is locked".
            self.utils.execute("PRAGMA busy_timeout = 10000")
        self.conn = self.utils.conn
        self.conn.isolation_level = None  # autocommit: a statement outside `transaction()` commits at once
        self.url = f"sqlite://{Path(path).resolve()}" if path != ":memory:" else "sqlite://:memory:"
        self.lock = threading.RLock()

    def execute(self, sql: str, params: list | tuple = ()) -> Result:
        with self.lock:
            cursor = self.conn.execute(sql, list(params))
            columns = [c[0] for c in cursor.description] if cursor.description else []
            return Result(columns, cursor.fetchall() if columns else [], cursor.rowcount)

    def executemany(self, sql: str, rows: list[list]) -> None:
        with self.lock:
            self.conn.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    @contextlib.contextmanager
    def transaction(self, *, serial: bool, snapshot: bool = False) -> Iterator[None]:
        # SQLite has one writer at a time anyway: every write transaction is serial. A snapshot is a
        # deferred transaction (its first read fixes what it sees).
        with self.lock:
            if self.conn.in_transaction:
                with self.utils.atomic():  # a savepoint inside the outer transaction
                    yield
                return
            self.conn.execute("BEGIN" if snapshot else "BEGIN IMMEDIATE")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (a full disk, a busy lock) can leave the transaction open; left open,
                # every later write of this connection would join it uncommitted and hold the lock.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def tables(self) -> set[str]:
        return set(self.utils.table_names())

    def close(self) -> None:
        with self.lock:
            self.conn.close()

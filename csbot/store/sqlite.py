"""The SQLite engine: one file in WAL mode, shared by the processes of one machine.

Readers never block; writers take turns (busy_timeout). Each thread of a process has its own
connection, so a read never waits behind another thread's write transaction (an in-memory
database, which is one connection, is shared under a lock). A serial write is `BEGIN IMMEDIATE`,
which takes the file's write lock before its first read, so another write cannot land between a
check and its change. sqlite-utils sets WAL.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database as SqliteUtilsDatabase

from csbot.store.backend import SQLITE, Database, Result


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, path: str):
        """`path` is a file (made with its folder when missing) or ":memory:" (tests)."""
        self._connections: weakref.WeakSet[_Held] = weakref.WeakSet()  # to close them all
        self._local = threading.local()
        self._opened = threading.Lock()
        if path == ":memory:":  # one database per connection: every thread shares the one, in turn
            self.path = None
            self.lock = threading.RLock()
            self._shared = self._connect(":memory:")
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.path = str(path)
            # Each thread has its own connection: a reader never waits behind another thread's
            # write (WAL lets readers through), and writers wait for each other in SQLite itself.
            self.lock = contextlib.nullcontext()
            self._shared = None
            SqliteUtilsDatabase(self.conn).enable_wal()
        self.url = f"sqlite://{Path(path).resolve()}" if path != ":memory:" else "sqlite://:memory:"

    def _connect(self, target: str) -> _Held:
        conn = sqlite3.connect(target, check_same_thread=False)
        conn.isolation_level = None  # autocommit: a statement outside `transaction()` commits at once
        if target != ":memory:":
            # WAL + NORMAL: no corruption on a crash, only the last commits can be lost on power
            # failure, and a chat message costs no fsync per write (the usual setting for WAL).
            conn.execute("PRAGMA synchronous = NORMAL")
            # Another connection holding the write lock (another thread, a training child, a second
            # server, the CLI) makes a writer wait this long before "database is locked".
            conn.execute("PRAGMA busy_timeout = 10000")
        held = _Held(conn)
        with self._opened:
            self._connections.add(held)
        return held

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (the one shared connection of an in-memory database)."""
        if self._shared is not None:
            return self._shared.conn
        held = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = self._connect(self.path)
        return held.conn

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
            conn = self.conn
            if conn.in_transaction:  # a savepoint inside the outer transaction
                name = f"sp{id(object()):x}"
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    raise
                conn.execute(f"RELEASE {name}")
                return
            conn.execute("BEGIN" if snapshot else "BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (a full disk, a busy lock) can leave the transaction open; left open,
                # every later write of this connection would join it uncommitted and hold the lock.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}

    def close(self) -> None:
        with self._opened:
            for held in list(self._connections):
                held.conn.close()


class _Held:
    """A thread's connection, closed when the thread ends (its thread-local storage goes with it)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __del__(self) -> None:
        try:
            self.conn.close()
        except Exception:  # at interpreter exit, or closed already
            pass

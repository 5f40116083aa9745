"""The PostgreSQL engine: psycopg 3 with a connection pool, for stores shared by several machines.

Each thread takes its own connection from the pool for a statement, or holds one for a whole
transaction (kept per thread, so the store's methods called inside a transaction join it). A
serial write takes one transaction-level advisory lock, so the business rules' checks see the
same one-writer-at-a-time world they have on SQLite; a plain write relies on row locks
(`SELECT ... FOR UPDATE`) and runs beside other writers. Stamps are `timestamptz`, JSON columns
`jsonb`; rows come back as the same plain values SQLite gives (backend.plain). The session's
time zone is UTC. A restart or failover of the server is waited out (up to OUTAGE_SECONDS): each
connection is checked as it leaves the pool, a call waits for a new one while the server is away,
and a read cut mid-way is tried once more.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from csbot.errors import StoreUnavailable
from csbot.store.backend import POSTGRES, Database, Result, plain

WRITERS_LOCK = 0x637362_6F74  # pg_advisory_xact_lock key of serial writes ("csbot")
OUTAGE_SECONDS = 60.0  # how long a call waits for the server to come back (a restart, a failover)


@functools.lru_cache(maxsize=1024)
def _native(sql: str) -> str:
    """Our `?` placeholders as psycopg's `%s` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def redacted(url: str) -> str:
    """The URL without its password, for messages. Example: postgresql://csbot:***@db/csbot"""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return url.replace(f":{info['password']}@", ":***@") if info.get("password") else url


class PostgresDatabase(Database):
    dialect = POSTGRES

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 15.0):
        self.url = url
        self.lock = contextlib.nullcontext()  # the pool gives each thread its own connection
        self._local = threading.local()
        self.local_clock = time.time  # this machine's clock (a test gives it one that runs behind)
        self._offset, self._offset_at = 0.0, 0.0  # the server's clock minus ours, and when measured
        # Each connection is checked as it leaves the pool (a cheap round trip), so one cut by a
        # restart or a failover is replaced instead of failing the call; while the server is away a
        # call waits for a new connection, up to `timeout`, so an outage shorter than that only
        # slows calls down.
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, name="csbot",
                                   kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
                                   check=ConnectionPool.check_connection, timeout=OUTAGE_SECONDS,
                                   reconnect_timeout=3600)
        try:
            self.pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self.pool.close()
            raise StoreUnavailable(f"could not connect to PostgreSQL at {redacted(url)} within {connect_timeout:.0f} s; "
                                   "check CSBOT_DATABASE_URL (host, database, user, password) and that the "
                                   "server is running") from None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self.pool.connection() as conn:
            yield conn

    def execute(self, sql: str, params: list | tuple = ()) -> Result:
        # A read on its own is tried again when its connection is cut under it (a failover): it
        # changes nothing, so twice is safe. A write is not: it may have landed before the cut.
        retry = not self.in_transaction and sql.lstrip()[:6].upper() == "SELECT"
        for attempt in (1, 2) if retry else (2,):
            try:
                with self._connection() as conn:
                    cursor = conn.execute(_native(sql), list(params))
                    columns = [c.name for c in cursor.description] if cursor.description else []
                    values = [tuple(map(plain, row)) for row in cursor.fetchall()] if columns else []
                    return Result(columns, values, cursor.rowcount)
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
            except PoolTimeout:
                raise StoreUnavailable(f"PostgreSQL at {self.redacted_url} has not answered for {OUTAGE_SECONDS:.0f} s; "
                                       "the call was not made. Check that the server is running") from None
        raise AssertionError("unreachable")

    def executemany(self, sql: str, rows: list[list]) -> None:
        with self._connection() as conn:
            conn.cursor().executemany(_native(sql), rows)

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextlib.contextmanager
    def transaction(self, *, serial: bool, snapshot: bool = False) -> Iterator[None]:
        held = getattr(self._local, "conn", None)
        if held is not None:
            with held.transaction():  # a savepoint inside the outer transaction
                if serial:
                    held.execute("SELECT pg_advisory_xact_lock(%s)", [WRITERS_LOCK])
                yield
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    if snapshot:
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    if serial:
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITERS_LOCK])
                    yield
            finally:
                self._local.conn = None

    def clock(self) -> float:
        """The server's clock: this machine's, corrected by the offset to the server's measured at
        most a minute ago (half a round trip is the error), so it costs no query per call."""
        local = self.local_clock()
        if local - self._offset_at > 60:  # never measured (0), or a minute ago
            try:
                before = self.local_clock()
                server = self.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0]
                after = self.local_clock()
                self._offset, self._offset_at = float(server) - (before + after) / 2, after
            except (psycopg.Error, StoreUnavailable):
                pass  # the last offset stands until the server answers again
        return local + self._offset

    @property
    def redacted_url(self) -> str:
        return redacted(self.url)

    def json_columns(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for table, column in self.execute("SELECT table_name, column_name FROM information_schema.columns "
                                          "WHERE table_schema = current_schema() AND data_type = 'jsonb'").fetchall():
            found.setdefault(table, []).append(column)
        return found

    def continue_ids(self, table: str) -> None:
        self.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                     f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")

    def tables(self) -> set[str]:
        return {r[0] for r in self.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                                           ).fetchall()}

    def close(self) -> None:
        self.pool.close()

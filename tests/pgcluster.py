"""A throwaway PostgreSQL cluster for tests and benchmarks: Debian's server binaries, a temporary
folder, a Unix socket only (no TCP port to collide with), fsync off, removed after.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to the
`postgres` user (`runuser -u postgres -- ...`) in a folder that user owns.

Example:
    with Cluster.started(Path("/tmp/pg")) as cluster:
        url = cluster.create_database("t1")  # postgresql://postgres@/t1?host=/tmp/pg/socket
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed (no /usr/lib/postgresql/<version>/bin/pg_ctl); "
                           "run: bash .ci/setup (it installs Debian's postgresql package)")
    return Path(found[-1]).parent


class Cluster:
    def __init__(self, root: Path):
        self.root, self.bin = Path(root), server_bin()
        self.data, self.socket = self.root / "data", self.root / "socket"
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = (["runuser", "-u", "postgres", "--"] if self.as_postgres else []) + list(args)
        done = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip() or done.stdout}")

    def start(self) -> Cluster:
        self.socket.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        options = (f"-k {self.socket} -c listen_addresses='' -c fsync=off "
                   "-c full_page_writes=off -c max_connections=300")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")
        return self

    def restart(self) -> None:
        """Stop the server at once (every connection is cut, as in a crash) and start it again."""
        # -l again: without it the new server would hold this call's output pipes open for ever
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "restart")

    def pause(self, seconds: float) -> None:
        """Stop the server at once (every connection cut, as in a crash or a failover), keep it
        down for `seconds`, and start it again."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        time.sleep(seconds)  # the outage itself: this is what is being survived, not a wait for something
        options = (f"-k {self.socket} -c listen_addresses='' -c fsync=off "
                   "-c full_page_writes=off -c max_connections=300")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket}"

    def create_database(self, name: str) -> str:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @classmethod
    @contextlib.contextmanager
    def started(cls, root: Path) -> Iterator[Cluster]:
        cluster = cls(root)
        try:
            yield cluster.start()
        finally:
            cluster.stop()

"""Login sessions, failed-login counts and shared rate counters: the rows that let every server
process agree on who is logged in and who is locked out.

A session row is keyed by the sha-256 of its cookie token and holds its own idle and absolute
expiry; auth.py decides the policy (how long, how many failures) and passes times in, so this
module holds no clock of its own.
"""

from __future__ import annotations

from csbot.store.backend import serialized, write


class SessionRows:
    @serialized
    def add_session(self, session_id: str, *, user: str, at: float, expires_at: float, address: str,
                    agent: str, password_hash: str, role: str) -> bool:
        """Record a session for `user`, only while the account still has the password hash and role
        that were checked and is enabled: a reset, role change, disable or delete that lands between
        the password check and this insert leaves no session behind. Returns whether it was made."""
        with write(self.db):
            cursor = self.db.execute(
                'INSERT INTO sessions (id, "user", created_at, seen_at, expires_at, address, agent) '
                "SELECT ?, name, ?, ?, ?, ?, ? FROM users WHERE name = ? AND password_hash = ? AND role = ? "
                "AND disabled = 0", [session_id, at, at, expires_at, address, agent[:200], user, password_hash, role])
            return cursor.rowcount == 1

    @serialized
    def session(self, session_id: str) -> dict | None:
        """The session with its account's role and disabled flag, or None."""
        return self.db.one('SELECT s.*, u.role AS role, u.disabled AS disabled FROM sessions s '
                           'JOIN users u ON u.name = s."user" WHERE s.id = ?', [session_id])

    @serialized
    def touch_session(self, session_id: str, at: float) -> None:
        self.db.execute("UPDATE sessions SET seen_at = ? WHERE id = ?", [at, session_id])

    @serialized
    def end_session(self, session_id: str) -> str | None:
        """Delete one session; returns its user (None when it was not there)."""
        with write(self.db):
            user = self.db.value('SELECT "user" FROM sessions WHERE id = ?', [session_id])
            self.db.execute("DELETE FROM sessions WHERE id = ?", [session_id])
        return user

    @serialized
    def prune_sessions(self, *, idle_before: float, at: float) -> int:
        """Delete sessions idle since before `idle_before` or past their absolute expiry."""
        return self.db.execute("DELETE FROM sessions WHERE seen_at < ? OR expires_at <= ?",
                               [idle_before, at]).rowcount

    # --- browsers an account logged in from --------------------------------------------
    @serialized
    def add_device(self, device_id: str, *, user: str, at: float) -> None:
        self.db.execute('INSERT INTO devices (id, "user", created_at, seen_at) VALUES (?, ?, ?, ?) '
                        "ON CONFLICT (id) DO NOTHING", [device_id, user, at, at])

    @serialized
    def known_device(self, device_id: str, *, user: str) -> bool:
        """Whether `user` logged in from this browser before."""
        return bool(self.db.value('SELECT count(*) FROM devices WHERE id = ? AND "user" = ?', [device_id, user]))

    # --- failed logins ---------------------------------------------------------------
    @serialized
    def login_failures(self, name: str, address: str) -> dict | None:
        return self.db.one("SELECT * FROM login_failures WHERE name = ? AND address = ?", [name, address])

    @serialized
    def begin_login_attempt(self, name: str, address: str, *, at: float, lock_for, forget_before: float) -> float:
        """Count an attempt to log in as `name` from `address` as a failure up front (a success
        clears it), unless that pair is locked: then count nothing and return the seconds left.
        `lock_for(failures) -> seconds` is the back-off after that many failures; failures from before
        `forget_before` no longer count. One transaction,
        so attempts sent at once cannot all slip past the lock while their hashes run.

        Example: with lock_for = lambda n: 0 if n < 5 else 30: four attempts -> 0.0 each; the fifth
        -> 0.0 and locks the pair for 30 s; a sixth at once -> 30.0
        """
        with write(self.db):
            row = self.login_failures(name, address)
            if row and row["locked_until"] > at:
                return row["locked_until"] - at
            failures = (row["failures"] if row and row["last_at"] >= forget_before else 0) + 1
            self.db.upsert("login_failures", {"name": name, "address": address, "failures": failures,
                                              "last_at": at, "locked_until": at + lock_for(failures)},
                           keys=("name", "address"))
            self.db.execute("DELETE FROM login_failures WHERE last_at < ?", [at - 86400])  # a day forgets
        return 0.0

    @serialized
    def undo_login_failure(self, name: str, address: str) -> None:
        """Take back the failure an attempt counted up front, when it succeeded after all."""
        self.db.execute("UPDATE login_failures SET failures = failures - 1 WHERE name = ? AND address = ? "
                        "AND failures > 0", [name, address])

    @serialized
    def clear_login_failures(self, name: str, address: str | None = None) -> None:
        if address is None:
            self.db.execute("DELETE FROM login_failures WHERE name = ?", [name])
        else:
            self.db.execute("DELETE FROM login_failures WHERE name = ? AND address = ?", [name, address])

    # --- rate counters shared by every process -----------------------------------------
    @serialized
    def count_hit(self, key: str, *, window: int) -> int:
        """Add one hit to `key` in fixed window number `window`; returns the window's hits so far.

        Example: count_hit("login:127.0.0.1", window=int(time.time() // 60)) -> 1, then 2, ...
        """
        with write(self.db, serial=False):  # the upsert locks the one counter row it adds to
            hits = self.db.value('INSERT INTO rate_hits (key, "window", hits) VALUES (?, ?, 1) '
                                 'ON CONFLICT (key, "window") DO UPDATE SET hits = rate_hits.hits + 1 RETURNING hits',
                                 [key, window])
            # this key's old windows, and those of every key of the same kind ("login:", ...)
            self.db.execute('DELETE FROM rate_hits WHERE "window" < ? AND key LIKE ?',
                            [window - 1, key.split(":", 1)[0] + ":%"])
        return hits

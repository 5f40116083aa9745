"""Accounts: name, role, password hash and whether the account is disabled, with the one rule that
guards them all: at least one enabled admin remains after any change.

Every change that affects what an account may do (a new password, another role, disabling,
deleting) ends that account's login sessions in the same transaction, so it takes effect at once
in every process. Password hashing and login checks live in auth.py.
"""

from __future__ import annotations

from csbot.errors import DataError
from csbot.store.backend import now, serialized, write


class UserRows:
    @serialized
    def add_user(self, name: str, *, role: str, password_hash: str) -> None:
        with write(self.db):
            if self.db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                raise DataError(f"there is already a user named {name!r}; pick another name or reset its password")
            self.db.insert("users", {"name": name, "role": role, "password_hash": password_hash,
                                     "created_at": now(), "updated_at": now(), "disabled": 0}, returning=None)

    @serialized
    def user(self, name: str) -> dict | None:
        return self.db.one("SELECT * FROM users WHERE name = ?", [name])

    @serialized
    def users(self) -> list[dict]:
        """Accounts without their password hashes."""
        return [{k: v for k, v in r.items() if k != "password_hash"}
                for r in self.db.rows("SELECT * FROM users ORDER BY name")]

    @serialized
    def change_user(self, name: str, *, role: str | None = None, disabled: bool | None = None,
                    password_hash: str | None = None, delete: bool = False) -> int:
        """Change or delete an account and end its sessions, in one transaction. Refused (nothing
        changes) when it would leave no enabled admin. Returns how many sessions were ended."""
        admins = "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0"
        with write(self.db):
            if self.user(name) is None:
                raise DataError(f"no user named {name!r}; see the user list for the exact name")
            before = self.db.value(admins)
            if delete:
                self.db.execute("DELETE FROM users WHERE name = ?", [name])
            else:
                changes = {"role": role, "password_hash": password_hash,
                           "disabled": None if disabled is None else int(disabled)}
                self.db.update("users", name, {**{k: v for k, v in changes.items() if v is not None},
                                               "updated_at": now()}, by="name")
            if before and not self.db.value(admins):
                raise DataError(f"{name!r} is the last enabled admin account; make another admin first, "
                                "so someone can still manage csbot")
            ended = self.db.execute('DELETE FROM sessions WHERE "user" = ?', [name]).rowcount
        return ended

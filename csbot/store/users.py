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
        """Accounts without their secrets (password hash, two-factor secret), with `two_factor`: on or off."""
        return [{**{k: v for k, v in r.items() if k not in _SECRET}, "two_factor": bool(r["totp_secret"])}
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
            if delete:
                for table in ("devices", "recovery_codes"):
                    self.db.execute(f'DELETE FROM {table} WHERE "user" = ?', [name])
        return ended

    # --- two-factor sign-in (the policy is service/twofactor.py's) -------------------------
    @serialized
    def set_totp_pending(self, name: str, secret: str | None) -> None:
        """Keep the secret being enrolled (shown as a QR code until a code from it confirms it)."""
        self.db.execute("UPDATE users SET totp_pending = ? WHERE name = ?", [secret, name])

    @serialized
    def enable_totp(self, name: str, secret: str, *, step: int, code_hashes: list[str]) -> bool:
        """Turn two-factor on with `secret`, only while it is still the one being enrolled, with new
        recovery codes (the old ones go). Returns whether it was turned on."""
        with write(self.db):
            changed = self.db.execute("UPDATE users SET totp_secret = ?, totp_pending = NULL, totp_step = ?, "
                                      "updated_at = ? WHERE name = ? AND totp_pending = ?",
                                      [secret, step, now(), name, secret]).rowcount
            if changed:
                self._replace_codes(name, code_hashes)
        return bool(changed)

    @serialized
    def disable_totp(self, name: str) -> None:
        with write(self.db):
            self.db.execute("UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_step = NULL, "
                            "updated_at = ? WHERE name = ?", [now(), name])
            self._replace_codes(name, [])

    @serialized
    def replace_recovery_codes(self, name: str, code_hashes: list[str]) -> None:
        with write(self.db):
            self._replace_codes(name, code_hashes)

    def _replace_codes(self, name: str, code_hashes: list[str]) -> None:
        self.db.execute('DELETE FROM recovery_codes WHERE "user" = ?', [name])
        for code_hash in code_hashes:
            self.db.execute('INSERT INTO recovery_codes ("user", code_hash) VALUES (?, ?)', [name, code_hash])

    @serialized
    def use_totp_step(self, name: str, step: int) -> bool:
        """Record that the code of time step `step` was used; False when it, or a later one, was
        used before (so a code overheard or replayed does not work a second time)."""
        return self.db.execute("UPDATE users SET totp_step = ? WHERE name = ? AND totp_secret IS NOT NULL "
                               "AND (totp_step IS NULL OR totp_step < ?)", [step, name, step]).rowcount == 1

    @serialized
    def use_recovery_code(self, name: str, code_hash: str, *, at: float) -> bool:
        """Spend one recovery code; False when it is not this account's or was spent already."""
        return self.db.execute('UPDATE recovery_codes SET used_at = ? WHERE "user" = ? AND code_hash = ? '
                               "AND used_at IS NULL", [at, name, code_hash]).rowcount == 1

    @serialized
    def recovery_codes_left(self, name: str) -> int:
        return self.db.value('SELECT count(*) FROM recovery_codes WHERE "user" = ? AND used_at IS NULL', [name])


_SECRET = ("password_hash", "totp_secret", "totp_pending", "totp_step")

"""User accounts, roles, password hashing, login sessions and lockouts for the staff and admin pages.

Passwords are hashed with the standard library's scrypt and stored in a self-describing
string, so the cost parameters can be raised later without breaking old hashes. `Accounts`
creates and changes users, logs them in and out, and answers "who is this cookie?" and "may
this user do that?" with two roles: staff, and admin who may do everything staff may.

Everything lives in the store, so every server process agrees at once: a session is a row keyed
by the hash of its cookie's token, with an idle and an absolute expiry; a password reset, role
change, disable or delete ends the account's sessions in the same transaction. Failed logins
are counted per name *and* client address with a growing back-off, so wrong passwords from one
address never lock out the right one from another; attempts per address are counted per minute
in the store, so N processes enforce one limit. Each action is written to the audit log.

This module does not set cookies or draw a login form (server.py does), and stores no rows itself.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from csbot.errors import AccessDenied, DataError, RateLimited

if TYPE_CHECKING:  # only for the annotation: importing the store would load sqlite-utils
    from csbot.store import Store

ROLES = ("staff", "admin")  # in rising order of power
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN = 2**14, 8, 1, 32
MIN_PASSWORD, MAX_PASSWORD = 10, 256
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
# Room for parameters a little above the defaults; OpenSSL's own limit is 32 MiB.
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    """Salted scrypt hash of `password`, as "scrypt$N$r$p$<salt b64>$<hash b64>".

    Example: hash_password("correct horse battery") -> "scrypt$16384$8$1$9mX...==$Qk1...="
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=SCRYPT_DKLEN, maxmem=_SCRYPT_MAXMEM)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (from hash_password); False for a malformed `stored`.

    Example: verify_password("correct horse battery", hash_password("correct horse battery")) -> True
    """
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(digest_b64, validate=True)
        if scheme != "scrypt" or not salt or len(expected) < 16:  # a short hash is too easy to match by chance
            return False
        derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p),
                                 dklen=len(expected), maxmem=_SCRYPT_MAXMEM)
    except (AttributeError, TypeError, ValueError, OverflowError):
        # ValueError covers bad base64, bad numbers, scrypt refusing its parameters or memory,
        # and a password with lone surrogates that cannot be encoded.
        return False
    return hmac.compare_digest(derived, expected)


@functools.cache
def _dummy_hash() -> str:
    """A real hash of a random password, made on first use (not at import: it costs ~50 ms)."""
    return hash_password(secrets.token_urlsafe(16))


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DataError(f"a user name must be 1-32 letters, digits, '_', '.' or '-'; found {name!r:.60}; "
                        "pick a name like 'sam' or 'sam.lee'")


def _check_password(password: str, *, what: str = "the password") -> None:
    if not isinstance(password, str):
        raise DataError(f"{what} must be text; found {type(password).__name__}; pass a str")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        fix = "choose a longer one (a few random words work well)" if len(password) < MIN_PASSWORD \
            else "choose a shorter one"
        raise DataError(f"{what} must be {MIN_PASSWORD}-{MAX_PASSWORD} characters; "
                        f"found {len(password)}; {fix}")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{what} holds characters that cannot be stored (lone surrogates); "
                        "type it again without them") from None


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise DataError(f"a role must be one of {', '.join(ROLES)}; found {role!r}; use 'staff' "
                        "for people who answer customers and 'admin' for those who manage the bot")


class Accounts:
    """Users, their roles and their login sessions over a Store.

    Example: accounts.create("sam", "a long password", role="staff"); token = accounts.login("sam",
    "a long password", address="10.0.0.5"); accounts.session_user(token, role="staff") -> "sam";
    accounts.require("sam", "admin") raises AccessDenied.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time, max_failures: int = 5,
                 lockout_seconds: float = 30.0, max_lockout_seconds: float = 3600.0, failure_window_seconds: float = 900.0,
                 login_per_minute: int = 0,
                 session_idle_seconds: float = 3600.0, session_max_seconds: float = 12 * 3600.0):
        self.store = store
        self.clock = clock
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.max_lockout_seconds = max_lockout_seconds
        # failures older than this, or than the longest lockout if that is longer, are forgotten
        self.failure_window_seconds = failure_window_seconds
        self.login_per_minute = login_per_minute
        self.session_idle_seconds = session_idle_seconds
        self.session_max_seconds = session_max_seconds

    @classmethod
    def from_settings(cls, store: Store, settings) -> Accounts:
        return cls(store, login_per_minute=settings.login_per_minute,
                   session_idle_seconds=settings.session_idle_minutes * 60,
                   session_max_seconds=settings.session_max_hours * 3600)

    # --- accounts ---------------------------------------------------------------------
    def create(self, name: str, password: str, *, role: str, actor: str = "system") -> None:
        _check_name(name)
        _check_role(role)
        _check_password(password)
        self.store.add_user(name, role=role, password_hash=hash_password(password))
        self.store.audit(actor, "user_create", name, detail={"role": role})

    def reset_password(self, name: str, password: str, *, actor: str = "system") -> None:
        """Set a new password; this ends the account's sessions and lifts its lockouts."""
        _check_password(password)
        if not isinstance(name, str) or self.store.user(name) is None:
            raise DataError(f"no user named {name!r}; see the user list for the exact name")
        ended = self.store.change_user(name, password_hash=hash_password(password))
        self.store.clear_login_failures(name)
        self.store.audit(actor, "user_password", name, detail={"sessions_ended": ended})

    def set_role(self, name: str, role: str, *, actor: str = "system") -> None:
        _check_role(role)
        ended = self.store.change_user(name, role=role)
        self.store.audit(actor, "user_role", name, detail={"role": role, "sessions_ended": ended})

    def set_disabled(self, name: str, disabled: bool, *, actor: str = "system") -> None:
        """Disable an account (its sessions end, it cannot log in) or enable it again."""
        ended = self.store.change_user(name, disabled=disabled)
        self.store.audit(actor, "user_disable" if disabled else "user_enable", name,
                         detail={"sessions_ended": ended})

    def delete(self, name: str, *, actor: str = "system") -> None:
        if actor == name:
            raise DataError("you cannot delete the account you are logged in with; ask another admin")
        ended = self.store.change_user(name, delete=True)
        self.store.clear_login_failures(name)
        self.store.audit(actor, "user_delete", name, detail={"sessions_ended": ended})

    def list(self) -> list[dict]:
        """Every account (name, role, disabled, created_at, updated_at), without password hashes."""
        return self.store.users()

    # --- logging in ----------------------------------------------------------------------
    def lock_for(self, failures: int) -> float:
        """Seconds a (name, address) pair is locked after this many failures in a row: none below
        max_failures, then lockout_seconds doubling each time, up to max_lockout_seconds.

        Example (5, 30 s, 1 h): lock_for(4) -> 0; lock_for(5) -> 30; lock_for(6) -> 60; lock_for(20) -> 3600
        """
        if self.max_failures <= 0 or failures < self.max_failures:
            return 0.0
        return min(self.max_lockout_seconds, self.lockout_seconds * 2 ** min(failures - self.max_failures, 30))

    def _verified(self, name: str, password: str, *, address: str) -> dict | None:
        """The account row when the password is right and the (name, address) pair is not locked."""
        if not isinstance(name, str) or not isinstance(password, str):
            return None
        if len(name) > 64 or len(password) > MAX_PASSWORD:
            return None  # no account can match; refuse before spending a hash on it
        at = self.clock()
        # Counted for every name, known or not, so an unknown name costs the same store write and
        # the same hash as a known one: neither the time nor the lockout tells which names exist.
        # Failures are remembered for as long as the longest lockout, so the back-off can grow to it.
        locked = self.store.begin_login_attempt(name, address, at=at, lock_for=self.lock_for,
                                                forget_before=at - max(self.failure_window_seconds,
                                                                       self.max_lockout_seconds))
        user = self.store.user(name) if _NAME.fullmatch(name) and not locked else None
        if user is None or user.get("disabled"):
            verify_password(password, _dummy_hash())
            return None
        if verify_password(password, user["password_hash"] or ""):
            self.store.clear_login_failures(name, address)
            return user
        return None

    def login(self, name: str, password: str, *, address: str, agent: str = "", role: str = "staff") -> str:
        """A new session token for `name` when the password is right and the account has `role`;
        RateLimited when `address` tried too often this minute, AccessDenied otherwise. Audited."""
        if self.login_per_minute > 0:
            minute = self.clock() / 60
            if self.store.count_hit(f"login:{address}", window=int(minute)) > self.login_per_minute:
                wait = max(1, round(60 * (1 - minute % 1)))
                raise RateLimited(f"too many login attempts from this address; try again in {wait} s", retry_after=wait)
        shown = name[:64] if isinstance(name, str) else "?"
        user = self._verified(name, password, address=address)
        if user is None:
            self.store.audit(shown, "login_failed", shown, address=address)
            raise AccessDenied("wrong user name or password (or too many failed attempts from this address; "
                               "wait a minute and try again)")
        have = user["role"]
        if not _at_least(have, role):
            self.store.audit(name, "login_failed", name, detail={"reason": f"needs {role}"}, address=address)
            raise AccessDenied(f"this page needs {_a(role)} account, and {name!r} is {have}")
        token = secrets.token_urlsafe(32)
        at = self.clock()
        if not self.store.add_session(_session_id(token), user=name, at=at, expires_at=at + self.session_max_seconds,
                                      address=address, agent=agent or "", password_hash=user["password_hash"],
                                      role=have):
            raise AccessDenied("the account changed while you were logging in (a new password, role or a "
                               "disable); log in again")
        self.store.prune_sessions(idle_before=at - self.session_idle_seconds, at=at)
        self.store.audit(name, "login", name, address=address)
        return token

    def session_user(self, token: str | None, *, role: str = "staff") -> str | None:
        """The user a session token belongs to while it is valid and the account has `role`; else None.
        An expired session is deleted. Example: session_user(token, role="admin") -> "ada" """
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return None
        session_id = _session_id(token)
        row = self.store.session(session_id)
        if row is None or row["disabled"]:
            return None
        at = self.clock()
        if at - row["seen_at"] > self.session_idle_seconds or at >= row["expires_at"]:
            self.store.end_session(session_id)
            return None
        if not _at_least(row["role"], role):
            return None
        if at - row["seen_at"] > 30:  # a write at most every 30 s per session, not per request
            self.store.touch_session(session_id, at)
        return row["user"]

    def logout(self, token: str | None, *, address: str | None = None) -> None:
        if isinstance(token, str) and token:
            user = self.store.end_session(_session_id(token))
            if user:
                self.store.audit(user, "logout", user, address=address)

    # --- roles ---------------------------------------------------------------------------
    def role(self, name: str | None) -> str | None:
        """The role of an enabled account; None for unknown or disabled ones."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return None
        user = self.store.user(name)
        return user["role"] if user and not user.get("disabled") else None

    def require(self, name: str | None, role: str) -> str:
        """`name` when that enabled user has `role` or a higher one; otherwise AccessDenied.

        Example: require("sam", "staff") -> "sam"; require(None, "staff") raises AccessDenied.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        needs = f"this needs {_a(role)} account"
        if name is None:
            raise AccessDenied(f"{needs} and you are not logged in; log in as {role}")
        have = self.role(name)
        if have is None:
            raise AccessDenied(f"{needs} and there is no enabled account named {name!r:.60}; log in again")
        if not _at_least(have, role):
            raise AccessDenied(f"{needs} and {name!r} is {have}; ask an admin")
        return name

    def ensure_first_admin(self, environ: Mapping[str, str]) -> str | None:
        """When no admin exists, create one and return its password (print it once); else None.

        The password is CSBOT_ADMIN_PASSWORD when set, else a random one. The user is `admin`,
        or `admin1`, `admin2`... when a non-admin already holds that name.
        Example: ensure_first_admin({"CSBOT_ADMIN_PASSWORD": "a long password"}) -> "a long password"
        """
        if any(u["role"] == "admin" for u in self.store.users()):
            return None
        if "CSBOT_ADMIN_PASSWORD" in environ:
            password = environ["CSBOT_ADMIN_PASSWORD"]
            _check_password(password, what="CSBOT_ADMIN_PASSWORD")
        else:
            password = secrets.token_urlsafe(12)
        name, n = "admin", 0
        while self.store.user(name) is not None:
            n += 1
            name = f"admin{n}"
        try:
            self.create(name, password, role="admin")
        except DataError:  # another process made the first admin at the same moment
            if any(u["role"] == "admin" for u in self.store.users()):
                return None
            raise
        return password


def _at_least(have: str | None, role: str) -> bool:
    """Whether role `have` may do what `role` may. Example: _at_least("admin", "staff") -> True"""
    return have in ROLES and ROLES.index(have) >= ROLES.index(role)


def _a(role: str) -> str:
    """Example: _a("admin") -> "an admin"; _a("staff") -> "a staff" """
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role}"


def _session_id(token: str) -> str:
    """What the store keeps of a session token: its sha-256, so the database holds no usable cookie."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()

"""User accounts, roles and password hashing for the staff and admin pages.

Passwords are hashed with the standard library's scrypt and stored in a self-describing
string, so the cost parameters can be raised later without breaking old hashes. `Accounts`
creates users, checks logins (with a per-name lockout after repeated failures), and answers
"may this user do that?" with two roles: staff, and admin who may do everything staff may.

This module does not keep sessions or cookies (Gradio's `auth=` does), does not limit requests
per client (ratelimit.py), and does not store rows itself (store.py does).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from csbot.errors import AccessDenied, DataError

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
    """Users and their roles over a Store, with login checks that lock a name out for
    `lockout_seconds` after `max_failures` failed attempts within that time (0 turns it off).

    Example: accounts.create("sam", "a long password", role="staff"); accounts.check("sam",
    "a long password") -> True; accounts.require("sam", "admin") raises AccessDenied.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic,
                 max_failures: int = 5, lockout_seconds: float = 300.0):
        self.store = store
        self.clock = clock
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self._lock = threading.Lock()
        # Kept only for names that exist, so strangers guessing names cannot grow these.
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def create(self, name: str, password: str, *, role: str) -> None:
        _check_name(name)
        _check_role(role)
        _check_password(password)
        self.store.add_user(name, role=role, password_hash=hash_password(password))

    def check(self, name: str, password: str) -> bool:
        """The login check (Gradio's `auth=` callable); False, never an exception, for bad input."""
        if not isinstance(name, str) or not isinstance(password, str):
            return False
        if len(name) > 64 or len(password) > MAX_PASSWORD:
            return False  # no account can match; refuse before spending a hash on it
        user = self.store.user(name) if _NAME.fullmatch(name) else None
        if user is None or not self._begin_attempt(name):
            # Hash anyway so an unknown or locked-out name takes as long as a wrong password:
            # a fast "no" would tell an attacker which names exist.
            verify_password(password, _dummy_hash())
            return False
        if verify_password(password, user["password_hash"] or ""):
            with self._lock:
                self._failures.pop(name, None)
                self._locked_until.pop(name, None)
            return True
        return False

    def _begin_attempt(self, name: str) -> bool:
        """Count this attempt as a failure up front (a success clears it), so many attempts
        sent at once cannot all slip past the lockout while their hashes run."""
        if self.max_failures <= 0:
            return True
        now = self.clock()
        with self._lock:
            if self._locked_until.get(name, float("-inf")) > now:
                return False
            recent = [t for t in self._failures.get(name, []) if t > now - self.lockout_seconds]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._locked_until[name] = now + self.lockout_seconds
                recent = []
            self._failures[name] = recent
            return True

    def role(self, name: str | None) -> str | None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return None
        user = self.store.user(name)
        return user["role"] if user else None

    def require(self, name: str | None, role: str) -> str:
        """`name` when that user has `role` or a higher one; otherwise AccessDenied.

        Example: require("sam", "staff") -> "sam"; require(None, "staff") raises AccessDenied.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        needs = f"this needs {'an' if role[0] in 'aeiou' else 'a'} {role} account"
        if name is None:
            raise AccessDenied(f"{needs} and you are not logged in; log in as {role}")
        have = self.role(name)
        if have is None:
            raise AccessDenied(f"{needs} and there is no account named {name!r:.60}; log in again")
        if have not in ROLES or ROLES.index(have) < ROLES.index(role):
            raise AccessDenied(f"{needs} and {name!r} is {have}; ask an admin")
        return name

    def reset_password(self, name: str, password: str) -> None:
        """Set a new password; this also lifts any lockout on the name."""
        _check_password(password)
        if not isinstance(name, str) or self.store.user(name) is None:
            raise DataError(f"no user named {name!r}; see the user list for the exact name")
        self.store.update_user(name, password_hash=hash_password(password))
        with self._lock:
            self._failures.pop(name, None)
            self._locked_until.pop(name, None)

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
        self.create(name, password, role="admin")
        return password

    def list(self) -> list[dict]:
        """Every account (name, role, created_at, updated_at), without password hashes."""
        return self.store.users()

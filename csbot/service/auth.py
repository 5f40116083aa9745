"""User accounts, roles, password hashing, login sessions and lockouts for the staff and admin pages.

Passwords are hashed with the standard library's scrypt and stored in a self-describing
string, so the cost parameters can be raised later without breaking old hashes. `Accounts`
creates and changes users, logs them in and out, and answers "who is this cookie?" and "may
this user do that?" with two roles: staff, and admin who may do everything staff may.

Everything lives in the store, so every server process agrees at once: a session is a row keyed
by the hash of its cookie's token, with an idle and an absolute expiry; a password reset, role
change, disable or delete ends the account's sessions in the same transaction. Only user actions
renew a session (`renew=True`): a page's timers check it without keeping it alive, so an
unattended tab is logged out after `session_idle_minutes`. Failed logins slow guessing down
three ways, none of which a stranger can turn into a lockout of the real user:
  - per name *and* client address, a growing back-off: wrong passwords from one address never
    lock out the right one from another;
  - per account, failures from browsers that never logged in to it (any address) build a delay of
    up to a minute between such attempts, so many addresses guess no faster than one; a browser
    that logged in before (its device cookie) is not slowed;
  - per address, attempts a minute, counted in the store, so N processes enforce one limit.
A password must be 10 characters or more and not among the commonest or easily guessed ones
(zxcvbn's lists and estimate). Accounts with two-factor sign-in on (twofactor.py) also need the
code from their app at login. Each action is written to the audit log.

This module does not set cookies or draw a login form (server.py does), and stores no rows itself.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from csbot.errors import AccessDenied, AccountSlowed, DataError, RateLimited
from csbot.service.twofactor import TwoFactor

if TYPE_CHECKING:  # only for the annotation: importing the store would load sqlite-utils
    from csbot.store import Store

ROLES = ("staff", "admin")  # in rising order of power
SESSION_COOKIE = "csbot_session"  # the login session's token (server.py sets it, guarded handlers renew it)
UNKNOWN_DEVICES = "*"  # the "address" an account's failures from unknown browsers are counted under
MIN_GUESSES_LOG10 = 8  # zxcvbn's estimate of the guesses a password needs, at least 10^8 (its score 3)
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


def _check_password(password: str, *, what: str = "the password", name: str = "") -> None:
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
    weak = _guessable(password, name)
    if weak:
        raise DataError(f"{what} is too easy to guess: {weak}. Choose another one; a few random words work well")


def _guessable(password: str, name: str = "") -> str:
    """Why `password` is among the first ones an attacker tries, or "" when it is not: the commonest
    passwords, words and names (zxcvbn's lists, 30,000 passwords among them), keyboard runs, dates,
    repeats, or the user's own name, whatever the case and the digits added.

    Example: _guessable("Password123") -> "it is one of the most common passwords"; _guessable("a long staff password") -> ""
    """
    from zxcvbn import zxcvbn  # its lists take a moment to load: only when a password is set

    if password.lower() in _common_passwords():
        return "it is one of the most common passwords"
    result = zxcvbn(password[:72], user_inputs=[name, "csbot", "admin", "staff", "support"])
    if result["guesses_log10"] >= MIN_GUESSES_LOG10:
        return ""
    feedback = result["feedback"]
    return (feedback.get("warning") or " ".join(feedback.get("suggestions") or [])
            or "it is made of common words, names or patterns").rstrip(".").lower()


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS
    return frozenset(FREQUENCY_LISTS["passwords"])


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

    def __init__(self, store: Store, *, clock: Callable[[], float] | None = None, max_failures: int = 5,
                 lockout_seconds: float = 30.0, max_lockout_seconds: float = 3600.0, failure_window_seconds: float = 900.0,
                 login_per_minute: int = 0, account_free_failures: int = 10, account_max_delay: float = 60.0,
                 session_idle_seconds: float = 3600.0, session_max_seconds: float = 12 * 3600.0,
                 two_factor: TwoFactor | None = None):
        self.store = store
        self.clock = clock or store.clock  # the database's: every machine's processes agree on expiries
        self.two_factor = two_factor or TwoFactor(store, clock=self.clock)
        # failures from unknown browsers an account takes before the delay between them starts
        self.account_free_failures = account_free_failures
        self.account_max_delay = account_max_delay
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
                   session_max_seconds=settings.session_max_hours * 3600,
                   two_factor=TwoFactor(store, required_for_admins=settings.require_admin_two_factor))

    # --- accounts ---------------------------------------------------------------------
    def create(self, name: str, password: str, *, role: str, actor: str = "system") -> None:
        _check_name(name)
        _check_role(role)
        _check_password(password, name=name)
        self.store.add_user(name, role=role, password_hash=hash_password(password))
        self.store.audit(actor, "user_create", name, detail={"role": role})

    def reset_password(self, name: str, password: str, *, actor: str = "system") -> None:
        """Set a new password; this ends the account's sessions and lifts its lockouts."""
        _check_password(password, name=name if isinstance(name, str) else "")
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

    def account_delay(self, failures: int) -> float:
        """Seconds between an account's login attempts from unknown browsers after this many failures
        from them: none for the first account_free_failures, then 1 s doubling, up to account_max_delay.

        Example (10, 60 s): account_delay(9) -> 0; account_delay(10) -> 1; account_delay(13) -> 8; account_delay(40) -> 60
        """
        if self.account_free_failures <= 0 or failures < self.account_free_failures:
            return 0.0
        return min(self.account_max_delay, 2.0 ** min(failures - self.account_free_failures, 30))

    def _verified(self, name: str, password: str, *, address: str, device: str | None = None,
                  code: str = "") -> dict | None:
        """The account row when the password (and two-factor code, when on) is right and neither the
        (name, address) pair is locked nor, from an unknown browser, the account slowed down.
        RateLimited, with the seconds to wait, for the account's slow-down."""
        if not isinstance(name, str) or not isinstance(password, str):
            return None
        if len(name) > 64 or len(password) > MAX_PASSWORD:
            return None  # no account can match; refuse before spending a hash on it
        at = self.clock()
        # Counted for every name, known or not, so an unknown name costs the same store writes and
        # the same hash as a known one: neither the time nor the lockout tells which names exist.
        # Failures are remembered for as long as the longest lockout, so the back-off can grow to it.
        forget = at - max(self.failure_window_seconds, self.max_lockout_seconds)
        locked = self.store.begin_login_attempt(name, address, at=at, lock_for=self.lock_for, forget_before=forget)
        known = bool(device) and self.store.known_device(_session_id(device), user=name)
        if not locked and not known:
            wait = self.store.begin_login_attempt(name, UNKNOWN_DEVICES, at=at, lock_for=self.account_delay,
                                                  forget_before=at - self.failure_window_seconds)
            if wait:  # refused before any hash: the same for every name, so it tells nothing
                raise AccountSlowed(f"this account had many failed logins from browsers it never used; wait "
                                  f"{max(1, round(wait))} s, or log in from a browser you used before", retry_after=wait)
        user = self.store.user(name) if _NAME.fullmatch(name) and not locked else None
        if user is None or user.get("disabled"):
            verify_password(password, _dummy_hash())
            return None
        if verify_password(password, user["password_hash"] or "") and \
                (not self.two_factor.enabled(user) or self.two_factor.check(name, code)):
            self.store.clear_login_failures(name, address)
            if not known:  # its own count only: others' failures on the account still slow them
                self.store.undo_login_failure(name, UNKNOWN_DEVICES)
            return user
        return None

    def login(self, name: str, password: str, *, address: str, agent: str = "", role: str = "staff",
              device: str | None = None, code: str = "") -> str:
        """A new session token for `name` when the password is right (and `code`, for an account with
        two-factor on) and the account has `role`; RateLimited when `address` tried too often this
        minute or the account is slowed down for unknown browsers (`device` is the token of the
        browser's device cookie, from remember_device), AccessDenied otherwise. Audited."""
        if self.login_per_minute > 0:
            minute = self.clock() / 60
            if self.store.count_hit(f"login:{address}", window=int(minute)) > self.login_per_minute:
                wait = max(1, round(60 * (1 - minute % 1)))
                raise RateLimited(f"too many login attempts from this address; try again in {wait} s", retry_after=wait)
        shown = name[:64] if isinstance(name, str) else "?"
        try:
            user = self._verified(name, password, address=address, device=device, code=code)
        except AccountSlowed:
            self.store.audit(shown, "login_failed", shown, detail={"reason": "slowed down"}, address=address)
            raise
        if user is None:
            self.store.audit(shown, "login_failed", shown, address=address)
            raise AccessDenied("wrong user name, password or two-factor code (or too many failed attempts from "
                               "this address; wait a minute and try again)")
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

    def remember_device(self, name: str, device: str | None) -> str:
        """The device token to keep in this browser's cookie after `name` logged in from it: `device`
        when the browser had one, else a new one. A login from it later skips the account's slow-down."""
        device = device if isinstance(device, str) and 20 <= len(device) <= 100 else secrets.token_urlsafe(32)
        self.store.add_device(_session_id(device), user=name, at=self.clock())
        return device

    def session_user(self, token: str | None, *, role: str = "staff", renew: bool = True) -> str | None:
        """The user a session token belongs to while it is valid and the account has `role`; else None.
        An expired session is deleted. `renew` counts this as the user's action (it keeps the session
        from idling out); a page's timers pass False. Example: session_user(token, role="admin") -> "ada" """
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return None
        session_id = _session_id(token)
        row = self.store.session(session_id)
        if row is None or row["disabled"]:
            return None
        at = self.clock()
        if self.idle_left(row, at) <= 0:  # idle too long, or past the absolute expiry
            self.store.end_session(session_id)
            return None
        if not _at_least(row["role"], role):
            return None
        # a write at most every 30 s per session (less when sessions idle out sooner), not per request
        if renew and at - row["seen_at"] > min(30.0, self.session_idle_seconds / 4):
            self.store.touch_session(session_id, at)
        return row["user"]

    def idle_left(self, row: dict, at: float | None = None) -> float:
        """Seconds before a session (a store row) idles out, or reaches its absolute expiry if sooner."""
        at = self.clock() if at is None else at
        return min(row["seen_at"] + self.session_idle_seconds, row["expires_at"]) - at

    def session_left(self, token: str | None) -> float:
        """Seconds the session of `token` has left without a user action; 0 when it is not valid.
        Reading it does not renew it (the pages ask it to know when to go to the login form)."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return 0.0
        row = self.store.session(_session_id(token))
        return max(0.0, self.idle_left(row)) if row and not row["disabled"] else 0.0

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

        The password is CSBOT_ADMIN_PASSWORD when set, else a random one. The user is
        CSBOT_ADMIN_USER when set (a name a guesser does not know), else `admin`, or `admin1`,
        `admin2`... when a non-admin already holds that name.
        Example: ensure_first_admin({"CSBOT_ADMIN_PASSWORD": "a long password"}) -> "a long password"
        """
        if any(u["role"] == "admin" for u in self.store.users()):
            return None
        base = environ.get("CSBOT_ADMIN_USER") or "admin"
        try:
            _check_name(base)
        except DataError as exc:
            raise DataError(f"CSBOT_ADMIN_USER: {exc}") from None
        if "CSBOT_ADMIN_PASSWORD" in environ:
            password = environ["CSBOT_ADMIN_PASSWORD"]
            _check_password(password, what="CSBOT_ADMIN_PASSWORD", name=base)
        else:
            password = secrets.token_urlsafe(12)
        name, n = base, 0
        while self.store.user(name) is not None:
            n += 1
            name = f"{base}{n}"
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

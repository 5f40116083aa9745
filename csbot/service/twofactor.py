"""Two-factor sign-in with an authenticator app (TOTP, RFC 6238) and one-time recovery codes.

Enrolment makes a secret and keeps it as *pending* until a code from the app proves the app has
it; only then is two-factor on, with ten new recovery codes shown once (the store keeps their
hashes). At login a six-digit code is accepted for the current 30-second step or the one either
side (clocks drift), and each step works once; a recovery code works once. The secret itself is
kept in the store as it is, since checking a code needs it: whoever reads the database can make
codes, so the database stays as private as the password hashes are.

Admins may be required to use it (the `require_admin_two_factor` setting): an admin without it
reaches only the enrolment page until it is on (server.py). pyotp makes and checks the codes;
segno draws the QR code as inline SVG, so nothing is fetched from elsewhere.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyotp
import segno

from csbot.errors import DataError

if TYPE_CHECKING:
    from csbot.store import Store

ISSUER = "csbot"
RECOVERY_CODES = 10
_CODE = re.compile(r"\d{6}")
_RECOVERY = re.compile(r"[a-z0-9]{5}-?[a-z0-9]{5}")


class TwoFactor:
    """Enrol, check and turn off an account's second factor.

    Example: uri = two_factor.begin("ada"); codes = two_factor.confirm("ada", "123456");
    two_factor.check("ada", "654321") -> True once (the app's current code)
    """

    def __init__(self, store: Store, *, required_for_admins: bool = False, clock: Callable[[], float] | None = None):
        self.store = store
        self.required_for_admins = required_for_admins
        self.clock = clock or time.time  # the phone's app keeps real time, not the database's

    def enabled(self, user: dict | None) -> bool:
        return bool(user and user.get("totp_secret"))

    def missing(self, name: str) -> bool:
        """Whether this account must turn two-factor on before it may use the admin page."""
        user = self.store.user(name)
        return bool(self.required_for_admins and user and user["role"] == "admin" and not self.enabled(user))

    def begin(self, name: str) -> str:
        """The otpauth:// address for the app (what the QR code holds), with a secret kept as pending:
        the same one on every visit until it is confirmed, so a reload does not break a half-done scan."""
        user = self._user(name)
        if self.enabled(user):
            raise DataError("two-factor sign-in is already on for this account; turn it off first to move it "
                            "to another phone")
        secret = user.get("totp_pending") or pyotp.random_base32()
        if secret != user.get("totp_pending"):
            self.store.set_totp_pending(name, secret)
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)

    def confirm(self, name: str, code: str) -> list[str]:
        """Turn two-factor on when `code` comes from the pending secret; returns the recovery codes,
        which are shown this once. DataError when the code is wrong or nothing is being enrolled."""
        user = self._user(name)
        secret = user.get("totp_pending")
        if not secret:
            raise DataError("there is no two-factor set-up in progress for this account; open the set-up page "
                            "again to get a QR code")
        step = self._step(secret, code)
        if step is None:
            raise DataError("that code is not the one the app shows now; type the six digits the app shows for "
                            "csbot (check that the phone's clock is right)")
        codes = _new_codes()
        if not self.store.enable_totp(name, secret, step=step, code_hashes=[_hash(c) for c in codes]):
            raise DataError("the set-up changed while you typed (another tab?); open the set-up page again")
        self.store.audit(name, "two_factor_on", name)
        return codes

    def check(self, name: str, code: object) -> bool:
        """Whether `code` is this account's current authenticator code or an unspent recovery code;
        either works once."""
        user = self.store.user(name)
        if not self.enabled(user) or not isinstance(code, str):
            return False
        code = code.strip().replace(" ", "").lower()
        if _CODE.fullmatch(code):
            step = self._step(user["totp_secret"], code)
            return step is not None and self.store.use_totp_step(name, step)
        if _RECOVERY.fullmatch(code):
            used = self.store.use_recovery_code(name, _hash(code), at=self.clock())
            if used:
                self.store.audit(name, "recovery_code_used", name,
                                 detail={"left": self.store.recovery_codes_left(name)})
            return used
        return False

    def new_recovery_codes(self, name: str, code: str) -> list[str]:
        """Replace the recovery codes (the old ones stop working), given a current code."""
        if not self.check(name, code):
            raise DataError("that code is wrong or was used already; type the code the app shows now")
        codes = _new_codes()
        self.store.replace_recovery_codes(name, [_hash(c) for c in codes])
        self.store.audit(name, "recovery_codes_new", name)
        return codes

    def turn_off(self, name: str, code: str, *, role: str) -> None:
        """Turn two-factor off, given a current code (or a recovery code); refused for an admin while
        the setting requires it."""
        if self.required_for_admins and role == "admin":
            raise DataError("this csbot requires two-factor sign-in for admins, so it cannot be turned off; "
                            "to move it to a new phone, ask another admin to reset your password, then set it up again")
        if not self.check(name, code):
            raise DataError("that code is wrong or was used already; type the code the app shows now")
        self.store.disable_totp(name)
        self.store.audit(name, "two_factor_off", name)

    def reset(self, name: str, *, actor: str) -> None:
        """An admin turns off someone else's second factor (a lost phone and no recovery codes)."""
        self._user(name)
        self.store.disable_totp(name)
        self.store.audit(actor, "two_factor_reset", name)

    def codes_left(self, name: str) -> int:
        return self.store.recovery_codes_left(name)

    def _step(self, secret: str, code: str) -> int | None:
        """The time step whose code `code` is: now's or the one either side; None when none is."""
        code = (code or "").strip().replace(" ", "")
        if not _CODE.fullmatch(code):
            return None
        totp, at = pyotp.TOTP(secret), self.clock()
        for drift in (0, -1, 1):
            moment = at + drift * totp.interval
            if secrets.compare_digest(totp.at(moment), code):
                return int(moment // totp.interval)
        return None

    def _user(self, name: str) -> dict:
        user = self.store.user(name) if isinstance(name, str) else None
        if user is None:
            raise DataError(f"no user named {name!r:.60}; log in again")
        return user


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as an inline <svg> element (no image file, nothing fetched)."""
    return segno.make(uri, error="m").svg_inline(scale=5, title="QR code for your authenticator app")


def secret_of(uri: str) -> str:
    """The secret in an otpauth:// address, in groups of four for typing by hand.

    Example: secret_of("otpauth://totp/csbot:ada?secret=JBSWY3DPEHPK3PXP&issuer=csbot") -> "JBSW Y3DP EHPK 3PXP"
    """
    secret = pyotp.parse_uri(uri).secret
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _new_codes() -> list[str]:
    """Ten recovery codes like "k3f9a-2mz7q" (50 bits each)."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o or 1/l to misread
    return ["-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(2))
            for _ in range(RECOVERY_CODES)]


def _hash(code: str) -> str:
    """What the store keeps of a recovery code. Codes are random (50 bits), so a plain hash will do."""
    return hashlib.sha256(code.replace("-", "").encode()).hexdigest()

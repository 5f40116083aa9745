"""Known customers: a shop's own backend vouches for who is chatting with a short-lived token.

The shop signs a JSON Web Token with HS256 and the secret it shares with csbot (the
`identity_secret` setting): `sub` (its user id), `name`, `email`, `iat` and `exp`. Its page hands
the token to the widget or API client, which sends it with a message (`identity` in POST
/api/chat). csbot checks it on every call that carries one: the signature, the expiry (30 s of
leeway for clocks), a lifetime of at most a day, and, for a conversation already bound to a
customer, that it is the same one. A token that fails any check is refused with the reason, and
nothing the message says is stored; the conversation then shows the verified name to staff.

A shop's backend makes one in five lines (docs/api.md, "Known customers"):

    import jwt, time
    now = int(time.time())
    token = jwt.encode({"sub": "u-1042", "name": "Ada Lovelace", "email": "ada@example.com",
                        "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")

This module checks tokens; it stores nothing (store/conversations.py binds the identity).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from csbot.errors import IdentityRefused

LEEWAY_SECONDS = 30  # clocks of the shop's server and this one may differ this much
MAX_LIFETIME_SECONDS = 24 * 3600  # a token is a short-lived pass, not a password
MAX_FIELD_CHARS = 200


@dataclass(frozen=True)
class Identity:
    user_id: str
    name: str | None
    email: str | None


def verify(token: object, secret: str, *, now: float | None = None) -> Identity:
    """The identity a token vouches for, or IdentityRefused saying why.

    Example: verify(jwt.encode({"sub": "u-1", "name": "Ada", "iat": t, "exp": t + 600}, s, "HS256"), s)
             -> Identity(user_id="u-1", name="Ada", email=None)
    """
    if not secret:
        raise IdentityRefused("this shop takes no identity tokens (the identity_secret setting is empty); "
                              "send the message without `identity`")
    if not isinstance(token, str) or not token.strip():
        raise IdentityRefused("identity must be the token the shop's server signed, as a string")
    now = time.time() if now is None else now
    try:
        # PyJWT checks `exp` against the system clock; `now` is this module's (the lifetime, `iat`)
        claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=LEEWAY_SECONDS,
                            options={"require": ["sub", "iat", "exp"], "verify_iat": False})
    except jwt.ExpiredSignatureError:
        raise IdentityRefused("the identity token has expired; ask the shop's page for a new one") from None
    except jwt.MissingRequiredClaimError as exc:
        raise IdentityRefused(f"the identity token lacks the {exc.claim!r} claim; it needs sub, iat and exp") from None
    except jwt.InvalidTokenError as exc:
        raise IdentityRefused(f"the identity token is not one signed with this shop's secret (HS256): {exc}") from None
    lifetime = float(claims["exp"]) - float(claims["iat"])
    if lifetime > MAX_LIFETIME_SECONDS:
        raise IdentityRefused(f"the identity token is valid for {lifetime / 3600:.0f} h; the most is 24 h. "
                              "Sign tokens for a visit at most")
    if float(claims["iat"]) > now + LEEWAY_SECONDS:
        raise IdentityRefused("the identity token was issued in the future; check the shop server's clock")
    fields = {k: claims.get(k) for k in ("sub", "name", "email")}
    for key, value in fields.items():
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD_CHARS):
            raise IdentityRefused(f"the identity token's {key!r} must be text of up to {MAX_FIELD_CHARS} characters")
    if not fields["sub"].strip():
        raise IdentityRefused("the identity token's 'sub' (the shop's user id) is empty")
    return Identity(fields["sub"].strip(), (fields["name"] or "").strip() or None, (fields["email"] or "").strip() or None)

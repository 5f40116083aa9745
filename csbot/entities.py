"""Slot values found in a customer's message: order numbers, e-mail addresses, phone numbers.

Pure functions over text. This module does not decide which slots a reply needs (replies.py)
nor remember them across messages (the store keeps a conversation's slots).
"""

from __future__ import annotations

import re

# BB-482913, bb482913, BB 482913, #482913, "order 482913", "order no. 482913"
_ORDER = re.compile(
    r"(?:\bBB[\s\-_]?(?P<a>\d{6})\b)"
    r"|(?:#\s?(?P<b>\d{6})\b)"
    r"|(?:\border(?:\s+(?:no\.?|number|num|nr\.?|id|ref))?[\s:#\-]*(?P<c>\d{6})\b)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\d-])(?:\+44\s?|0)(?:\d[\s-]?){9,10}(?![\d-])")


def find_order_id(text: str) -> str | None:
    """The first order number in canonical form.

    Example: find_order_id("where's bb 482913??") -> "BB-482913"
    """
    match = _ORDER.search(text)
    if not match:
        return None
    digits = match.group("a") or match.group("b") or match.group("c")
    return f"BB-{digits}"


def find_email(text: str) -> str | None:
    """Example: find_email("it's jo.bloggs@example.com thanks") -> "jo.bloggs@example.com" """
    match = _EMAIL.search(text)
    return match.group(0) if match else None


def find_phone(text: str) -> str | None:
    """A UK phone number with its spacing removed. Example: "07700 900123" -> "07700900123" """
    match = _PHONE.search(text)
    return re.sub(r"[\s-]", "", match.group(0)) if match else None


EXTRACTORS = {"order_id": find_order_id, "email": find_email, "phone": find_phone}


def extract(text: str) -> dict[str, str]:
    """Every slot value the message carries.

    Example: extract("order 482913, mail me at a@b.co") -> {"order_id": "BB-482913", "email": "a@b.co"}
    """
    found = {}
    for name, finder in EXTRACTORS.items():
        value = finder(text)
        if value:
            found[name] = value
    return found

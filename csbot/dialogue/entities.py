"""Slot values found in a customer's message: order numbers, e-mail addresses, phone numbers.

Pure functions over text, read after NFKC normalisation, so full-width digits and letters
(２０２４, ＢＢ) and full-width punctuation (：＃) read as their half-width forms. Order numbers:
the English demo shop's BB-482913; 8 to 20 digits after a label (订单号：202411230017, 订单编号
2024 1123 0017, 第二单…, dd …, order …), never after 快递单号 or 运单号 (the courier's numbers);
and a bare date-led twelve digits, the Chinese demo shop's form (202411230017). Phone numbers
are UK numbers or 11-digit mainland mobiles (138 0013 8000, +86 139-1234-5678).

This module does not decide which slots a reply needs (replies.py) nor remember them across
messages (the store keeps a conversation's slots).
"""

from __future__ import annotations

import re
import unicodedata

# BB-482913, bb482913, BB 482913, #482913, "order 482913", "order no. 482913"
_ORDER = re.compile(
    r"(?:\bBB[\s\-_]?(?P<a>\d{6})\b)"
    r"|(?:#\s?(?P<b>\d{6})\b)"
    r"|(?:\border(?:\s+(?:no\.?|number|num|nr\.?|id|ref))?[\s:#\-]*(?P<c>\d{6})\b)",
    re.IGNORECASE,
)
# 订单号：202411230017, 订单编号 2024 1123 0017, 第二单202507190045, dd 2024 1208 0331 (pinyin for 订单),
# order 202510030066; not 快递单号/运单号 (the courier's numbers)
_DIGITS = r"(?P<d>\d(?:[\s-]?\d){7,19})(?![\d])"
_ORDER_ZH = re.compile(r"(?<!快递)(?<!运)(?<!面)(?:订单编号|订单号码|订单号|订单|单号|单|\bdd)\s*(?:是|为|就一个)?\s*[:#]?\s*"
                       + _DIGITS + r"|\border\W+(?:[a-z]+\W+)?" + _DIGITS.replace("?P<d>", "?P<e>"), re.IGNORECASE)
# a bare date-led twelve digits, the Chinese demo shop's order number: 202411230017
_ORDER_BARE = re.compile(r"(?<![\d.])(?P<d>20[2-9]\d(?:[\s-]?\d){8})(?![\d.])")
_COURIER = re.compile(r"(?:快递单号|快递单|运单号|运单|物流单号)\s*[:#]?\s*[A-Za-z]*\d[\d\s-]*")  # not ours
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\d-])(?:\+44\s?|0)(?:\d[\s-]?){9,10}(?![\d-])"
                    r"|(?<![\d+-])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?![\d-])")


def find_order_id(text: str) -> str | None:
    """The first order number in canonical form.

    Example: find_order_id("where's bb 482913??") -> "BB-482913"; find_order_id("订单号：２０２４ 1123 0017") -> "202411230017"
    """
    text = unicodedata.normalize("NFKC", text)
    match = _ORDER.search(text)
    labelled = _ORDER_ZH.search(text)
    if labelled and (not match or labelled.start() < match.start()):
        return re.sub(r"[\s-]", "", labelled.group("d") or labelled.group("e"))
    if match:
        return f"BB-{match.group('a') or match.group('b') or match.group('c')}"
    bare = _ORDER_BARE.search(_COURIER.sub(" ", text))
    return re.sub(r"[\s-]", "", bare.group("d")) if bare else None


def order_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` (already NFKC-normalised) holds an order number, by the same rules as find_order_id.

    Example: order_spans("where is BB-482913?") -> [(9, 18)]; order_spans("order 482913") -> [(6, 12)]
    """
    spans = [m.span() if m.group("a") else m.span("b" if m.group("b") else "c") for m in _ORDER.finditer(text)]
    spans += [m.span("d") if m.group("d") else m.span("e") for m in _ORDER_ZH.finditer(text)]
    courier = [m.span() for m in _COURIER.finditer(text)]
    spans += [m.span("d") for m in _ORDER_BARE.finditer(text) if not any(a <= m.start() < b for a, b in courier)]
    return sorted(spans)


def find_email(text: str) -> str | None:
    """Example: find_email("it's jo.bloggs@example.com thanks") -> "jo.bloggs@example.com" """
    match = _EMAIL.search(unicodedata.normalize("NFKC", text))
    return match.group(0) if match else None


def find_phone(text: str) -> str | None:
    """A UK phone number or a mainland mobile, its spacing removed.

    Example: "07700 900123" -> "07700900123"; "手机 138 0013 8000" -> "13800138000"
    """
    match = _PHONE.search(unicodedata.normalize("NFKC", text))
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

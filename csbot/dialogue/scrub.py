"""Personal data out of customer text: every span a recogniser finds becomes a typed placeholder.

    "my name is Sam Lee, card 4539 1488 0343 6467, mail sam@example.com, order BB-482913"
    -> "my name is <name>, card <card>, mail <email>, order {order_id}"

Recognisers, English and Chinese (after NFKC, so full-width forms read as half-width ones):
e-mail addresses; phone numbers (UK, mainland China, and international ones written with +);
payment card numbers (13 to 19 digits in any grouping, Luhn-checked); IBANs (mod-97 checked);
UK postcodes and 邮编 + six digits; street addresses ("12 Acacia Avenue", "朝阳区建国路88号");
mainland resident ID numbers (checksum); dates of birth (a date after "date of birth", "born",
"DOB", 生日, 出生); passwords (the word after "password is", 密码是…); names given as "my name is …",
"I'm called …", 我叫…, 我的名字是…. An order number becomes the `{order_id}` slot
(entities.py's rules), so the message still reads as a request about an order. Numbers that are
none of these (prices, quantities, delivery dates, tracking numbers) stay.

Where two recognisers claim overlapping text, the longer match wins (a card number holds a run
of digits that reads as a phone number), then the earlier kind in `KINDS`. This module only
rewrites text: what is scrubbed, and when, is its callers'.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from csbot.dialogue import entities

_CN = r"\u4e00-\u9fff"
_STREET_WORDS = ("street|st|road|rd|avenue|ave|lane|ln|drive|dr|close|way|crescent|court|ct|place|pl|square|sq|"
                 "terrace|gardens|grove|hill|park|row|walk|mews|parade|boulevard|blvd")
_DATE = (r"(?:\d{1,2}[./-]\d{1,2}[./-](?:19|20)?\d{2}|(?:19|20)\d{2}[./-]\d{1,2}[./-]\d{1,2}"
         r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?[A-Za-z]{3,9}\.?,?\s+(?:19|20)\d{2}"
         r"|[A-Za-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}"
         r"|(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*[日号]?)")


def luhn(digits: str) -> bool:
    """Example: luhn("4539148803436467") -> True; luhn("4539148803436468") -> False"""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


# the countries that issue IBANs (a tracking number like YT1676484819 passes mod-97 one time in 97)
_IBAN_COUNTRIES = set("AD AE AL AT AZ BA BE BG BH BR BY CH CR CY CZ DE DK DO EE EG ES FI FO FR GB GE GI GL GR GT "
                      "HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV MC MD ME MK MR MT MU NL NO PK PL PS PT QA "
                      "RO RS SA SC SE SI SK SM ST SV TL TN TR UA VA VG XK".split())


def iban_ok(text: str) -> bool:
    """Example: iban_ok("GB82 WEST 1234 5698 7654 32") -> True"""
    compact = re.sub(r"\s", "", text).upper()
    if compact[:2] not in _IBAN_COUNTRIES or len(compact) < 15:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def cn_id_ok(text: str) -> bool:
    """A mainland resident ID's check character (ISO 7064 MOD 11-2). Example: cn_id_ok("11010519491231002X") -> True"""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(text[:17], weights))
    return "10X98765432"[total % 11] == text[17].upper()


@dataclass(frozen=True)
class Recogniser:
    kind: str
    pattern: re.Pattern
    check: Callable[[str], bool] = lambda value: True
    group: str | int = 0  # the part of the match that is replaced
    lead: re.Pattern | None = None  # words a match may begin with that are not the data ("寄到…")


def _digits_only(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda value: check(re.sub(r"\D", "", value))


RECOGNISERS = [
    Recogniser("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")),
    Recogniser("iban", re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?"
                                  r"(?![A-Za-z0-9])"), iban_ok),
    Recogniser("card", re.compile(r"(?<!\d)(?<!\d\.)\d(?:[ -]?\d){12,18}(?!\d|\.\d)"),
               _digits_only(lambda d: 13 <= len(d) <= 19 and luhn(d))),
    Recogniser("id_number", re.compile(r"(?<![\dA-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])"
                                       r"(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"), cn_id_ok),
    Recogniser("phone", re.compile(r"(?<![A-Za-z0-9+])(?:\+44\s?\(?0?\)?\s?|0)\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)"
                                   r"|(?<![A-Za-z0-9+])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)"
                                   r"|(?<![\w+])\+[1-9]\d{0,2}(?:[\s-]?\(?\d{1,4}\)?){2,5}(?!\d)"),
               _digits_only(lambda d: 9 <= len(d) <= 15)),
    Recogniser("postcode", re.compile(r"\b(?:GIR\s?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2})\b",
                                      re.IGNORECASE)),
    Recogniser("postcode", re.compile(r"(?:邮编|邮政编码|postcode|zip)\s*[:：是为]?\s*(\d{6})(?!\d)", re.IGNORECASE), group=1),
    Recogniser("address", re.compile(rf"\b(?:(?:flat|apt|apartment|unit)\s*\d+[a-z]?,?\s*)?\d{{1,4}}[a-z]?,?\s+"
                                     rf"(?:[A-Z][a-z']+\s+){{1,3}}(?:{_STREET_WORDS})\b\.?", re.IGNORECASE)),
    # Chinese has no spaces: a match may start with the words before the address, which `lead` trims
    Recogniser("address", re.compile(rf"(?:[{_CN}]{{2,6}}(?:省|自治区))?(?:[{_CN}]{{2,6}}市)?(?:[{_CN}]{{1,6}}(?:区|县))?"
                                     rf"[{_CN}]{{1,10}}(?:路|街|大道|大街|巷|弄|胡同)\d{{1,5}}号"
                                     rf"(?:[{_CN}\d]{{0,3}}(?:栋|幢|号楼)\d*(?:单元)?\d*(?:室)?|\d{{1,5}}室)?"),
               lead=re.compile(r"(?:(?:收货|送货|寄件|家庭|我的|我家)?地址|住址|我住在|住在|我住|我想|麻烦|请|帮我|"
                               r"送到|寄到|发到|寄往|送至|寄至|发往|改成|改为|换成|是|为|在|到)+")),
    Recogniser("dob", re.compile(rf"(?:date\s+of\s+birth|\bd\.?o\.?b\.?|\bborn(?:\s+on)?|birthday)(?:\s+(?:is|was))?\s*[:\-]?\s*"
                                 rf"({_DATE})",
                                 re.IGNORECASE), group=1),
    Recogniser("dob", re.compile(rf"(?:出生日期|出生于|生日|出生)\s*(?:是|为|[:：])?\s*({_DATE})"), group=1),
    Recogniser("password", re.compile(r"(?:password|passcode|pin|pw)\s*(?:is|was|=|:)\s*[\"']?([^\s\"',;]{3,64})",
                                      re.IGNORECASE), group=1),
    Recogniser("password", re.compile(r"(?:密码|口令)\s*(?:是|为|[:：])\s*([^\s，。,；;]{3,64})"), group=1),
    Recogniser("name", re.compile(r"\b(?:[Mm]y\s+name\s+is|[Mm]y\s+name's|[Ii]\s+am\s+called|[Ii]'m\s+called|"
                                  r"[Cc]all\s+me|[Tt]his\s+is)\s+"
                                  r"([A-Z][A-Za-z'\-]*[a-z](?:\s+[A-Z][A-Za-z'\-]*[a-z]){0,2})"), group=1),
    Recogniser("name", re.compile(rf"(?:我叫|我的名字是|我的名字叫|本人姓名)\s*([{_CN}]{{2,4}}?)(?=[，。,.!！\s]|$|[的想要在])"),
               group=1),
]
KINDS = ("email", "iban", "id_number", "phone", "card", "order_id", "postcode", "address", "dob", "password", "name")
PLACEHOLDERS = {kind: f"<{kind}>" for kind in KINDS} | {"order_id": "{order_id}"}
_RANK = {kind: i for i, kind in enumerate(KINDS)}


def find(text: str) -> list[tuple[int, int, str]]:
    """The personal spans of NFKC-normalised `text`: (start, end, kind), in order, never overlapping.

    Example: find("mail a@b.co") -> [(5, 11, "email")]
    """
    found = [(a, b, "order_id") for a, b in entities.order_spans(text)]
    for recogniser in RECOGNISERS:
        for match in recogniser.pattern.finditer(text):
            start, end = match.span(recogniser.group)
            lead = recogniser.lead.match(text, start, end) if recogniser.lead else None
            start = lead.end() if lead else start
            if start < end and recogniser.check(text[start:end]):
                found.append((start, end, recogniser.kind))
    chosen: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(found, key=lambda s: (-(s[1] - s[0]), _RANK[s[2]], s[0])):
        if all(end <= a or start >= b for a, b, _ in chosen):
            chosen.append((start, end, kind))
    return sorted(chosen)


def scrub(text: str, *, names: Iterable[str] = (), counts: Counter | None = None) -> str:
    """The text with every personal span replaced by its kind's placeholder; `names` already known
    (the customer's, from their own turns: see `names_in`) are replaced wherever they stand, so an
    agent's "Hi Sam," loses it too. `counts`, when given, adds up the kinds replaced.

    Example: scrub("我叫王小明，手机13800138000") -> "我叫<name>,手机<phone>" (NFKC: the comma is half-width);
             scrub("Hi Sam, it ships today", names=["Sam"]) -> "Hi <name>, it ships today"
    """
    text = unicodedata.normalize("NFKC", text)
    text = _replaced(text, find(text), counts)
    for name in sorted({n for n in names if len(n) >= 2}, key=len, reverse=True):
        text, replaced = re.subn(rf"(?<![^\W\d_]){re.escape(name)}(?![^\W\d_])" if name.isascii() else re.escape(name),
                                 PLACEHOLDERS["name"], text)
        if counts is not None and replaced:
            counts["name"] += replaced
    return text


def _replaced(text: str, spans: list[tuple[int, int, str]], counts: Counter | None) -> str:
    out, at = [], 0
    for start, end, kind in spans:
        out += [text[at:start], PLACEHOLDERS[kind]]
        at = end
        if counts is not None:
            counts[kind] += 1
    return "".join(out + [text[at:]])


def scrub_turns(turns: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Conversation turns ({"conversation", "text", "agent_reply", ...}) with both texts scrubbed, and
    the names each customer gave removed from the agent replies of their conversation too; with
    how many of each kind were replaced.

    Example: [{"conversation": "c1", "text": "my name is Sam", "agent_reply": "Hi Sam!"}]
             -> ([{"conversation": "c1", "text": "my name is <name>", "agent_reply": "Hi <name>!"}], {"name": 2})
    """
    counts: Counter = Counter()
    names: dict[str, list[str]] = {}
    texts = []
    for turn in turns:  # each customer text read once: its names, and its scrubbed form
        text = unicodedata.normalize("NFKC", turn["text"])
        spans = find(text)
        names.setdefault(turn["conversation"], []).extend(_names(text, spans))
        texts.append(_replaced(text, spans, counts))
    clean = [{**t, "text": text,
              "agent_reply": scrub(t["agent_reply"], names=names[t["conversation"]] + greeted(t["agent_reply"]),
                                   counts=counts)
              if t.get("agent_reply") else None} for t, text in zip(turns, texts)]
    return clean, dict(sorted(counts.items()))


_GREETING = re.compile(r"(?:^|\n)\s*(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)|thanks|thank\s+you)"
                       r",?\s+(?:(?:mr|mrs|ms|miss|dr)\.?\s+)?([A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?)\s*[,!.]",
                       re.IGNORECASE)


def greeted(reply: str) -> list[str]:
    """The names an agent greets a customer by, which the customer may never have typed.

    Example: greeted("Dear Mrs Menon, thank you...") -> ["Menon"]; greeted("Hi there, ...") -> []
    """
    return _with_words([m.group(1) for m in _GREETING.finditer(unicodedata.normalize("NFKC", reply))
                        if m.group(1)[0].isupper() and m.group(1).lower() not in _NOT_NAMES])


_NOT_NAMES = {"there", "again", "all", "everyone", "team", "customer", "so", "for", "very", "both"}


def names_in(text: str) -> list[str]:
    """The names a customer gives in `text`, and each of their words (an agent may use the first name alone).

    Example: names_in("my name is Sam Lee") -> ["Sam Lee", "Sam", "Lee"]
    """
    text = unicodedata.normalize("NFKC", text)
    return _names(text, find(text))


def _names(text: str, spans: list[tuple[int, int, str]]) -> list[str]:
    return _with_words([text[a:b] for a, b, kind in spans if kind == "name"])


def _with_words(names: list[str]) -> list[str]:
    """Names, then each word of a name of several (an agent may use the first name alone), once each.

    Example: _with_words(["Sam Lee", "Sam"]) -> ["Sam Lee", "Sam", "Lee"]
    """
    return list(dict.fromkeys(names + [word for name in names for word in name.split() if len(name.split()) > 1]))

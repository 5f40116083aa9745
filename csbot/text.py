"""Text handling that does not depend on the language a message is in: width folding, word counts
that mean something without spaces, the key under which two messages are the same wording, and
`{slot}` placeholders (found, and filled in one pass: templates and the bot's own words alike).

Chinese is written without spaces, so `len(text.split())` counts a whole Chinese sentence as one
word. Here a word is a run of letters or digits in a spaced script, or two characters of Han,
kana or hangul text (Chinese words average about 1.5 to 2 characters), rounded up.
"""

from __future__ import annotations

import math
import re
import unicodedata

# Han, kana and hangul: written without spaces between words
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"[^\W_]+")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fold(text: str) -> str:
    """NFKC: full-width letters, digits and punctuation to half width, ligatures and compatibility forms resolved.

    Example: fold("ＢＢ－４８２９１３，谢谢！") -> "BB-482913,谢谢!"
    """
    return unicodedata.normalize("NFKC", text)


def word_count(text: str) -> int:
    """Words in a message of any script: spaced words, plus unspaced characters two to a word.

    Example: word_count("where is my order") -> 4; word_count("我的订单到哪了") -> 4; word_count("订单 BB-482913 到哪了") -> 5
    """
    text = fold(text)
    unspaced = len(_UNSPACED.findall(text))
    spaced = len(_WORD.findall(_UNSPACED.sub(" ", text)))
    return spaced + math.ceil(unspaced / 2)


def unspaced(text: str) -> bool:
    """Whether a text is written mostly in an unspaced script (Chinese, Japanese, Korean): one Han,
    kana or hangul character for every three letters of other scripts, or more (a character says
    about as much as a short word). English brand names inside a Chinese sentence leave it Chinese.

    Example: unspaced("宜家的 IKEA 床能退吗") -> True; unspaced("Do you ship to 上海?") -> False
    """
    text = fold(text)
    han = len(_UNSPACED.findall(text))
    other = sum(ch.isalpha() for ch in _UNSPACED.sub("", text))
    return han > 0 and han >= other / 3


def wording_key(text: str) -> str:
    """What two messages share when they are the same wording: their set of words, case and
    width folded, every number the same. A log's templated repeats ("where is order 123" and
    "Where is order 456?") get one key; rephrasings do not. Unspaced scripts count character
    by character, so "订单123到哪了" and "订单456到哪了？" share a key too.

    Example: wording_key("Where is order BB-123456?") == wording_key("where is order bb-9") -> True
    """
    text = _UNSPACED.sub(lambda m: f" {m.group(0)} ", fold(text).lower())
    return " ".join(sorted({"0" if w.isdigit() else w for w in _WORD.findall(text)}))


def placeholders(template: str) -> list[str]:
    """Example: placeholders("Hi {customer_name}, {order_id} ships today") -> ["customer_name", "order_id"]"""
    return PLACEHOLDER.findall(template)


def fill(template: str, values: dict) -> str:
    """Swap each known `{slot}` for its value in one pass; everything else stays as written.

    Example: fill("Order {order_id} {0.__init__}", {"order_id": "{x}"}) -> "Order {x} {0.__init__}"
    """
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)

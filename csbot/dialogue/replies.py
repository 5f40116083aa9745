"""Reply templates: load, validate and render them with slot values.

A template is plain text with `{slot}` placeholders. Rendering is one regex pass that swaps
known placeholders for their values and leaves every other character alone, so customer text
put into a slot is data: `{{ ''.__class__ }}` or `{0.__init__}` come out as written, and nothing
is ever evaluated. When every variant of an intent needs a slot the conversation lacks, the
reply asks for it instead of printing an empty value.

This module does not choose the intent (intents.py) nor remember slots between messages (store.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from csbot.errors import TemplateError
from csbot.language import Words
from csbot.text import fill, placeholders

_UNCLOSED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_}])")

# Slots the customer supplies. A variant needing one that is unknown is skipped; when no
# variant is left, the bot asks for it in the shop's language (the `ask` section of
# csbot/languages/<language>/customer.yaml), except for the slots it never asks for (a name).
CUSTOMER_SLOTS = ("order_id", "email", "phone", "customer_name")
NEVER_ASKED = {"customer_name"}

SAMPLE_SLOTS = {"order_id": "BB-482913", "email": "sam@example.com", "phone": "07700900123",
                "customer_name": "Sam"}


@dataclass(frozen=True)
class Rendered:
    """What render() chose: the text, or the slot it must ask for first (then text is the question)."""

    text: str
    variant: int | None
    missing_slot: str | None = None


class ReplyBook:
    """Every intent's reply variants plus the shop facts that fill the shop's slots."""

    def __init__(self, templates: dict[str, list[str]], shop: dict[str, str], words: Words | None = None):
        self.shop = {str(k): str(v) for k, v in shop.items()}
        self.words = words or Words.load("en")  # the bot's own words, in the shop's language
        for intent, variants in templates.items():
            self.check(intent, variants)
        self.templates = {intent: list(variants) for intent, variants in templates.items()}

    @property
    def known_slots(self) -> set[str]:
        return set(CUSTOMER_SLOTS) | set(self.shop)

    def cleaned(self, intent: str, variants: list[str]) -> list[str]:
        """An edit's variants as they will be stored: trimmed, blank ones dropped, every one checked.

        Example: book.cleaned("greeting", [" Hi {customer_name}! ", ""]) -> ["Hi {customer_name}!"]
        """
        variants = [v.strip() for v in variants if v and v.strip()]
        if not variants:
            raise TemplateError(f"intent {intent!r} needs at least one reply variant")
        self.check(intent, variants)
        return variants

    def check(self, intent: str, variants: list[str]) -> None:
        """Raise TemplateError naming the intent, the variant and the fix, if any variant is broken."""
        if not variants:
            raise TemplateError(f"intent {intent!r} has no templates; add one or remove the intent")
        for number, text in enumerate(variants, start=1):
            where = f"intent {intent!r}, variant {number}"
            if not isinstance(text, str) or not text.strip():
                raise TemplateError(f"{where}: expected non-empty text, found {text!r}")
            for name in placeholders(text):
                if name not in self.known_slots:
                    raise TemplateError(
                        f"{where}: unknown slot {{{name}}}; known slots: "
                        + ", ".join("{" + s + "}" for s in sorted(self.known_slots)))
            unclosed = [m.group(1) for m in _UNCLOSED.finditer(text)]
            if unclosed:
                raise TemplateError(f"{where}: '{{{unclosed[0]}' is never closed; write {{{unclosed[0]}}}")

    def render(self, intent: str, slots: dict[str, str], *, turn: int = 0,
               previous: str | None = None) -> Rendered:
        """Pick a variant whose slots are all known, rotating by `turn` and avoiding `previous`.

        Example: render("order_status", {}) -> Rendered(text="Could you give me your order number? ...",
                 variant=None, missing_slot="order_id")
        """
        variants = self.templates.get(intent)
        if not variants:
            raise TemplateError(f"intent {intent!r} has no templates; add some in the templates file")
        values = {**self.shop, **{k: v for k, v in slots.items() if v}}
        count = len(variants)
        order = [(turn + i) % count for i in range(count)]
        usable = [i for i in order if all(name in values for name in placeholders(variants[i]))]
        if not usable:
            return Rendered(text=self._ask(variants, values), variant=None,
                            missing_slot=self._first_missing(variants, values))
        for i in usable:
            text = fill(variants[i], values)
            if text != previous:
                return Rendered(text=text, variant=i)
        return Rendered(text=fill(variants[usable[0]], values), variant=usable[0])

    def _first_missing(self, variants: list[str], values: dict[str, str]) -> str:
        # The slot that the fewest-missing variant lacks and that we know how to ask for.
        best = min(variants, key=lambda v: sum(name not in values for name in placeholders(v)))
        missing = [n for n in placeholders(best) if n not in values]
        askable = [n for n in missing if n in CUSTOMER_SLOTS and n not in NEVER_ASKED]
        return (askable or missing)[0]

    def _ask(self, variants: list[str], values: dict[str, str]) -> str:
        name = self._first_missing(variants, values)
        question = None if name in NEVER_ASKED else self.words.section("ask").get(name)
        if question is None:
            raise TemplateError(f"no variant can be rendered without {{{name}}}, and csbot never asks "
                                f"for it; add a variant that does not use {{{name}}}")
        return question

    def fill(self, template: str, slots: dict[str, str]) -> str:
        """Fill a fixed text with shop facts and whatever slots are known."""
        return fill(template, {**self.shop, **{k: v for k, v in slots.items() if v}})

    def say(self, key: str, slots: dict[str, str] | None = None) -> str:
        """One of the bot's own sentences ("bot.fallback") in the shop's language, filled like a template.

        Example: say("bot.handed_back") -> "Our team has handed this chat back to me. ..."
        """
        return self.fill(self.words[key], slots or {})

    def preview(self, text: str, intent: str = "preview") -> str:
        """Render one template on sample values (for the staff editor); raises TemplateError if broken."""
        self.check(intent, [text])
        return fill(text, {**SAMPLE_SLOTS, **self.shop})


def check_covered(intents: set[str], templates: dict[str, list[str]], *, where: Path) -> None:
    """Every intent a support log uses must have templates. Example: {"refunds"} not in templates -> TemplateError"""
    unknown = sorted(set(intents) - set(templates))
    if unknown:
        raise TemplateError(f"{where}: intents {', '.join(unknown)} appear in the support log but have no "
                            "templates; add templates for them")


def load_templates_file(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Read templates.yaml: `intent: {description: str, templates: [str, ...]}` per intent.

    Returns (descriptions, templates). Raises TemplateError with the intent at fault.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: cannot read templates: {exc}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: expected a mapping of intent -> {{description, templates}}, "
                            f"found {type(raw).__name__}")
    descriptions: dict[str, str] = {}
    templates: dict[str, list[str]] = {}
    for intent, spec in raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("templates"), list):
            raise TemplateError(f"{path}: intent {intent!r} needs a 'templates' list; found {spec!r:.80}")
        descriptions[str(intent)] = str(spec.get("description") or "")
        templates[str(intent)] = [str(t) for t in spec["templates"]]
    return descriptions, templates


def load_shop_file(path: Path) -> dict[str, str]:
    """Read shop.yaml: flat `slot: value` pairs (shop_name, opening_hours, ...)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: cannot read shop facts: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, (str, int, float)) for v in raw.values()):
        raise TemplateError(f"{path}: expected flat 'slot: value' pairs, found {raw!r:.80}")
    return {str(k): str(v) for k, v in raw.items()}

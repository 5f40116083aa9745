"""The shop's language: the bot's own words and every page's labels, per language, from data.

Each language is a folder, `csbot/languages/<code>/` (en, zh), of YAML files by audience, each of
sections of keys: `customer.yaml` has `bot` (fallback, hand-off, hand-back), `ask` (the question
for a slot a template needs) and `chat` (the customer page); `staff.yaml` and `admin.yaml` have
the staff and admin pages'. A section lives in one file. Every language has the same keys with
the same `{placeholders}`; one that does not is refused when it loads, naming the key, and a test
checks the shipped ones. `Words` is what the bot, the reply book and the pages are handed; the
`language` setting picks the customer's, `staff_language` the staff and admin pages'.

This module holds words only: routing is bot.py's, rendering templates is replies.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from csbot.errors import SettingsError
from csbot.text import fill, placeholders

FOLDER = Path(__file__).resolve().parent / "languages"
REFERENCE = "en"  # the language every other one is checked against


def languages(folder: Path = FOLDER) -> list[str]:
    """The codes of the shipped languages. Example: languages() -> ["en", "zh"]"""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def _read(folder: Path) -> dict[str, str | list[str]]:
    """Every key of a language's folder, as "section.key" -> text (or list of texts)."""
    flat: dict[str, str | list[str]] = {}
    owner: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{path}: cannot read the language file: {exc}") from None
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: expected sections of 'key: text', found {type(raw).__name__}")
        for section, keys in raw.items():
            if not isinstance(keys, dict):
                raise SettingsError(f"{path}: section {section!r} must map keys to texts; found {keys!r:.60}")
            if section in owner:
                raise SettingsError(f"{path}: section {section!r} is already in {owner[section].name}; "
                                    "a section lives in one file")
            owner[section] = path
            for key, text in keys.items():
                if not (isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))):
                    raise SettingsError(f"{path}: {section}.{key} must be a text or a list of texts; "
                                        f"found {text!r:.60}")
                flat[f"{section}.{key}"] = text
    return flat


def _names(text: str | list[str]) -> set[str]:
    """Example: _names(["Open {opening_hours}", "{shop_name}"]) -> {"opening_hours", "shop_name"}"""
    return set(placeholders(" ".join(text) if isinstance(text, list) else text))


def differences(texts: dict, reference: dict) -> list[str]:
    """What a language file lacks, has too many of, or words with other placeholders than the reference.

    Example: differences({"bot.fallback": "Sorry"}, {"bot.fallback": "Sorry, {opening_hours}", "bot.x": "x"})
             -> ["missing bot.x", "bot.fallback: placeholders [] where the reference has ['opening_hours']"]
    """
    problems = [f"missing {key}" for key in reference if key not in texts]
    problems += [f"unknown key {key}" for key in texts if key not in reference]
    for key in reference:
        if key in texts and _names(texts[key]) != _names(reference[key]):
            problems.append(f"{key}: placeholders {sorted(_names(texts[key]))} where the reference has "
                            f"{sorted(_names(reference[key]))}")
        elif key in texts and isinstance(texts[key], list) != isinstance(reference[key], list):
            problems.append(f"{key}: a {'list' if isinstance(reference[key], list) else 'text'} in the reference")
    return problems


@dataclass(frozen=True)
class Words:
    """One language's texts by dotted key ("bot.fallback", "chat.send")."""

    language: str
    texts: dict

    def __getitem__(self, key: str) -> str:
        return self.texts[key]

    def say(self, key: str, /, **values) -> str:
        """The text with its placeholders filled in one pass (text.fill); unknown ones stay as written.

        Example: Words.load("en").say("chat.staff_says", author="Kim", text="Hi") -> "Kim (our team): Hi"
        """
        return fill(self.texts[key], values)

    def section(self, name: str) -> dict:
        """Example: Words.load("en").section("ask")["order_id"] -> "Could you give me your order number? ..." """
        return {k.split(".", 1)[1]: v for k, v in self.texts.items() if k.startswith(name + ".")}

    @classmethod
    def load(cls, language: str, folder: Path = FOLDER) -> Words:
        """The language's words, checked against the reference language's keys and placeholders."""
        return _load(language, Path(folder))


@cache
def _load(language: str, folder: Path) -> Words:
    if language not in languages(folder):
        raise SettingsError(f"language must be one of {', '.join(languages(folder))}; found {language!r}. "
                            f"Add {folder / language}/ (a copy of {folder / REFERENCE}/, translated) to support it")
    texts = _read(folder / language)
    problems = differences(texts, _read(folder / REFERENCE))
    if problems:
        raise SettingsError(f"{folder / language}/ does not match {REFERENCE}/: {'; '.join(problems)}")
    return Words(language, texts)

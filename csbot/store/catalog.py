"""Shop facts, intents and their reply templates: what the reply book is built from.

Each change raises the `shop` or `templates` generation, so every serving process rebuilds its
reply book within a poll. This module does not render or check templates (replies.py does).
"""

from __future__ import annotations

from csbot.errors import DataError
from csbot.store.backend import now, serialized, write
from csbot.store.generations import bump

MAX_INTENT_NAME = 64


def intent_name_problem(name: str) -> str | None:
    """Why `name` cannot name an intent, or None. Example: intent_name_problem("a b\n") -> "... printable ..." """
    if not name or len(name) > MAX_INTENT_NAME or not name.isprintable() or name != name.strip():
        return f"an intent name is 1 to {MAX_INTENT_NAME} printable characters, no space at either end"
    return None


def checked_intent_name(name: str) -> str:
    """An intent name as staff typed it (spaces inside become _), or DataError.

    Example: checked_intent_name(" card arrived ") -> "card_arrived"
    """
    cleaned = "_".join((name or "").split())
    problem = intent_name_problem(cleaned)
    if problem:
        raise DataError(f"{problem}; found {name!r}")
    return cleaned


class CatalogRows:
    @serialized
    def set_shop(self, facts: dict[str, str]) -> None:
        with write(self.db):
            for key, value in facts.items():
                self.db.upsert("shop_facts", {"key": key, "value": value}, keys=("key",))
            bump(self.db, "shop")

    @serialized
    def shop(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM shop_facts ORDER BY key").fetchall())

    @serialized
    def set_intent(self, name: str, *, description: str, templates: list[str]) -> None:
        """Create or replace an intent and all of its template variants, in one transaction."""
        with write(self.db):
            self.db.upsert("intents", {"name": name, "description": description}, keys=("name",))
            self.db.execute("DELETE FROM templates WHERE intent = ?", [name])
            self.db.insert_many("templates",
                [{"intent": name, "position": i, "text": t, "updated_at": now()}
                 for i, t in enumerate(templates)])
            bump(self.db, "templates")

    @serialized
    def replace_templates(self, name: str, templates: list[str]) -> None:
        """Replace an existing intent's variants (checked by the reply book first); DataError for an unknown intent."""
        with write(self.db):
            row = self.db.one("SELECT description FROM intents WHERE name = ?", [name])
            if row is None:
                raise DataError(f"no intent {name!r}; pick one of the list")
            self.set_intent(name, description=row["description"], templates=templates)

    @serialized
    def set_intents(self, intents: dict[str, tuple[str, list[str]]]) -> None:
        """Several intents at once ({name: (description, templates)}), all or nothing."""
        with write(self.db):
            for name, (description, templates) in intents.items():
                self.set_intent(name, description=description, templates=templates)

    @serialized
    def intents(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, description FROM intents ORDER BY name").fetchall())

    @serialized
    def templates(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for intent, text in self.db.execute("SELECT intent, text FROM templates ORDER BY intent, position").fetchall():
            out.setdefault(intent, []).append(text)
        return out

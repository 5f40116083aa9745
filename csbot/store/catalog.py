"""Shop facts, intents and their reply templates: what the reply book is built from.

Each change raises the `shop` or `templates` generation, so every serving process rebuilds its
reply book within a poll. This module does not render or check templates (replies.py does).
"""

from __future__ import annotations

from csbot.store.backend import now, serialized, write
from csbot.store.generations import bump


class CatalogRows:
    @serialized
    def set_shop(self, facts: dict[str, str]) -> None:
        with write(self.db):
            self.db["shop_facts"].upsert_all([{"key": k, "value": v} for k, v in facts.items()], pk="key")
            bump(self.db, "shop")

    @serialized
    def shop(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self.db["shop_facts"].rows}

    @serialized
    def set_intent(self, name: str, *, description: str, templates: list[str]) -> None:
        """Create or replace an intent and all of its template variants, in one transaction."""
        with write(self.db):
            self.db["intents"].upsert({"name": name, "description": description}, pk="name")
            self.db.execute("DELETE FROM templates WHERE intent = ?", [name])
            self.db["templates"].insert_all(
                [{"intent": name, "position": i, "text": t, "updated_at": now()}
                 for i, t in enumerate(templates)])
            bump(self.db, "templates")

    @serialized
    def set_intents(self, intents: dict[str, tuple[str, list[str]]]) -> None:
        """Several intents at once ({name: (description, templates)}), all or nothing."""
        with write(self.db):
            for name, (description, templates) in intents.items():
                self.set_intent(name, description=description, templates=templates)

    @serialized
    def intents(self) -> dict[str, str]:
        return {r["name"]: r["description"] for r in self.db["intents"].rows_where(order_by="name")}

    @serialized
    def templates(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for row in self.db["templates"].rows_where(order_by="intent, position"):
            out.setdefault(row["intent"], []).append(row["text"])
        return out

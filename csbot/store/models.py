"""Model versions: one row per trained version (its folder, metrics, threshold, comparison) and
which one serves. Changing the serving version raises the `model` generation, so every process
loads and swaps in the new one. Folders and loading live in registry.py.
"""

from __future__ import annotations

import json

from csbot.errors import DataError
from csbot.store.backend import json_text, serialized, write
from csbot.store.generations import bump


class ModelRows:
    @serialized
    def add_model_version(self, row: dict) -> None:
        row = {**row, "metrics": json_text(row.get("metrics") or {}), "is_current": 0}
        self.db.insert("model_versions", row, returning=None)

    @serialized
    def model_versions(self) -> list[dict]:
        found = self.db.rows("SELECT * FROM model_versions ORDER BY created_at DESC")
        return [{**r, "metrics": json.loads(r["metrics"] or "{}"),
                 "comparison": json.loads(r["comparison"]) if r.get("comparison") else None} for r in found]

    @serialized
    def set_comparison(self, version: str, comparison: dict) -> None:
        self.db.update("model_versions", version, {"comparison": json_text(comparison)})

    @serialized
    def current_model(self) -> dict | None:
        found = [r for r in self.model_versions() if r["is_current"]]
        return found[0] if found else None

    @serialized
    def set_current_model(self, version: str) -> None:
        with write(self.db):
            if not self.db.execute("SELECT 1 FROM model_versions WHERE id = ?", [version]).fetchone():
                raise DataError(f"no model version {version!r}; see `python -m csbot models` for the list")
            self.db.execute("UPDATE model_versions SET is_current = CASE WHEN id = ? THEN 1 ELSE 0 END", [version])
            bump(self.db, "model")

"""Model versions: one row per trained version (its folder, metrics, threshold, comparison) and
which one serves. Changing the serving version, or the threshold a version serves with (its
operating point), raises the `model` generation, so every process loads and swaps in the new
one or sets the new threshold. Folders and loading live in registry.py; the rule that reads a
threshold off the curve lives in calibration.py.
"""

from __future__ import annotations

import json

from csbot.errors import DataError
from csbot.store.backend import json_text, serialized, write
from csbot.store.generations import bump


def _decoded(row: dict) -> dict:
    """A model_versions row with its JSON columns read."""
    return {**row, "metrics": json.loads(row["metrics"] or "{}"),
            "comparison": json.loads(row["comparison"]) if row.get("comparison") else None,
            "operating_point": json.loads(row["operating_point"]) if row.get("operating_point") else None}


class ModelRows:
    @serialized
    def add_model_version(self, row: dict) -> None:
        row = {**row, "metrics": json_text(row.get("metrics") or {}), "is_current": 0}
        self.db.insert("model_versions", row, returning=None)

    @serialized
    def model_versions(self) -> list[dict]:
        return [_decoded(r) for r in self.db.rows("SELECT * FROM model_versions ORDER BY created_at DESC")]

    @serialized
    def model_version(self, version: str) -> dict:
        """One version's row, or DataError naming the command that lists them."""
        row = self.db.one("SELECT * FROM model_versions WHERE id = ?", [version])
        if row is None:
            raise DataError(f"no model version {version!r}; `python -m csbot models` lists them")
        return _decoded(row)

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

    @serialized
    def set_operating_point(self, version: str, threshold: float, point: dict | None) -> None:
        """Serve `version` with `threshold` from now on, in every process; `point` says how it was
        chosen (None: back to the trained default)."""
        with write(self.db):
            if not self.db.execute("SELECT 1 FROM model_versions WHERE id = ?", [version]).fetchone():
                raise DataError(f"no model version {version!r}; see `python -m csbot models` for the list")
            self.db.execute("UPDATE model_versions SET threshold = ?, operating_point = ? WHERE id = ?",
                            [float(threshold), json_text(point) if point else None, version])
            bump(self.db, "model")

"""Change counters: one number per kind of shared state, raised in the same transaction as the change.

Every process keeps the numbers it last served from and polls `generations()` (one small read) to
learn that answers, templates, shop facts or the serving model changed in another process, a
server, the CLI or a training run, and catches up. Counters only grow.

Example: bump(db, "answers") inside the answer's write; generations() -> {"answers": 7, "model": 2}
"""

from __future__ import annotations

from csbot.store.backend import Database, now, serialized

KINDS = ("answers", "templates", "shop", "model")


def bump(db: Database, name: str) -> None:
    """Raise `name`'s counter; call inside the transaction that made the change."""
    if name not in KINDS:
        raise ValueError(f"generation name must be one of {KINDS}; found {name!r}")
    db.execute("INSERT INTO generations (name, value, updated_at) VALUES (?, 1, ?) "
               "ON CONFLICT (name) DO UPDATE SET value = generations.value + 1, updated_at = excluded.updated_at",
               [name, now()])


class GenerationRows:
    @serialized
    def generations(self) -> dict[str, int]:
        """Every counter (0 for a kind never changed). Example: {"answers": 3, "templates": 1, ...}"""
        found = {r[0]: r[1] for r in self.db.execute("SELECT name, value FROM generations").fetchall()}
        return {k: found.get(k, 0) for k in KINDS}

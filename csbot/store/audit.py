"""The audit log: who did what, when, from where. One row per action (logins and failed logins,
logouts, answer and template edits, labels, imports, retrains, promotes and rollbacks, account
changes), written by the service that did it and read by admins with a filter.
"""

from __future__ import annotations

import getpass
import json

from csbot.store.backend import json_text, now, serialized


def local_actor() -> str:
    """Who the log names for a change made on this machine without a logged-in user: the OS user.

    Example: local_actor() -> "cli:root"
    """
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class AuditRows:
    @serialized
    def audit(self, actor: str, action: str, target: str | None = None, *, detail: dict | None = None,
              address: str | None = None) -> None:
        """Record an action. Example: audit("ada", "promote", "v20261201-1200-ab12cd")"""
        self.db.insert("audit", {"at": now(), "actor": actor, "action": action, "target": target,
                                 "detail": json_text(detail) if detail else None,
                                 "address": address})

    @serialized
    def audit_log(self, *, actor: str | None = None, action: str | None = None, text: str | None = None,
                  limit: int = 200) -> list[dict]:
        """Newest first, optionally only one actor's, one action's, or those mentioning `text`."""
        where, params = ["1 = 1"], []
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if action:
            where.append("action = ?")
            params.append(action)
        if text:
            # lower() both sides: LIKE ignores case on SQLite, not on PostgreSQL
            where.append("lower(coalesce(target, '') || ' ' || coalesce(CAST(detail AS TEXT), '') || ' ' || "
                         "coalesce(address, '')) LIKE ?")
            params.append(f"%{text.lower()}%")
        found = self.db.rows(f"SELECT * FROM audit WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                     [*params, limit])
        for row in found:
            row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
        return found

    @serialized
    def audit_actions(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT action FROM audit ORDER BY action").fetchall()]

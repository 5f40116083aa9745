"""Copying a whole store into another, empty one: moving from the embedded SQLite file to
PostgreSQL when a second machine comes, or taking a SQLite copy of a PostgreSQL store.

Every table is copied in the order its foreign keys need, in one transaction on the target; ids
are kept, so messages still point at their conversations and answers at their phrasings, and
the target's id counters continue after the highest copied id. Files (models, indexes) are not
rows: they stay in the artifacts folder.
"""

from __future__ import annotations

import json

from csbot.errors import DataError
from csbot.store.backend import json_text, snapshot, write

# parents before children; every table of the schema
TABLES = ("shop_facts", "intents", "templates", "examples", "answers", "answer_questions", "answer_negatives",
          "answer_tuning", "conversations", "messages", "model_versions", "jobs", "users", "recovery_codes",
          "devices", "generations", "service_keys", "sessions", "login_failures", "rate_hits", "audit",
          "history_imports", "history_turns", "proposals", "proposal_turns", "webhooks", "webhook_deliveries")
# ids the database hands out
WITH_IDS = ("templates", "answers", "answer_questions", "answer_negatives", "messages", "recovery_codes", "audit",
            "history_turns", "proposals", "proposal_turns", "webhooks", "webhook_deliveries")
ORPHANS = {  # the schema's foreign keys, as the rows that would break them
    "templates of a missing intent": "SELECT count(*) FROM templates WHERE intent NOT IN (SELECT name FROM intents)",
    "phrasings of a missing answer": "SELECT count(*) FROM answer_questions WHERE answer_id NOT IN (SELECT id FROM answers)",
    "messages of a missing conversation": "SELECT count(*) FROM messages WHERE conversation_id NOT IN "
                                          "(SELECT id FROM conversations)",
    "history turns of a missing import": "SELECT count(*) FROM history_turns WHERE import_id NOT IN "
                                         "(SELECT id FROM history_imports)",
    "proposed turns of a missing proposal": "SELECT count(*) FROM proposal_turns WHERE proposal_id NOT IN "
                                            "(SELECT id FROM proposals)",
}
MUST_BE_EMPTY = ("intents", "examples", "answers", "conversations", "model_versions", "users")


def copy_store(source, target) -> dict[str, int]:
    """Copy every row of `source` into the empty store `target` (both Store). Returns rows per table.

    Example: copy_store(Store.open("home/csbot.db"), Store.open("postgresql://csbot@db/csbot"))
             -> {"shop_facts": 9, "intents": 14, ...}
    """
    used = [t for t in MUST_BE_EMPTY if target.db.value(f"SELECT count(*) FROM {t}")]
    if used:
        raise DataError(f"the target store is not empty (it has rows in {', '.join(used)}); copy into a new, "
                        "empty database so nothing is mixed or overwritten")
    orphans = {what: n for what, sql in ORPHANS.items() if (n := source.db.value(sql))}
    if orphans:
        raise DataError("the source store has rows whose parent row is missing (SQLite never enforced its "
                        "foreign keys; PostgreSQL does): " + ", ".join(f"{n} {what}" for what, n in orphans.items())
                        + ". Delete them in the source first, then copy again")
    json_columns = target.db.json_columns()
    copied = {}
    with write(target.db), snapshot(source.db):  # one moment of the source, all or nothing in the target
        for table in TABLES:
            found = source.db.rows(f"SELECT * FROM {table}")
            for row in found:  # JSON text from SQLite may hold what jsonb refuses (Infinity)
                for column in json_columns.get(table, ()):
                    if isinstance(row.get(column), str):
                        row[column] = json_text(json.loads(row[column]))
            target.db.insert_many(table, found)
            copied[table] = len(found)
        for table in WITH_IDS:
            target.db.continue_ids(table)
    return copied

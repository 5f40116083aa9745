"""The dashboard's counts, read in SQL over a window of stamps: customer messages per day, how
they were answered, ratings, the busiest intents, the questions that fell back.

A window is two ISO-8601 UTC texts, [start, end), compared as text (the store always writes
`created_at` that way, so the `created_at` index serves them). Each method returns plain rows;
filling empty days, shares and grouping wordings is the web layer's (web/dashboard.py).
"""

from __future__ import annotations

from csbot.store.backend import serialized

# Each customer message with the route of the bot's reply to it. The reply is the first bot
# message after it, in its conversation and before the customer's next message, that answers
# (template, answer, fallback): 'handoff' and 'handback' notices are bot rows that answer nothing.
# No such reply means the bot stayed quiet because a person had the conversation: 'person'.
# The subquery walks the (conversation_id, id) index from the message onwards, a few rows each.
_ASKED = """
WITH asked AS (
    SELECT m.id, m.text, m.created_at, coalesce((
        SELECT CASE WHEN n.role = 'bot' THEN n.route END FROM messages n
        WHERE n.conversation_id = m.conversation_id AND n.id > m.id
          AND (n.role = 'customer' OR (n.role = 'bot' AND n.route IN ('template', 'answer', 'fallback')))
        ORDER BY n.id LIMIT 1), 'person') AS route
    FROM messages m
    WHERE m.role = 'customer' AND m.created_at >= ? AND m.created_at < ?)
"""


class StatsRows:
    @serialized
    def customer_messages_per_day(self, start: str, end: str) -> dict[str, int]:
        """Example: {"2026-11-27": 4} (days without messages are absent)"""
        rows = self.db.rows(f"SELECT {self.db.dialect.day('created_at')} AS day, count(*) AS messages FROM messages"
                            " WHERE role = 'customer' AND created_at >= ? AND created_at < ? GROUP BY day",
                            [start, end])
        return {r["day"]: int(r["messages"]) for r in rows}

    @serialized
    def customer_messages_by_route(self, start: str, end: str) -> dict[str, int]:
        """How the window's customer messages were answered. Example: {"template": 3, "person": 1}"""
        rows = self.db.rows(_ASKED + "SELECT route, count(*) AS messages FROM asked GROUP BY route", [start, end])
        return {r["route"]: int(r["messages"]) for r in rows}

    @serialized
    def rating_counts(self, start: str, end: str) -> tuple[int, int]:
        """(likes, dislikes) of the window's bot replies."""
        row = self.db.one("SELECT count(CASE WHEN rating = 1 THEN 1 END) AS likes, "
                          "count(CASE WHEN rating = -1 THEN 1 END) AS dislikes"
                          " FROM messages WHERE role = 'bot' AND created_at >= ? AND created_at < ?", [start, end])
        return int(row["likes"]), int(row["dislikes"])

    @serialized
    def template_intent_counts(self, start: str, end: str, *, n: int) -> list[dict]:
        """The `n` intents answered most with a template, most first (ties by name).

        Example: [{"intent": "order_status", "messages": 5}, {"intent": "returns", "messages": 2}]
        """
        return self.db.rows("SELECT intent, count(*) AS messages FROM messages WHERE role = 'bot'"
                            " AND route = 'template' AND intent IS NOT NULL AND created_at >= ? AND created_at < ?"
                            " GROUP BY intent ORDER BY messages DESC, intent LIMIT ?", [start, end, n])

    @serialized
    def gap_messages(self, start: str, end: str) -> list[dict]:
        """The window's customer messages the bot could not answer well, oldest first: answered with the
        fallback, answered with low confidence, or whose reply was disliked (the inbox reason says
        which). Example: [{"id": 7, "text": "do you ship to mars", "created_at": "...", "inbox": "fallback",
        "inbox_status": "open"}]"""
        return self.db.rows("SELECT id, text, created_at, inbox, inbox_status FROM messages WHERE role = 'customer' "
                            "AND inbox IN ('fallback', 'low_confidence', 'disliked') AND created_at >= ? "
                            "AND created_at < ? ORDER BY id", [start, end])

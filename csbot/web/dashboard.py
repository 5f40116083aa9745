"""The admin dashboard's figures: customer messages per day, how they were answered, ratings,
the busiest intents and the topics of what the bot could not answer, each as a pandas DataFrame
(or a small dict) over a window of whole UTC days.

The window is the `days` calendar days ending on `now`'s UTC date, today included; a message
counts by its `created_at`, which the store always writes as ISO-8601 UTC text, so day bounds
are plain string comparisons that the `created_at` index serves. Counting runs in the store
(store/stats.py); the gap topics are grouped by the caller (service/review.py) and only shaped here.

This module reads and writes nothing itself; it draws no charts (the pages do).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from csbot.errors import DataError
from csbot.store import Store

ROUTES = ("template", "answer", "fallback", "person")

def window(*, days: int = 30, now: datetime | None = None) -> tuple[str, str]:
    """The window's bounds as text: its first day, and the day after its last (exclusive).

    A naive `now` is taken to be UTC.
    Example: window(days=3, now=datetime(2026, 11, 28, 18, 31, tzinfo=timezone.utc))
             -> ("2026-11-26", "2026-11-29")
    """
    if days < 1:
        raise DataError(f"the dashboard window must be at least 1 day; found days={days}")
    now = now or datetime.now(timezone.utc)
    today = (now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)).date()
    return (today - timedelta(days=days - 1)).isoformat(), (today + timedelta(days=1)).isoformat()


def messages_per_day(store: Store, *, days: int = 30, now: datetime | None = None) -> pd.DataFrame:
    """Customer messages per UTC day, every day of the window present (zeros filled), oldest first.

    Example: days=3, one message on the 27th -> day ["2026-11-26", "2026-11-27", "2026-11-28"], messages [0, 1, 0]
    """
    start, end = window(days=days, now=now)
    counts = store.customer_messages_per_day(start, end)
    first = datetime.fromisoformat(start).date()
    all_days = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    return pd.DataFrame({"day": all_days, "messages": [int(counts.get(d, 0)) for d in all_days]})


def route_shares(store: Store, *, days: int = 30, now: datetime | None = None) -> pd.DataFrame:
    """How the window's customer messages were answered: template, answer, fallback, or person.

    Example: 3 answered by templates, 1 by a person -> messages [3, 0, 0, 1], share [0.75, 0, 0, 0.25]
    """
    counts = store.customer_messages_by_route(*window(days=days, now=now))
    messages = [int(counts.get(route, 0)) for route in ROUTES]
    total = sum(messages)
    return pd.DataFrame({"route": list(ROUTES), "messages": messages,
                         "share": [m / total if total else 0.0 for m in messages]})


def ratings(store: Store, *, days: int = 30, now: datetime | None = None) -> dict:
    """Likes and dislikes of the window's bot replies; like_ratio is None when nobody rated.

    Example: 3 likes, 1 dislike -> {"likes": 3, "dislikes": 1, "like_ratio": 0.75}
    """
    likes, dislikes = store.rating_counts(*window(days=days, now=now))
    rated = likes + dislikes
    return {"likes": likes, "dislikes": dislikes, "like_ratio": likes / rated if rated else None}


def top_intents(store: Store, *, days: int = 30, now: datetime | None = None, n: int = 10) -> pd.DataFrame:
    """The intents the bot answered most with a template in the window, most first (ties by name).

    Example: 5 order_status replies, 2 returns -> intent ["order_status", "returns"], messages [5, 2]
    """
    rows = store.template_intent_counts(*window(days=days, now=now), n=n)
    return pd.DataFrame(rows, columns=["intent", "messages"]).astype({"messages": "int64"})


def gap_topics(topics: list[dict], *, n: int = 10) -> pd.DataFrame:
    """The gap topics (service/review.py `gaps`, already ranked) as the dashboard's table.

    Example: [{"name": "mars_ship", "messages": 6, "growth": 4, "examples": ["to mars?"]}]
             -> topic ["mars_ship"], messages [6], growth [4], example ["to mars?"]
    """
    rows = [[t["name"], t["messages"], t["growth"], t["examples"][0]] for t in topics[:n]]
    return pd.DataFrame(rows, columns=["topic", "messages", "growth", "example"]).astype(
        {"messages": "int64", "growth": "int64"})

def summary(store: Store, *, days: int = 30, now: datetime | None = None, gaps: list[dict] = ()) -> dict:
    """Every figure over one window (one clock reading, so they agree), for one dashboard refresh;
    `gaps` are the window's gap topics, which the caller groups (service/review.py).

    Example: summary(store, days=7) -> {"start": "2026-11-22", "end": "2026-11-28", "days": 7,
             "messages_per_day": DataFrame, "route_shares": DataFrame, "ratings": {...},
             "top_intents": DataFrame, "gap_topics": DataFrame}
    """
    now = now or datetime.now(timezone.utc)
    start, after = window(days=days, now=now)
    figures = dict(days=days, now=now)
    return {"start": start, "end": (datetime.fromisoformat(after) - timedelta(days=1)).date().isoformat(),
            "days": days, "messages_per_day": messages_per_day(store, **figures),
            "route_shares": route_shares(store, **figures), "ratings": ratings(store, **figures),
            "top_intents": top_intents(store, **figures), "gap_topics": gap_topics(list(gaps))}

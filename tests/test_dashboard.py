from datetime import datetime, timedelta, timezone

import pytest

from csbot.errors import DataError
from csbot.web import dashboard

NOW = datetime(2026, 11, 28, 18, 0, tzinfo=timezone.utc)


def at(day: int, time: str = "12:00:00.000") -> str:
    """created_at text of a November 2026 day, as the store writes it."""
    return f"2026-11-{day:02d}T{time}+00:00"


def ask(store, cid: str, text: str, *, when: str, route: str | None = None, intent: str | None = None,
        rating: int | None = None) -> int:
    """A customer message and, when route is given, the bot's reply to it. Returns the reply's id."""
    store.add_message(cid, role="customer", text=text, created_at=when)
    if route:
        return store.add_message(cid, role="bot", text="reply", route=route, intent=intent, rating=rating,
                                 created_at=when)


def new_chat(store) -> str:
    return store.conversation(None, channel="web")["id"]


def test_messages_per_day_fills_every_day_and_respects_the_edges(store):
    cid = new_chat(store)
    ask(store, cid, "too early", when=at(25, "23:59:59.999"))
    ask(store, cid, "first moment", when=at(26, "00:00:00.000"), route="template")
    ask(store, cid, "a", when=at(27))
    ask(store, cid, "b", when=at(27, "13:00:00.000"), route="fallback")
    ask(store, cid, "last moment", when=at(28, "23:59:59.999"))
    ask(store, cid, "too late", when=at(29, "00:00:00.000"))
    store.add_message(cid, role="staff", text="not a customer", created_at=at(27))
    table = dashboard.messages_per_day(store, days=3, now=NOW)
    assert table["day"].tolist() == ["2026-11-26", "2026-11-27", "2026-11-28"]
    assert table["messages"].tolist() == [1, 2, 1]


def test_window_reads_now_in_utc():
    # 01:00 on the 29th at UTC+5 is still the 28th in UTC; a naive clock is taken as UTC
    east = datetime(2026, 11, 29, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    assert dashboard.window(days=2, now=east) == ("2026-11-27", "2026-11-29")
    assert dashboard.window(days=1, now=datetime(2026, 11, 28, 23, 0)) == ("2026-11-28", "2026-11-29")
    with pytest.raises(DataError, match="at least 1 day"):
        dashboard.window(days=0, now=NOW)


def test_route_shares_count_each_customer_message_once(store):
    bot = new_chat(store)
    quiet = new_chat(store)
    ask(store, quiet, "waiting for a person", when=at(28))  # no reply in its own chat: a person has it
    for route in ("template", "template", "answer", "fallback"):
        ask(store, bot, f"q {route}", when=at(27), route=route)
    ask(store, bot, "long ago", when=at(1), route="answer")  # outside the window
    person = new_chat(store)
    ask(store, person, "talk to someone", when=at(27), route="template", intent="human_agent")
    ask(store, person, "hello?", when=at(27))  # owned by a person: the bot stays quiet
    store.add_message(person, role="staff", text="Hi, Sam here", created_at=at(27))
    store.add_message(person, role="bot", text="Back to the bot", route="handback", created_at=at(27))
    ask(store, person, "thanks", when=at(27), route="template")
    button = new_chat(store)  # the "talk to a person" button with nothing asked yet
    store.add_message(button, role="customer", text="(asked for a person)", created_at=at(28))
    store.add_message(button, role="bot", text="A person will reply", route="handoff", created_at=at(28))
    table = dashboard.route_shares(store, days=7, now=NOW)
    assert table["route"].tolist() == ["template", "answer", "fallback", "person"]
    assert table["messages"].tolist() == [4, 1, 1, 3]
    assert table["share"].tolist() == pytest.approx([4 / 9, 1 / 9, 1 / 9, 3 / 9])


def test_ratings_count_the_window_only(store):
    cid = new_chat(store)
    for rating in (1, 1, -1, 0, None):
        ask(store, cid, "q", when=at(28), route="template", rating=rating)
    ask(store, cid, "old", when=at(2), route="template", rating=-1)
    assert dashboard.ratings(store, days=7, now=NOW) == {"likes": 2, "dislikes": 1, "like_ratio": pytest.approx(2 / 3)}
    liked = ask(store, cid, "q", when=at(28), route="answer")
    store.rate(cid, liked, 1)  # through the store's own rating path
    assert dashboard.ratings(store, days=7, now=NOW)["likes"] == 3


def test_top_intents_come_from_template_replies(store):
    cid = new_chat(store)
    for intent, times in (("returns", 2), ("order_status", 3), ("delivery", 2), ("greeting", 1)):
        for _ in range(times):
            ask(store, cid, "q", when=at(27), route="template", intent=intent)
    ask(store, cid, "q", when=at(27), route="answer", intent="greeting")  # an answer, not a template
    ask(store, cid, "q", when=at(27), route="fallback", intent="greeting")
    ask(store, cid, "q", when=at(3), route="template", intent="greeting")  # outside the window
    table = dashboard.top_intents(store, days=7, now=NOW, n=3)
    assert table.to_dict("list") == {"intent": ["order_status", "delivery", "returns"], "messages": [3, 2, 2]}
    assert dashboard.top_intents(store, days=7, now=NOW)["intent"].tolist()[-1] == "greeting"


def test_gap_messages_are_the_fallbacks_low_confidence_answers_and_dislikes_of_the_window(store):
    cid = new_chat(store)
    asked = {}
    for text, day, reason in [("mars?", 26, "fallback"), ("gift cards?", 27, "low_confidence"),
                              ("that was wrong", 27, "disliked"), ("a person please", 27, "human"),
                              ("mars again?", 1, "fallback"), ("where is my order", 27, None)]:
        asked[text] = store.add_message(cid, role="customer", text=text, created_at=at(day))
        if reason:
            store.flag_for_inbox(asked[text], reason=reason)
    found = store.gap_messages(*dashboard.window(days=7, now=NOW))
    assert [(m["text"], m["inbox"]) for m in found] == [
        ("mars?", "fallback"), ("gift cards?", "low_confidence"), ("that was wrong", "disliked")]


def test_gap_topics_are_shown_as_ranked_with_one_example_each():
    topics = [{"name": "mars_ship", "messages": 6, "growth": 4, "examples": ["to mars?", "mars"]},
              {"name": "gift_cards", "messages": 2, "growth": -2, "examples": ["gift cards?"]}]
    table = dashboard.gap_topics(topics)
    assert table.to_dict("list") == {"topic": ["mars_ship", "gift_cards"], "messages": [6, 2], "growth": [4, -2],
                                     "example": ["to mars?", "gift cards?"]}
    assert len(dashboard.gap_topics(topics, n=1)) == 1


def test_empty_store_gives_zeros(store):
    figures = dashboard.summary(store, days=30, now=NOW)
    assert figures["start"] == "2026-10-30" and figures["end"] == "2026-11-28"
    assert len(figures["messages_per_day"]) == 30 and figures["messages_per_day"]["messages"].sum() == 0
    assert figures["route_shares"]["messages"].tolist() == [0, 0, 0, 0]
    assert figures["route_shares"]["share"].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert figures["ratings"] == {"likes": 0, "dislikes": 0, "like_ratio": None}
    assert figures["top_intents"].empty and list(figures["top_intents"].columns) == ["intent", "messages"]
    assert figures["gap_topics"].empty and list(figures["gap_topics"].columns) == ["topic", "messages", "growth",
                                                                                  "example"]


def test_summary_agrees_with_each_figure(store):
    cid = new_chat(store)
    ask(store, cid, "where is my order", when=at(28), route="template", intent="order_status", rating=1)
    ask(store, cid, "mars?", when=at(22), route="fallback")
    figures = dashboard.summary(store, days=7, now=NOW)
    assert figures["messages_per_day"]["messages"].tolist() == [1, 0, 0, 0, 0, 0, 1]
    assert figures["route_shares"]["messages"].tolist() == [1, 0, 1, 0]
    assert figures["ratings"]["like_ratio"] == 1.0
    assert figures["top_intents"]["intent"].tolist() == ["order_status"]
    gaps = [{"name": "mars", "messages": 1, "growth": 1, "examples": ["mars?"]}]
    assert dashboard.summary(store, days=7, now=NOW, gaps=gaps)["gap_topics"]["topic"].tolist() == ["mars"]

"""The admin page's Dashboard tab: customer messages per day, how they were answered, the like
ratio, the busiest intents and the gap topics (what the bot could not answer), over the last 7, 30 or 90 days.

`dashboard_tab` builds the tab's components and its one event inside the current Blocks;
`dashboard_view` only arranges `csbot.web.dashboard.summary`'s figures for the page's components.
This module counts nothing itself: the store does, in SQL (store/stats.py), and csbot.web.dashboard
shapes the figures.
"""

from typing import TYPE_CHECKING

import gradio as gr
import pandas as pd

from csbot.language import Words
from csbot.web.common import guarded
from csbot.web.dashboard import summary
from csbot.web.format import percent

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts
    from csbot.service.engine import Engine

DAY_WINDOWS = [7, 30, 90]


def dashboard_view(figures: dict, words: Words) -> tuple:
    """dashboard.summary's figures as the page's (heading, per-day, routes, intents, ratings, unanswered).

    The plots keep summary's column names (their x and y); the unanswered table gets the page's headers.
    Example: {"start": "2026-11-22", "end": "2026-11-28", "ratings": {"likes": 3, "dislikes": 1,
              "like_ratio": 0.75}, ...}
             -> ("From 2026-11-22 to 2026-11-28 (UTC): ...", per-day frame with `day` as dates, ...,
                 "**Ratings of bot replies:** likes 3, dislikes 1, like ratio 75.0%", ...)
    """
    per_day = figures["messages_per_day"].assign(day=lambda d: pd.to_datetime(d["day"]))
    r = figures["ratings"]
    rating = words.say("admin.ratings", likes=r["likes"], dislikes=r["dislikes"],
                       ratio=words["admin.nobody_rated"] if r["like_ratio"] is None else percent(r["like_ratio"]))
    heading = words.say("admin.dashboard_heading", start=figures["start"], end=figures["end"],
                        messages=int(figures["messages_per_day"]["messages"].sum()))
    unanswered = figures["gap_topics"].set_axis(words["admin.unanswered_headers"], axis="columns")
    return heading, per_day, figures["route_shares"], figures["top_intents"], rating, unanswered


def dashboard_tab(page: gr.Blocks, *, engine: "Engine", accounts: "Accounts", words: Words) -> None:
    """Build the Dashboard tab and its event inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")
    store = engine.store
    w = words.__getitem__

    with gr.Tab(w("admin.dashboard_tab"), id="dashboard"):
        with gr.Row():
            days = gr.Radio(DAY_WINDOWS, value=30, label=w("admin.days"), scale=3)
            refresh_dashboard = gr.Button(w("admin.refresh"), scale=0)
        heading = gr.Markdown()
        with gr.Row():
            per_day = gr.LinePlot(x="day", y="messages", title=w("admin.per_day"), x_title=w("admin.axis_day"),
                                  y_title=w("admin.axis_messages"))
            routes = gr.BarPlot(x="route", y="messages", title=w("admin.routes"), x_title=w("admin.axis_route"),
                                y_title=w("admin.axis_messages"))
        with gr.Row():
            intents = gr.BarPlot(x="intent", y="messages", title=w("admin.top_intents"), x_label_angle=-30,
                                 x_title=w("admin.axis_intent"), y_title=w("admin.axis_messages"))
            with gr.Column():
                ratings = gr.Markdown()
                unanswered = gr.Dataframe(label=w("admin.unanswered"), interactive=False, wrap=True)

    @admin
    def refresh(days_value, request: gr.Request, *, user):
        window = int(days_value or 30)
        return dashboard_view(summary(store, days=window, gaps=engine.review.gaps(days=window)), words)

    gr.on([page.load, refresh_dashboard.click, days.change], refresh, days,
          [heading, per_day, routes, intents, ratings, unanswered], api_name="dashboard")

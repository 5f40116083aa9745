"""The staff page's Gaps tab: what customers asked that the bot could not answer, as topics.

The last 7, 30 or 90 days' fallbacks, low-confidence answers and disliked replies, grouped as
discovery groups history (service/review.py `gaps`), most messages first, then fastest growing.
Open a topic to read its messages, then answer the whole topic at once: one curated answer whose
phrasings are the topic's messages (scrubbed of personal data), live for the next customer; the
topic's open inbox items close as answered.

`gaps_tab` builds the tab's components and events inside the current Blocks; `topic_rows` only
formats. Its words are the `staff` section's.
"""

import gradio as gr

from csbot.language import Words
from csbot.web.common import as_text, guarded

DAY_WINDOWS = [7, 30, 90]


def topic_rows(topics: list[dict]) -> list[list[str]]:
    """Example: [{"name": "mars_ship", "messages": 6, "growth": 4, "open": 5, "examples": ["to mars?"]}]
             -> [["1", "mars_ship", "6", "+4", "5", "to mars?"]]"""
    return [[str(n), t["name"], str(t["messages"]), f"{t['growth']:+d}", str(t["open"]), t["examples"][0]]
            for n, t in enumerate(topics, start=1)]


def gaps_tab(page: gr.Blocks, *, engine, accounts, words: Words) -> None:
    """Build the Gaps tab and its events inside the current gr.Tabs."""
    staff = guarded(accounts, "staff")
    w = words.__getitem__

    with gr.Tab(w("staff.gaps_tab"), id="gaps") as tab:
        gr.Markdown(w("staff.gaps_help"))
        with gr.Row():
            days = gr.Radio(DAY_WINDOWS, value=30, label=w("staff.gap_days"), scale=3)
            refresh_btn = gr.Button(w("staff.refresh"), scale=0)
        topics = gr.State([])
        table = gr.Dataframe(headers=w("staff.gap_headers"), datatype="str", type="array", interactive=False,
                             wrap=True, label=w("staff.gap_topics"))
        chosen = gr.State([])  # the message ids of the topic opened
        shown = gr.Markdown()
        with gr.Row():
            key = gr.Textbox(label=w("staff.new_key"), max_lines=1)
            answer = gr.Textbox(label=w("staff.gap_answer"), lines=3)
        answer_btn = gr.Button(w("staff.answer_topic"), variant="primary")
        note = gr.Markdown()

    @staff
    def refresh(days_value, request: gr.Request, *, user):
        found = engine.review.gaps(days=int(days_value or 30))
        return found, topic_rows(found), [], ""

    @staff
    def open_topic(found, evt: gr.SelectData, request: gr.Request, *, user):
        row = evt.row_value if evt is not None else None
        if not row or not str(row[0]).isdigit() or int(row[0]) > len(found):
            raise gr.Error(w("staff.pick_row"))
        topic = found[int(row[0]) - 1]
        listed = "\n".join(f"- {as_text(text)}" for text in topic["examples"])
        return topic["ids"], words.say("staff.topic_shown", name=as_text(topic["name"]),
                                       messages=topic["messages"]) + "\n\n" + listed

    @staff
    def answer_topic(ids, key_value, answer_value, days_value, request: gr.Request, *, user):
        if not ids:
            raise gr.Error(w("staff.pick_topic_first"))
        engine.review.answer_topic(ids, key=key_value or "", answer=answer_value or "", actor=user)
        found = engine.review.gaps(days=int(days_value or 30))
        return found, topic_rows(found), [], "", words.say("staff.topic_answered", key=as_text(key_value),
                                                           count=len(ids))

    gr.on([tab.select, refresh_btn.click, days.change], refresh, days, [topics, table, chosen, shown],
          api_name="gaps")
    table.select(open_topic, topics, [chosen, shown], api_name="open_gap")
    answer_btn.click(answer_topic, [chosen, key, answer, days], [topics, table, chosen, shown, note],
                     api_name="answer_gap")

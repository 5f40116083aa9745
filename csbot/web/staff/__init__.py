"""The support staff's page: inbox, live conversations, curated answers, reply templates, log import,
intent discovery, gap topics.

Mounted at /staff behind Gradio's login. `build_staff` makes the Blocks and its tabs, one module per
tab (`inbox`, `live`, `answers`, `templates`, `imports`, `discover`, `gaps`), and wires the one event that crosses tabs:
the Inbox's "Take over", which claims the conversation and switches to the Live tab. Every event
handler is wrapped in `guarded(accounts, "staff")`, so each call, page loads and timer ticks
included, is checked on the server (hiding a tab protects nothing). A handler reads the inputs,
calls the engine (or the store for a read), and formats the result with pure helpers.

Customer text never renders as active content: tables use plain "str" cells, Markdown gets
`common.as_text`, the transcript goes through `chat.as_text` into a Chatbot with markdown and
tags off. Nothing is retrained here: a new or extended answer is live for the next customer at
once, labels and imported logs wait for the next training run (the admin page). This package does
not route messages, validate templates or parse CSV itself; the engine, reply book and importer do.

Every word the page shows comes from the `staff` section of the staff language's staff.yaml
(csbot/languages/<code>/, picked by the `staff_language` setting); customer text, intents, answer
keys and the engine's error messages show as they are.
"""

import gradio as gr

from csbot.language import Words
from csbot.web.common import guarded, page_header
from csbot.web.staff.answers import answers_tab
from csbot.web.staff.discover import discover_tab
from csbot.web.staff.gaps import gaps_tab
from csbot.web.staff.imports import imports_tab
from csbot.web.staff.inbox import chosen, inbox_tab
from csbot.web.staff.live import live_list, live_tab, shown
from csbot.web.staff.templates import templates_tab


def build_staff(engine, accounts) -> gr.Blocks:
    """The staff page for `engine`, every event open only to `accounts` with the staff role or higher."""
    store = engine.store
    staff = guarded(accounts, "staff")
    words = Words.load(engine.settings.staff_language)

    # Choices are also filled on every page load; these first ones let an API client that has not
    # loaded the page pass Gradio's check that a dropdown value is one of its choices.
    intents = list(store.intents())

    # uploads (support logs, raw history) are read once when picked: Gradio deletes its copies an
    # hour old, every hour, so the temp folder does not keep every file ever uploaded
    with gr.Blocks(title=words["staff.title"], delete_cache=(3600, 3600)) as page:
        page_header(words["staff.title"], words["staff.log_out"], words["staff.two_factor"])
        with gr.Tabs() as tabs:
            inbox = inbox_tab(page, engine=engine, accounts=accounts, intents=intents, words=words)
            live = live_tab(page, engine=engine, accounts=accounts, words=words)

            @staff
            def take_over(message_id, request: gr.Request, *, user):
                cid = chosen(store, message_id, words)["conversation_id"]
                engine.bot.take_over(cid, author=user)
                rows = live_list(store)
                return (gr.Tabs(selected="live"), rows, rows, cid, *shown(store, cid, words))

            inbox.takeover_btn.click(take_over, [inbox.item_id],
                                     [tabs, live.live_table, live.live_seen, live.conversation, live.log,
                                      live.shown_up_to], api_name="take_over")

            answers_tab(page, engine=engine, accounts=accounts, attach_to=inbox.attach_to, words=words)
            templates_tab(page, engine=engine, accounts=accounts, intents=intents, words=words)
            imports_tab(page, engine=engine, accounts=accounts, words=words)
            discover_tab(page, engine=engine, accounts=accounts, words=words)
            gaps_tab(page, engine=engine, accounts=accounts, words=words)
    return page

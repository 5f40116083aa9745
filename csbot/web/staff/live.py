"""The staff page's Live conversations tab: chats handed off to or taken over by a person, 25 a page,
polled every 3 s (one query for the page's rows, whatever the transcripts hold), with the transcript
of the one picked and a box to reply, take over, or hand back to the bot.

`live_tab` builds the tab's components and events inside the current Blocks; `live_list` and `shown`
are also used by the Inbox's "Take over" (wired in the package's `build_staff`). The transcript goes
through `chat.as_text` into a Chatbot with markdown and tags off, so customer text never runs. This
module does not decide who owns a conversation: the bot's take_over / staff_reply / hand_back do.
Its words are the `staff` section's; the owner and role in a row are the store's names, as stored.
"""

from typing import NamedTuple

import gradio as gr

from csbot.language import Words
from csbot.web.chat import as_text as chat_message
from csbot.web.common import guarded
from csbot.web.format import when


def live_rows(conversations: list[dict]) -> list[list[str]]:
    """One row per live conversation: who the customer is, who owns it, and its last message
    (store.live_conversations' rows).

    Example: live_rows([{"id": "c1", "owner": "human", "handoff_at": "2025-02-01T10:00:00", "staff": "sam",
                         "last_role": "customer", "last_text": "hi", "last_at": "2025-02-01T10:02"}])
             -> [["c1", "", "human (sam)", "2025-02-01 10:00", "customer: hi", "2025-02-01 10:02"]]
    """
    return [[c["id"], who(c),
             f"{c['owner']} ({c['staff']})" if c.get("staff") and c["owner"] == "human" else c["owner"],
             when(c.get("handoff_at")),
             f"{c['last_role']}: {c['last_text'][:120]}" if c.get("last_role") else "",
             when(c.get("last_at")) if c.get("last_role") else ""] for c in conversations]


def who(conversation: dict) -> str:
    """The customer as staff see them: the name the shop's server vouched for, marked verified;
    nothing for a customer nobody vouched for.

    Example: who({"customer_name": "Ada", "customer_email": "ada@example.com", "identity_verified_at": "…"})
             -> "Ada <ada@example.com> ✓"; who({}) -> ""
    """
    if not conversation.get("identity_verified_at"):
        return ""
    name = conversation.get("customer_name") or conversation.get("customer_id") or "?"  # the id: a token without a name
    return f"{name} <{conversation['customer_email']}> ✓" if conversation.get("customer_email") else f"{name} ✓"


def transcript(messages: list[dict], words: Words) -> list[dict]:
    """A conversation for the Chatbot: the customer on the right, bot, staff and system on the left.

    Example: transcript([{"role": "customer", "text": "<b>hi</b>"},
                         {"role": "staff", "author": "sam", "text": "Hello"}], Words.load("en"))
             -> [{"role": "user", "content": "&lt;b&gt;hi&lt;/b&gt;"},
                 {"role": "assistant", "content": "sam (staff): Hello"}]
    """
    out = []
    for m in messages:
        if m["role"] == "customer":
            out.append(chat_message("user", m["text"]))
        elif m["role"] == "staff":
            out.append(chat_message("assistant", words.say("staff.staff_says", text=m["text"],
                                                           author=m.get("author") or words["staff.staff_author"])))
        elif m["role"] == "system":
            out.append(chat_message("assistant", f"· {m['text']}"))
        else:
            out.append(chat_message("assistant", words.say("staff.bot_says", text=m["text"])))
    return out


PAGE = 25  # live conversations a page


def live_list(store, page: int = 1) -> list[list[str]]:
    """Page `page` of the live conversations table as it stands now."""
    page = max(1, int(page or 1))
    return live_rows(store.live_conversations(limit=PAGE, offset=(page - 1) * PAGE))


def shown(store, cid: str, words: Words) -> tuple[list[dict], int]:
    """Conversation `cid` for the Chatbot, and the id of its last message (0 if it has none)."""
    messages = store.messages(cid, last=500)  # bounded, however long a conversation grew
    return transcript(messages, words), (messages[-1]["id"] if messages else 0)


class LiveParts(NamedTuple):
    """The Live components the Inbox's "Take over" updates."""
    live_table: gr.Dataframe
    live_seen: gr.State
    conversation: gr.Textbox
    log: gr.Chatbot
    shown_up_to: gr.State


def live_tab(page: gr.Blocks, *, engine, accounts, words: Words) -> LiveParts:
    """Build the Live conversations tab and its events inside the current gr.Tabs."""
    store = engine.store
    staff = guarded(accounts, "staff")
    timed = guarded(accounts, "staff", renew=False)  # called by the timer too: not a user action

    with gr.Tab(words["staff.live_tab"], id="live") as tab:
        timer = gr.Timer(3)
        live_seen = gr.State(None)  # the rows last sent, so an unchanged list is not re-sent
        shown_up_to = gr.State(0)  # the last message id in the transcript shown
        with gr.Row():
            live_refresh = gr.Button(words["staff.refresh"], size="sm", scale=3)
            live_page = gr.Number(1, label=words["staff.inbox_page"], precision=0, minimum=1, scale=1)
        live_table = gr.Dataframe(headers=words["staff.live_headers"], datatype="str", type="array",
                                  interactive=False, wrap=True, max_height=240,
                                  column_widths=["18%", "16%", "10%", "12%", "32%", "12%"], label=words["staff.live_table"])
        conversation = gr.Textbox(label=words["staff.conversation"], interactive=False, max_lines=1)
        log = gr.Chatbot(label=words["staff.transcript"], height=420, render_markdown=False, sanitize_html=True,
                         allow_tags=False, feedback_options=None, buttons=["copy"])
        reply_box = gr.Textbox(label=words["staff.reply_box"], max_lines=6)
        with gr.Row():
            send_btn = gr.Button(words["staff.send"], variant="primary")
            join_btn = gr.Button(words["staff.take_over"])
            handback_btn = gr.Button(words["staff.hand_back"])

    @timed
    def live(seen, cid, page_no, up_to, request: gr.Request, *, user):
        # Polled every 3 s: one query for the page's rows (not the transcripts), and only what
        # changed is sent, so the page does not flicker or lose its scroll.
        rows = live_list(store, page_no)
        table = (gr.skip(), gr.skip()) if rows == seen else (rows, rows)
        if cid and store.messages_after(cid, int(up_to or 0)):
            return (*table, *shown(store, cid, words))
        return (*table, gr.skip(), gr.skip())

    @staff
    def open_conversation(evt: gr.SelectData, request: gr.Request, *, user):
        cid = evt.row_value[0]
        return (cid, *shown(store, cid, words))

    @staff
    def take_over_conversation(cid, page_no, request: gr.Request, *, user):
        engine.bot.take_over(cid, author=user)
        rows = live_list(store, page_no)
        return (rows, rows, *shown(store, cid, words))

    @staff
    def staff_reply(cid, text, page_no, request: gr.Request, *, user):
        engine.bot.staff_reply(cid, text, author=user)
        rows = live_list(store, page_no)
        return ("", rows, rows, *shown(store, cid, words))

    @staff
    def hand_back(cid, page_no, request: gr.Request, *, user):
        engine.bot.hand_back(cid, author=user)
        rows = live_list(store, page_no)
        return (rows, rows, *shown(store, cid, words))

    live_outputs = [live_table, live_seen, log, shown_up_to]
    gr.on([page.load, timer.tick, live_refresh.click, tab.select, live_page.submit], live,
          [live_seen, conversation, live_page, shown_up_to], live_outputs, api_name="live", show_progress="hidden")
    live_table.select(open_conversation, outputs=[conversation, log, shown_up_to], api_name="open_conversation")
    join_btn.click(take_over_conversation, [conversation, live_page], live_outputs, api_name="take_over_conversation")
    gr.on([send_btn.click, reply_box.submit], staff_reply, [conversation, reply_box, live_page],
          [reply_box, *live_outputs], api_name="staff_reply")
    handback_btn.click(hand_back, [conversation, live_page], live_outputs, api_name="hand_back")
    return LiveParts(live_table=live_table, live_seen=live_seen, conversation=conversation, log=log,
                     shown_up_to=shown_up_to)

"""The support staff's page: inbox, live conversations, curated answers, reply templates, log import.

Mounted at /staff behind Gradio's login. Every event handler is wrapped in `guarded(accounts,
"staff")`, so each call, page loads and timer ticks included, is checked on the server (hiding
a tab protects nothing). A handler reads the inputs, calls the engine (or the store for a read),
and formats the result with the pure helpers at the top of this module.

Customer text never renders as active content: tables use plain "str" cells, Markdown gets
`common.as_text`, the transcript goes through `chat.as_text` into a Chatbot with markdown and
tags off. Nothing is retrained here: a new or extended answer is live for the next customer at
once, labels and imported logs wait for the next training run (the admin page). This module does
not route messages, validate templates or parse CSV itself; the engine, reply book and importer do.
"""

import re
from collections import Counter
from pathlib import Path

import gradio as gr

from csbot.errors import DataError, TemplateError
from csbot.importer import read_logs
from csbot.ui.chat import as_text as chat_message
from csbot.ui.common import as_text, guarded

INBOX_HEADERS = ["id", "when (UTC)", "reason", "message", "route", "intent", "p", "top answer", "score",
                 "model"]
LIVE_HEADERS = ["conversation", "owner", "handed off (UTC)", "last message", "last at (UTC)"]
ANSWER_HEADERS = ["id", "key", "phrasings", "answer"]
IMPORT_HEADERS = ["text", "intent", "agent_reply", "created_at", "channel"]
COUNT_HEADERS = ["intent", "rows", "has templates"]
PICK = "Pick an item in the list to see its message, how the bot routed it, and what it replied."
PREVIEW_ROWS = 200


def when(stamp: str | None) -> str:
    """Example: when("2025-02-01T10:00:59.123+00:00") -> "2025-02-01 10:00"; when(None) -> "" """
    return (stamp or "")[:16].replace("T", " ")


def number(value: float | None) -> str:
    """Example: number(0.81234) -> "0.81"; number(None) -> "" """
    return "" if value is None else f"{value:.2f}"


def inbox_rows(items: list[dict], answer_keys: dict[int, str]) -> list[list[str]]:
    """One table row per inbox item (from store.inbox()); every cell is a plain string.

    Example: inbox_rows([{"id": 7, "created_at": "2025-02-01T10:00:00", "inbox": "fallback", "text": "hi",
             "reply_route": "fallback", "reply_trace": {"intent": "greeting", "confidence": 0.41,
             "hits": [{"answer_id": 2, "score": 0.31}], "model_version": "v1"}}], {2: "careers"})
             -> [["7", "2025-02-01 10:00", "fallback", "hi", "fallback", "greeting", "0.41", "careers", "0.31", "v1"]]
    """
    rows = []
    for item in items:
        trace = item.get("reply_trace") or {}
        top = (trace.get("hits") or [{}])[0]
        rows.append([str(item["id"]), when(item["created_at"]), item.get("inbox") or "", item["text"],
                     item.get("reply_route") or trace.get("route") or "", trace.get("intent") or "",
                     number(trace.get("confidence")),
                     answer_keys.get(top.get("answer_id"), "") if top else "", number(top.get("score")),
                     trace.get("model_version") or item.get("model_version_reply") or ""])
    return rows


def trace_markdown(item: dict, answer_keys: dict[int, str]) -> str:
    """An inbox item, its routing trace and the bot's reply as Markdown; every value escaped.

    Example: trace_markdown({"id": 7, "created_at": "2025-02-01T10:00", "inbox": "fallback",
             "text": "<b>hi</b>", "reply_text": None, "reply_trace": {}}, {})
             -> "**Message 7** · 2025-02-01 10:00 · fallback\\n\\n> &lt;b&gt;hi&lt;/b&gt;\\n\\n..."
    """
    t = item.get("reply_trace") or {}

    def e(value) -> str:
        return as_text("" if value is None else str(value))

    lines = [f"**Message {item['id']}** · {e(when(item['created_at']))} · {e(item.get('inbox'))}", "",
             f"> {e(item['text'])}", "",
             f"**Route:** {e(item.get('reply_route') or t.get('route') or 'none')} · "
             f"**intent:** {e(t.get('intent') or 'none')} (p {e(number(t.get('confidence')) or '-')}, "
             f"score {e(number(t.get('score')) or '-')}, threshold {e(number(t.get('threshold')) or '-')}, "
             f"accepted {e(t.get('accepted', '-'))}) · **model:** {e(t.get('model_version') or 'none')}", ""]
    hits = t.get("hits") or []
    lines.append("**Answer hits:**" if hits else "**Answer hits:** none")
    lines += [f"- {e(answer_keys.get(h.get('answer_id'), h.get('answer_id')))} · {e(number(h.get('score')))} · "
              f"matched “{e(h.get('text'))}”" for h in hits]
    if t.get("slots"):
        lines += ["", "**Slots:** " + ", ".join(f"{e(k)} = {e(v)}" for k, v in t["slots"].items())]
    reply = item.get("reply_text")
    lines += ["", f"**Bot replied:** {e(reply)}" if reply else "**Bot replied:** nothing (a person had the chat)"]
    return "\n".join(lines)


def suggest_key(text: str) -> str:
    """A starting key for a new answer. Example: suggest_key("Do you sell gift cards?") -> "do_you_sell_gift_cards" """
    return "_".join(re.findall(r"[a-z0-9]+", text.lower())[:6])[:64] or "answer"


def picked_id(evt) -> int:
    """The id in the first cell of the clicked table row, or a DataError saying to pick a row.

    Example: a click on the row ["42", "2026-11-28 10:00", ...] -> 42; a click on an empty table -> DataError
    """
    try:
        return int(evt.row_value[0])
    except (TypeError, ValueError, IndexError):
        raise DataError("pick a row of the table (that one has no id)") from None


def live_rows(conversations: list[dict], transcripts: dict[str, list[dict]]) -> list[list[str]]:
    """One row per live conversation with its last message.

    Example: live_rows([{"id": "c1", "owner": "human", "handoff_at": "2025-02-01T10:00:00"}],
             {"c1": [{"role": "system", "author": "sam", "text": "sam joined", "created_at": "2025-02-01T10:01"},
                     {"role": "customer", "author": None, "text": "hi", "created_at": "2025-02-01T10:02"}]})
             -> [["c1", "human (sam)", "2025-02-01 10:00", "customer: hi", "2025-02-01 10:02"]]
    """
    rows = []
    for c in conversations:
        messages = transcripts.get(c["id"]) or []
        staff = next((m["author"] for m in reversed(messages) if m.get("author")), None)
        last = messages[-1] if messages else None
        rows.append([c["id"], f"{c['owner']} ({staff})" if staff and c["owner"] == "human" else c["owner"],
                     when(c.get("handoff_at")), f"{last['role']}: {last['text'][:120]}" if last else "",
                     when(last["created_at"]) if last else ""])
    return rows


def transcript(messages: list[dict]) -> list[dict]:
    """A conversation for the Chatbot: the customer on the right, bot, staff and system on the left.

    Example: transcript([{"role": "customer", "text": "<b>hi</b>"},
                         {"role": "staff", "author": "sam", "text": "Hello"}])
             -> [{"role": "user", "content": "&lt;b&gt;hi&lt;/b&gt;"},
                 {"role": "assistant", "content": "sam (staff): Hello"}]
    """
    out = []
    for m in messages:
        if m["role"] == "customer":
            out.append(chat_message("user", m["text"]))
        elif m["role"] == "staff":
            out.append(chat_message("assistant", f"{m.get('author') or 'staff'} (staff): {m['text']}"))
        elif m["role"] == "system":
            out.append(chat_message("assistant", f"· {m['text']}"))
        else:
            out.append(chat_message("assistant", f"bot: {m['text']}"))
    return out


def answer_rows(answers: list[dict], query: str = "") -> list[list[str]]:
    """Answers whose key, text or a phrasing contains `query` (any case).

    Example: answer_rows([{"id": 1, "key": "gift_wrapping", "questions": ["Do you gift wrap?"],
                           "answer": "Yes."}], "WRAP")
             -> [["1", "gift_wrapping", "Do you gift wrap?", "Yes."]]
    """
    needle = (query or "").strip().lower()
    return [[str(a["id"]), a["key"], " | ".join(a["questions"]), a["answer"]] for a in answers
            if needle in "\n".join([a["key"], a["answer"], *a["questions"]]).lower()]


def lines(text: str | None) -> list[str]:
    """Example: lines(" a \\n\\n b") -> ["a", "b"]"""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def preview_markdown(book, intent: str, variants: list[str]) -> str:
    """Each variant rendered on sample values, or why it cannot be (a numbered Markdown list, escaped).

    Example: preview_markdown(book, "greeting", ["Hi from {shop_name}", "Hi {nope}"])
             -> "1. Hi from Test Shop\\n2. ✗ unknown slot {nope}; known slots: ..."
    """
    if not variants:
        return "No variants yet: write one per line."
    out = []
    for number_, variant in enumerate(variants, start=1):
        try:
            out.append(f"{number_}. {as_text(book.preview(variant, intent))}")
        except TemplateError as exc:  # preview checks one variant at a time, so it always says "variant 1"
            reason = str(exc).partition(", variant 1: ")[2] or str(exc)
            out.append(f"{number_}. ✗ {as_text(reason)}")
    return "\n".join(out)


def import_summary(rows: list[dict], intents: dict[str, str]) -> tuple[list[list[str]], list[list[str]]]:
    """The preview of a clean log: its first rows and how many rows each intent has.

    Example: import_summary([{"text": "hi", "intent": "greeting", "agent_reply": None, "created_at": None,
             "channel": "chat"}], {"greeting": "Hello."})
             -> ([["hi", "greeting", "", "", "chat"]], [["greeting", "1", "yes"]])
    """
    shown = [[r.get(k) or "" for k in IMPORT_HEADERS] for r in rows[:PREVIEW_ROWS]]
    counts = Counter(r["intent"] for r in rows)
    return shown, [[intent, str(n), "yes" if intent in intents else "no: add templates before the bot can reply"]
                   for intent, n in counts.most_common()]


def problems_markdown(exc: DataError, path: str) -> str:
    """A refused file's problems as an escaped Markdown list, naming the upload rather than its temp path.

    Example: problems_markdown(DataError("/tmp/x/log.csv: 1 problem(s)...", problems=["line 3: text is empty"]),
             "/tmp/x/log.csv") -> "**log.csv: 1 problem(s)...**\\n\\n- line 3: text is empty"
    """
    headline = str(exc).split("\n")[0].replace(str(path), Path(path).name)
    return "\n".join([f"**{as_text(headline)}**", "", *(f"- {as_text(p)}" for p in exc.problems)])


def build_staff(engine, accounts) -> gr.Blocks:
    store = engine.store
    staff = guarded(accounts, "staff")

    def answer_keys() -> dict[int, str]:
        return {a["id"]: a["key"] for a in store.answers()}

    def answer_choices() -> list[tuple[str, int]]:
        return [(key, answer) for answer, key in answer_keys().items()]

    # Choices are also filled on every page load; these first ones let an API client that has not
    # loaded the page pass Gradio's check that a dropdown value is one of its choices.
    intents = list(store.intents())

    with gr.Blocks(title="csbot · staff") as page:
        gr.Markdown("## csbot · staff")
        with gr.Tabs() as tabs:
            # --- inbox ------------------------------------------------------------------------
            with gr.Tab("Inbox", id="inbox"):
                inbox_refresh = gr.Button("Refresh", size="sm")
                inbox_table = gr.Dataframe(headers=INBOX_HEADERS, datatype="str", type="array", interactive=False,
                                           wrap=True, max_height=360, label="Open items, newest first",
                                           column_widths=["5%", "11%", "9%", "30%", "7%", "9%", "5%", "11%",
                                                          "6%", "7%"])
                with gr.Row():
                    with gr.Column(scale=3):
                        item_id = gr.Number(label="Message", precision=0, interactive=False)
                        item_detail = gr.Markdown(PICK)
                    with gr.Column(scale=2):
                        with gr.Row():
                            label_intent = gr.Dropdown(choices=intents, value=None, scale=3,
                                                       label="Intent (the model's guess preselected)")
                            label_btn = gr.Button("Label", scale=1)
                        with gr.Row():
                            attach_to = gr.Dropdown(choices=answer_choices(), value=None, scale=3,
                                                    label="Existing answer (the top hit preselected)")
                            attach_btn = gr.Button("Attach to answer", scale=1)
                        new_key = gr.Textbox(label="New answer key", max_lines=1)
                        new_text = gr.Textbox(label="New answer text (the message becomes its first phrasing)",
                                              lines=3)
                        new_btn = gr.Button("Save as a new answer", variant="primary")
                        with gr.Row():
                            takeover_btn = gr.Button("Take over the conversation")
                            dismiss_btn = gr.Button("Dismiss", variant="stop")

            # --- live conversations -----------------------------------------------------------
            with gr.Tab("Live conversations", id="live") as live_tab:
                timer = gr.Timer(3)
                live_seen = gr.State(None)  # the rows last sent, so an unchanged list is not re-sent
                shown_up_to = gr.State(0)  # the last message id in the transcript shown
                live_refresh = gr.Button("Refresh", size="sm")
                live_table = gr.Dataframe(headers=LIVE_HEADERS, datatype="str", type="array", interactive=False,
                                          wrap=True, max_height=240, column_widths=["26%", "12%", "14%", "34%", "14%"],
                                          label="Handed off or taken over, most recent first")
                conversation = gr.Textbox(label="Conversation", interactive=False, max_lines=1)
                log = gr.Chatbot(label="Transcript", height=420, render_markdown=False, sanitize_html=True,
                                 allow_tags=False, feedback_options=None, buttons=["copy"])
                reply_box = gr.Textbox(label="Your reply to the customer (sending takes the chat over)", max_lines=6)
                with gr.Row():
                    send_btn = gr.Button("Send", variant="primary")
                    join_btn = gr.Button("Take over")
                    handback_btn = gr.Button("Hand back to bot")

            # --- curated answers --------------------------------------------------------------
            with gr.Tab("Answers", id="answers") as answers_tab:
                with gr.Row():
                    with gr.Column(scale=3):
                        search = gr.Textbox(label="Search keys, answers and phrasings", max_lines=1)
                        answers_table = gr.Dataframe(headers=ANSWER_HEADERS, datatype="str", type="array",
                                                     interactive=False, wrap=True, label="Curated answers",
                                                     column_widths=["7%", "20%", "43%", "30%"])
                    with gr.Column(scale=2):
                        answer_id = gr.Number(label="Answer (empty: a new one)", precision=0, interactive=False)
                        answer_key = gr.Textbox(label="Key", max_lines=1)
                        answer_questions = gr.Textbox(label="Question phrasings, one per line", lines=4)
                        answer_text = gr.Textbox(label="Answer", lines=4)
                        with gr.Row():
                            save_btn = gr.Button("Save", variant="primary")
                            blank_btn = gr.Button("New")
                            delete_btn = gr.Button("Delete", variant="stop")
                        answer_status = gr.Markdown()

            # --- reply templates --------------------------------------------------------------
            with gr.Tab("Templates", id="templates") as templates_tab:
                template_intent = gr.Dropdown(choices=intents, value=None, label="Intent")
                template_about = gr.Markdown()
                variants = gr.Textbox(label="Reply variants, one per line ({order_id}, {shop_name}... fill in)",
                                      lines=6)
                gr.Markdown("**Preview on sample values**")
                template_preview = gr.Markdown()
                template_save = gr.Button("Save", variant="primary")
                template_status = gr.Markdown()

            # --- support-log import -----------------------------------------------------------
            with gr.Tab("Import", id="import"):
                gr.Markdown("A CSV with columns `text` and `intent` (or `category`); `agent_reply`, `created_at` "
                            "and `channel` optional. Imported rows are used from the next training run on.")
                upload = gr.File(label="Support log (.csv)", file_types=[".csv"], type="filepath",
                                 elem_id="log-upload")
                import_status = gr.Markdown()
                import_counts = gr.Dataframe(headers=COUNT_HEADERS, datatype="str", type="array",
                                             interactive=False, label="Rows per intent")
                import_rows = gr.Dataframe(headers=IMPORT_HEADERS, datatype="str", type="array", interactive=False,
                                           wrap=True, label=f"First {PREVIEW_ROWS} rows")
                import_btn = gr.Button("Import", variant="primary", interactive=False)
                import_result = gr.Markdown()

        # === inbox events ===============================================================
        def inbox_view(note: str = PICK):
            keys = answer_keys()
            return (inbox_rows(store.inbox(), keys), None, note,
                    gr.Dropdown(choices=list(store.intents()), value=None),
                    gr.Dropdown(choices=[(k, i) for i, k in keys.items()], value=None), "", "")

        inbox_outputs = [inbox_table, item_id, item_detail, label_intent, attach_to, new_key, new_text]

        @staff
        def inbox(request: gr.Request, *, user):
            return inbox_view()

        @staff
        def open_item(evt: gr.SelectData, request: gr.Request, *, user):
            message_id = picked_id(evt)
            item = next((i for i in store.inbox() if i["id"] == message_id), None)
            if item is None:
                return inbox_view(f"Message {message_id} was handled meanwhile.")
            keys, trace = answer_keys(), item["reply_trace"]
            hits = trace.get("hits") or []
            return (gr.skip(), message_id, trace_markdown(item, keys),
                    trace.get("intent") if trace.get("intent") in store.intents() else None,
                    hits[0]["answer_id"] if hits and hits[0]["answer_id"] in keys else None,
                    suggest_key(item["text"]), "")

        def chosen(message_id) -> dict:
            message = store.message(int(message_id)) if message_id is not None else None
            if message is None:
                raise gr.Error("Pick an item in the inbox first.")
            return message

        @staff
        def label(message_id, intent, request: gr.Request, *, user):
            if not intent:
                raise gr.Error("Pick the intent this message is about.")
            engine.label(chosen(message_id)["id"], intent, author=user)
            return inbox_view(f"Labelled message {int(message_id)} as {as_text(intent)}: an example for the "
                              "next training run.")

        @staff
        def attach_answer(message_id, answer, request: gr.Request, *, user):
            if answer is None:
                raise gr.Error("Pick the answer this message should get.")
            if int(answer) not in answer_keys():
                raise gr.Error("That answer was deleted meanwhile; press Refresh and pick another.")
            message = chosen(message_id)
            engine.attach_question(int(answer), message["text"])
            store.set_inbox_status(message["id"], "answered")
            return inbox_view(f"Message {message['id']} is now a phrasing of that answer; the bot uses it at once.")

        @staff
        def new_answer(message_id, key, text, request: gr.Request, *, user):
            message = chosen(message_id)
            if any(a["key"] == (key or "").strip() for a in store.answers()):
                # save_answer would replace that answer's text and phrasings: refuse an accidental overwrite
                raise gr.Error(f"There is already an answer {key.strip()!r}: attach the message to it, "
                               "or choose another key.")
            engine.save_answer(key=key, questions=[message["text"]], answer=text)
            store.set_inbox_status(message["id"], "answered")
            return inbox_view(f"Saved answer {as_text(key.strip())}; the bot uses it for similar questions now.")

        @staff
        def dismiss(message_id, request: gr.Request, *, user):
            store.set_inbox_status(chosen(message_id)["id"], "dismissed")
            return inbox_view(f"Dismissed message {int(message_id)}.")

        gr.on([page.load, inbox_refresh.click], inbox, outputs=inbox_outputs, api_name="inbox")
        inbox_table.select(open_item, outputs=inbox_outputs, api_name="open_item")
        label_btn.click(label, [item_id, label_intent], inbox_outputs, api_name="label")
        attach_btn.click(attach_answer, [item_id, attach_to], inbox_outputs, api_name="attach_answer")
        new_btn.click(new_answer, [item_id, new_key, new_text], inbox_outputs, api_name="new_answer")
        dismiss_btn.click(dismiss, [item_id], inbox_outputs, api_name="dismiss")

        # === live conversations =========================================================
        def live_list() -> list[list[str]]:
            conversations = store.live_conversations()
            return live_rows(conversations, {c["id"]: store.messages(c["id"]) for c in conversations})

        def shown(cid: str) -> tuple[list[dict], int]:
            messages = store.messages(cid)
            return transcript(messages), (messages[-1]["id"] if messages else 0)

        @staff
        def live(seen, cid, up_to, request: gr.Request, *, user):
            # Polled every 3 s: send only what changed, so the page does not flicker or lose its scroll.
            rows = live_list()
            table = (gr.skip(), gr.skip()) if rows == seen else (rows, rows)
            if cid and store.messages_after(cid, int(up_to or 0)):
                return (*table, *shown(cid))
            return (*table, gr.skip(), gr.skip())

        @staff
        def open_conversation(evt: gr.SelectData, request: gr.Request, *, user):
            cid = evt.row_value[0]
            return (cid, *shown(cid))

        @staff
        def take_over(message_id, request: gr.Request, *, user):
            cid = chosen(message_id)["conversation_id"]
            engine.bot.take_over(cid, author=user)
            rows = live_list()
            return (gr.Tabs(selected="live"), rows, rows, cid, *shown(cid))

        @staff
        def take_over_conversation(cid, request: gr.Request, *, user):
            engine.bot.take_over(cid, author=user)
            rows = live_list()
            return (rows, rows, *shown(cid))

        @staff
        def staff_reply(cid, text, request: gr.Request, *, user):
            engine.bot.staff_reply(cid, text, author=user)
            rows = live_list()
            return ("", rows, rows, *shown(cid))

        @staff
        def hand_back(cid, request: gr.Request, *, user):
            engine.bot.hand_back(cid, author=user)
            rows = live_list()
            return (rows, rows, *shown(cid))

        live_outputs = [live_table, live_seen, log, shown_up_to]
        gr.on([page.load, timer.tick, live_refresh.click, live_tab.select], live,
              [live_seen, conversation, shown_up_to], live_outputs, api_name="live", show_progress="hidden")
        live_table.select(open_conversation, outputs=[conversation, log, shown_up_to], api_name="open_conversation")
        takeover_btn.click(take_over, [item_id], [tabs, *live_outputs[:2], conversation, log, shown_up_to],
                           api_name="take_over")
        join_btn.click(take_over_conversation, [conversation], live_outputs, api_name="take_over_conversation")
        gr.on([send_btn.click, reply_box.submit], staff_reply, [conversation, reply_box], [reply_box, *live_outputs],
              api_name="staff_reply")
        handback_btn.click(hand_back, [conversation], live_outputs, api_name="hand_back")

        # === curated answers ============================================================
        def editor(answer: dict | None, note: str = ""):
            if answer is None:  # a blank form: the key is editable only for a new answer
                return None, gr.Textbox(value="", interactive=True), "", "", note
            return (answer["id"], gr.Textbox(value=answer["key"], interactive=False),
                    "\n".join(q["question"] for q in store.questions(answer["id"])), answer["answer"], note)

        editor_outputs = [answer_id, answer_key, answer_questions, answer_text, answer_status]

        @staff
        def answers(query, request: gr.Request, *, user):
            return answer_rows(store.answers(), query)

        @staff
        def open_answer(evt: gr.SelectData, request: gr.Request, *, user):
            return editor(store.answer(picked_id(evt)))

        @staff
        def blank_answer(request: gr.Request, *, user):
            return editor(None)

        @staff
        def save_answer(current, key, questions, text, query, request: gr.Request, *, user):
            existing = {a["key"]: a["id"] for a in store.answers()}
            key = (key or "").strip()
            if current is None and key in existing:
                raise gr.Error(f"There is already an answer {key!r}: open it from the list to edit it.")
            if current is not None and existing.get(key) != int(current):
                raise gr.Error("An answer's key cannot change: make a new answer and delete this one.")
            saved = engine.save_answer(key=key, questions=lines(questions), answer=text)
            return (answer_rows(store.answers(), query), gr.Dropdown(choices=answer_choices()),
                    *editor(store.answer(saved), f"Saved {as_text(key)}; live for the next customer."))

        @staff
        def delete_answer(current, query, request: gr.Request, *, user):
            if current is None:
                raise gr.Error("Pick the answer to delete in the list first.")
            engine.delete_answer(int(current))
            return (answer_rows(store.answers(), query), gr.Dropdown(choices=answer_choices(), value=None),
                    *editor(None, f"Deleted answer {int(current)}."))

        gr.on([page.load, search.change, answers_tab.select], answers, [search], [answers_table], api_name="answers",
              trigger_mode="always_last", show_progress="hidden")
        answers_table.select(open_answer, outputs=editor_outputs, api_name="open_answer")
        blank_btn.click(blank_answer, outputs=editor_outputs, api_name="blank_answer")
        save_btn.click(save_answer, [answer_id, answer_key, answer_questions, answer_text, search],
                       [answers_table, attach_to, *editor_outputs], api_name="save_answer")
        delete_btn.click(delete_answer, [answer_id, search], [answers_table, attach_to, *editor_outputs],
                         api_name="delete_answer")

        # === templates ==================================================================
        @staff
        def template_intents(request: gr.Request, *, user):
            return gr.Dropdown(choices=list(store.intents()))

        @staff
        def templates(intent, request: gr.Request, *, user):
            if not intent:
                return "", "", ""
            return (as_text(store.intents().get(intent, "")), "\n".join(store.templates().get(intent, [])), "")

        @staff
        def preview_template(intent, text, request: gr.Request, *, user):
            return preview_markdown(engine.reply_book(), intent or "preview", lines(text)) if intent else ""

        @staff
        def save_templates(intent, text, request: gr.Request, *, user):
            if not intent:
                raise gr.Error("Pick an intent first.")
            engine.set_templates(intent, lines(text))
            return f"Saved {len(lines(text))} variant(s) for {as_text(intent)}; the bot uses them now."

        gr.on([page.load, templates_tab.select], template_intents, outputs=[template_intent],
              api_name="template_intents", show_progress="hidden")
        template_intent.change(templates, [template_intent], [template_about, variants, template_status],
                               api_name="templates")
        variants.change(preview_template, [template_intent, variants], [template_preview],
                        api_name="preview_template", trigger_mode="always_last", show_progress="hidden")
        template_save.click(save_templates, [template_intent, variants], [template_status],
                            api_name="save_templates")

        # === import =====================================================================
        @staff
        def import_preview(path, request: gr.Request, *, user):
            nothing = gr.Button(interactive=False)
            if not path:
                return "", [], [], nothing, ""
            try:
                rows = read_logs(Path(path))
            except DataError as exc:
                return problems_markdown(exc, path), [], [], nothing, ""
            shown_rows, counts = import_summary(rows, store.intents())
            return (f"**{as_text(Path(path).name)}: {len(rows)} rows, no problems.** Press Import to store them.",
                    counts, shown_rows, gr.Button(interactive=True), "")

        @staff
        def import_logs(path, request: gr.Request, *, user):
            if not path:
                raise gr.Error("Upload a support-log CSV first.")
            result = engine.import_logs(Path(path))  # validates again: the API can skip the preview
            return (f"Imported {result['rows']} rows: {result['new']} new examples (the rest were already "
                    "stored). They are used from the next training run on.")

        upload.change(import_preview, [upload], [import_status, import_counts, import_rows, import_btn, import_result],
                      api_name="import_preview")
        import_btn.click(import_logs, [upload], [import_result], api_name="import_logs")
    return page

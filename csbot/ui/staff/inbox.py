"""The staff page's Inbox tab: messages the bot could not handle well, each with how it was routed,
and the four ways to clear one (label it, attach it to an answer, make it a new answer, dismiss it).

`inbox_tab` builds the tab's components and events inside the current Blocks; its "Take over"
button is wired in the package's `build_staff`, since it switches to the Live tab. A label waits
for the next training run; an attached or new answer is live at once. This module does not route
messages or store anything itself: the engine and the store do.
"""

import re
from typing import NamedTuple

import gradio as gr

from csbot.ui.common import as_text, guarded
from csbot.ui.staff.answers import answer_choices, answer_keys
from csbot.ui.staff.format import number, picked_id, when

INBOX_HEADERS = ["id", "when (UTC)", "reason", "message", "route", "intent", "why", "top answer", "score",
                 "model"]
PICK = "Pick an item in the list to see its message, how the bot routed it, and what it replied."


def inbox_rows(items: list[dict], answer_keys: dict[int, str]) -> list[list[str]]:
    """One table row per inbox item (from store.inbox()); every cell is a plain string.

    Example: inbox_rows([{"id": 7, "created_at": "2025-02-01T10:00:00", "inbox": "fallback", "text": "hi",
             "reply_route": "fallback", "reply_trace": {"intent": "greeting", "confidence": 0.41,
             "hits": [{"answer_id": 2, "score": 0.31}], "model_version": "v1"}}], {2: "careers"})
             -> [["7", "2025-02-01 10:00", "fallback", "hi", "fallback", "greeting", "", "careers", "0.31", "v1"]]
    """
    rows = []
    for item in items:
        trace = item.get("reply_trace") or {}
        top = (trace.get("hits") or [{}])[0]
        rows.append([str(item["id"]), when(item["created_at"]), item.get("inbox") or "", item["text"],
                     item.get("reply_route") or trace.get("route") or "", trace.get("intent") or "",
                     why(trace, short=True) if trace.get("score") is not None else "",
                     answer_keys.get(top.get("answer_id"), "") if top else "", number(top.get("score")),
                     trace.get("model_version") or item.get("model_version_reply") or ""])
    return rows


def why(trace: dict, *, short: bool = False) -> str:
    """Why the intent model did or did not answer, in words, from a reply's trace: the acceptance
    score against the version's threshold, and which part of the score fell short. The score adds
    the log-probability of the intent and the similarity to the nearest training messages
    (intents.py), so a declined message with a high probability was declined for being unlike
    what the model was trained on, and one with a low probability for the model being unsure.
    `short` is the inbox table's cell.

    Example: why({"intent": "order_status", "confidence": 1.0, "score": 2.3, "threshold": 3.4,
                  "accepted": False, "similarity": 0.46}, short=True)
             -> "score 2.30 < threshold 3.40: unlike its training messages"
    """
    if trace.get("score") is None or trace.get("threshold") is None:
        return "no intent model" if short else "No intent model was serving, so only the curated answers were searched."
    score, threshold, confidence = trace["score"], trace["threshold"], trace.get("confidence") or 0.0
    similarity = trace.get("similarity")
    close = "" if similarity is None else f", similarity to its training messages {similarity:.2f}"
    if trace.get("accepted"):
        if short:
            return f"accepted: score {score:.2f} ≥ threshold {threshold:.2f}"
        return (f"The intent model accepted {trace.get('intent')}: its acceptance score {score:.2f} reached the "
                f"threshold {threshold:.2f} (probability {confidence:.2f}{close}).")
    if confidence >= 0.9 and similarity is not None:
        reason, detail = "unlike its training messages", (f"the model was sure of the intent (probability "
                                                          f"{confidence:.2f}), but the message is unlike the "
                                                          f"messages it was trained on (similarity {similarity:.2f})")
    elif confidence < 0.5 or similarity is None:
        reason, detail = "unsure between intents", f"the model was unsure between intents (probability {confidence:.2f}{close})"
    else:
        reason, detail = "unsure and unlike its training messages", (
            f"the model was neither sure enough (probability {confidence:.2f}) nor close enough to the messages "
            f"it was trained on (similarity {similarity:.2f})")
    if short:
        return f"score {score:.2f} < threshold {threshold:.2f}: {reason}"
    words = [f"The intent model declined: its best guess {trace.get('intent')} scored {score:.2f}, below the "
             f"threshold {threshold:.2f} of this version's operating point; {detail}."]
    hits, needed = trace.get("hits") or [], trace.get("answer_threshold")
    if hits and needed is not None and hits[0].get("score") is not None:
        best = hits[0]["score"]
        words.append(f"The best curated answer matched {best:.2f}; " +
                     (f"it needed {needed:.2f}, so the bot fell back." if best < needed else
                      f"that reached {needed:.2f}, so it answered."))
    return " ".join(words)


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
             f"accepted {e(t.get('accepted', '-'))}) · **model:** {e(t.get('model_version') or 'none')}", "",
             f"**Why:** {e(why(t))}", ""]
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


def chosen(store, message_id) -> dict:
    """The stored message whose id the inbox shows as picked, or a gr.Error asking to pick one."""
    message = store.message(int(message_id)) if message_id is not None else None
    if message is None:
        raise gr.Error("Pick an item in the inbox first.")
    return message


class InboxParts(NamedTuple):
    """The Inbox components other tabs' events read or update."""
    item_id: gr.Number
    attach_to: gr.Dropdown
    takeover_btn: gr.Button


def inbox_tab(page: gr.Blocks, *, engine, accounts, intents: list[str]) -> InboxParts:
    """Build the Inbox tab and its events inside the current gr.Tabs; `intents` are the first choices."""
    store = engine.store
    staff = guarded(accounts, "staff")

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
                    attach_to = gr.Dropdown(choices=answer_choices(store), value=None, scale=3,
                                            label="Existing answer (the top hit preselected)")
                    attach_btn = gr.Button("Attach to answer", scale=1)
                new_key = gr.Textbox(label="New answer key", max_lines=1)
                new_text = gr.Textbox(label="New answer text (the message becomes its first phrasing)",
                                      lines=3)
                new_btn = gr.Button("Save as a new answer", variant="primary")
                with gr.Row():
                    takeover_btn = gr.Button("Take over the conversation")
                    dismiss_btn = gr.Button("Dismiss", variant="stop")

    def inbox_view(note: str = PICK):
        keys = answer_keys(store)
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
        keys, trace = answer_keys(store), item["reply_trace"]
        hits = trace.get("hits") or []
        return (gr.skip(), message_id, trace_markdown(item, keys),
                trace.get("intent") if trace.get("intent") in store.intents() else None,
                hits[0]["answer_id"] if hits and hits[0]["answer_id"] in keys else None,
                suggest_key(item["text"]), "")

    @staff
    def label(message_id, intent, request: gr.Request, *, user):
        if not intent:
            raise gr.Error("Pick the intent this message is about.")
        engine.label(chosen(store, message_id)["id"], intent, author=user)
        return inbox_view(f"Labelled message {int(message_id)} as {as_text(intent)}: an example for the "
                          "next training run.")

    @staff
    def attach_answer(message_id, answer, request: gr.Request, *, user):
        if answer is None:
            raise gr.Error("Pick the answer this message should get.")
        if int(answer) not in answer_keys(store):
            raise gr.Error("That answer was deleted meanwhile; press Refresh and pick another.")
        message = chosen(store, message_id)
        engine.answer_inbox_item(message["id"], answer_id=int(answer), actor=user)
        return inbox_view(f"Message {message['id']} is now a phrasing of that answer; the bot uses it at once.")

    @staff
    def new_answer(message_id, key, text, request: gr.Request, *, user):
        message = chosen(store, message_id)
        engine.answer_inbox_item(message["id"], key=key, text=text, actor=user)  # never overwrites an answer
        return inbox_view(f"Saved answer {as_text(key.strip())}; the bot uses it for similar questions now.")

    @staff
    def dismiss(message_id, request: gr.Request, *, user):
        engine.dismiss(chosen(store, message_id)["id"], actor=user)
        return inbox_view(f"Dismissed message {int(message_id)}.")

    gr.on([page.load, inbox_refresh.click], inbox, outputs=inbox_outputs, api_name="inbox")
    inbox_table.select(open_item, outputs=inbox_outputs, api_name="open_item")
    label_btn.click(label, [item_id, label_intent], inbox_outputs, api_name="label")
    attach_btn.click(attach_answer, [item_id, attach_to], inbox_outputs, api_name="attach_answer")
    new_btn.click(new_answer, [item_id, new_key, new_text], inbox_outputs, api_name="new_answer")
    dismiss_btn.click(dismiss, [item_id], inbox_outputs, api_name="dismiss")
    return InboxParts(item_id=item_id, attach_to=attach_to, takeover_btn=takeover_btn)

"""The staff page's Inbox tab: messages the bot could not handle well, each with how it was routed,
and the ways to clear one (label it, attach it to an answer, make it a new answer, dismiss it, or
dismiss everything its sender sent), and to confirm that the curated answer the bot gave it was
wrong (a customer's thumbs-down: that answer is never given for such a wording again). One line an item, 25 a page, filtered by reason; senders with
the fewest open items first (store.inbox), so one address's flood of requests for a person sinks
below a real customer's.

`inbox_tab` builds the tab's components and events inside the current Blocks; its "Take over"
button is wired in the package's `build_staff`, since it switches to the Live tab. A label waits
for the next training run; an attached or new answer is live at once. This module does not route
messages or store anything itself: the engine and the store do. Its words, `why`'s included, are
the `staff` section's; the pure helpers speak English when they are given none.
"""

import re
from typing import NamedTuple

import gradio as gr

from csbot.language import Words
from csbot.web.common import as_text, guarded
from csbot.web.format import number, picked_id, when
from csbot.web.staff.answers import answer_choices, answer_keys

PAGE = 25  # inbox items a page: a dozen or more on one screen, one line each
REASONS = ("fallback", "low_confidence", "disliked", "asked_for_person", "human", "error", "template_error")


def inbox_rows(items: list[dict], answer_keys: dict[int, str]) -> list[list[str]]:
    """One one-line table row per inbox item (from store.inbox()); every cell is a plain string. Why
    the model declined, the route and the reply are in the item's detail view, not the table.

    Example: inbox_rows([{"id": 7, "created_at": "2025-02-01T10:00:00", "inbox": "fallback", "text": "hi",
             "sender_items": 1, "reply_trace": {"intent": "greeting", "confidence": 0.41,
             "hits": [{"answer_id": 2, "score": 0.31}]}}], {2: "careers"})
             -> [["7", "2025-02-01 10:00", "fallback", "hi", "greeting", "careers", "0.31", "1"]]
    """
    rows = []
    for item in items:
        trace = item.get("reply_trace") or {}
        top = (trace.get("hits") or [{}])[0]
        rows.append([str(item["id"]), when(item["created_at"]), item.get("inbox") or "", item["text"],
                     trace.get("intent") or "", answer_keys.get(top.get("answer_id"), "") if top else "",
                     number(top.get("score")), str(item.get("sender_items") or 1)])
    return rows


def why(trace: dict, *, words: Words | None = None) -> str:
    """Why the intent model did or did not answer, in words, from a reply's trace: the acceptance
    score against the version's threshold, and which part of the score fell short. The score adds
    the log-probability of the intent and the similarity to the nearest training messages
    (intents.py), so a declined message with a high probability was declined for being unlike
    what the model was trained on, and one with a low probability for the model being unsure.
    `words` is the language it is said in (English if none). The inbox shows it in an item's detail.

    Example: why({"intent": "order_status", "confidence": 1.0, "score": 2.3, "threshold": 3.4,
                  "accepted": False, "similarity": 0.46})
             -> "The intent model declined: its best guess order_status scored 2.30, below the threshold
                 3.40 of this version's operating point; the model was sure of the intent (probability
                 1.00), but the message is unlike the messages it was trained on (similarity 0.46)."
    """
    words = words or Words.load("en")
    if trace.get("score") is None or trace.get("threshold") is None:
        return words["staff.why_no_model"]
    confidence, similarity = trace.get("confidence") or 0.0, trace.get("similarity")
    values = {"intent": trace.get("intent"), "score": f"{trace['score']:.2f}",
              "threshold": f"{trace['threshold']:.2f}", "confidence": f"{confidence:.2f}",
              "similarity": "" if similarity is None else f"{similarity:.2f}"}
    values["close"] = "" if similarity is None else words.say("staff.why_close", **values)
    if trace.get("accepted"):
        return words.say("staff.why_accepted", **values)
    if confidence >= 0.9 and similarity is not None:
        kind = "unlike"  # sure of the intent: the similarity is what fell short
    elif confidence < 0.5 or similarity is None:
        kind = "unsure"
    else:
        kind = "both"
    text = words.say("staff.why_declined", detail=words.say(f"staff.why_{kind}_detail", **values), **values)
    hits, needed = trace.get("hits") or [], trace.get("answer_threshold")
    if hits and needed is not None and hits[0].get("score") is not None:
        best = hits[0]["score"]
        text += words.say("staff.why_fell_back" if best < needed else "staff.why_answered",
                          best=f"{best:.2f}", needed=f"{needed:.2f}")
    return text


def trace_markdown(item: dict, answer_keys: dict[int, str], words: Words | None = None) -> str:
    """An inbox item, its routing trace and the bot's reply as Markdown; every value escaped.

    Example: trace_markdown({"id": 7, "created_at": "2025-02-01T10:00", "inbox": "fallback",
             "text": "<b>hi</b>", "reply_text": None, "reply_trace": {}}, {})
             -> "**Message 7** · 2025-02-01 10:00 · fallback\\n\\n> &lt;b&gt;hi&lt;/b&gt;\\n\\n..."
    """
    words = words or Words.load("en")
    t = item.get("reply_trace") or {}
    none = words["staff.none"]

    def e(value) -> str:
        return as_text("" if value is None else str(value))

    lines = [words.say("staff.detail_head", id=item["id"], when=e(when(item["created_at"])),
                       inbox=e(item.get("inbox"))), "", f"> {e(item['text'])}", "",
             words.say("staff.detail_route", route=e(item.get("reply_route") or t.get("route") or none),
                       intent=e(t.get("intent") or none), confidence=e(number(t.get("confidence")) or "-"),
                       score=e(number(t.get("score")) or "-"), threshold=e(number(t.get("threshold")) or "-"),
                       accepted=e(t.get("accepted", "-")), model=e(t.get("model_version") or none)), "",
             words.say("staff.detail_why", why=e(why(t, words=words))), ""]
    hits = t.get("hits") or []
    lines.append(words["staff.detail_hits" if hits else "staff.detail_no_hits"])
    lines += [words.say("staff.detail_hit", answer=e(answer_keys.get(h.get("answer_id"), h.get("answer_id"))),
                        score=e(number(h.get("score"))), text=e(h.get("text"))) for h in hits]
    if t.get("slots"):
        slots = ", ".join(f"{e(k)} = {e(v)}" for k, v in t["slots"].items())
        lines += ["", words.say("staff.detail_slots", slots=slots)]
    reply = item.get("reply_text")
    lines += ["", words.say("staff.detail_reply", reply=e(reply)) if reply else words["staff.detail_no_reply"]]
    return "\n".join(lines)


def suggest_key(text: str) -> str:
    """A starting key for a new answer. Example: suggest_key("Do you sell gift cards?") -> "do_you_sell_gift_cards" """
    return "_".join(re.findall(r"[a-z0-9]+", text.lower())[:6])[:64] or "answer"


def chosen(store, message_id, words: Words) -> dict:
    """The stored message whose id the inbox shows as picked, or a gr.Error asking (in `words`) to pick one."""
    message = store.message(int(message_id)) if message_id is not None else None
    if message is None:
        raise gr.Error(words["staff.pick_item"])
    return message


class InboxParts(NamedTuple):
    """The Inbox components other tabs' events read or update."""
    item_id: gr.Number
    attach_to: gr.Dropdown
    takeover_btn: gr.Button


def inbox_tab(page: gr.Blocks, *, engine, accounts, intents: list[str], words: Words) -> InboxParts:
    """Build the Inbox tab and its events inside the current gr.Tabs; `intents` are the first choices."""
    store = engine.store
    staff = guarded(accounts, "staff")

    pick = words["staff.pick"]
    with gr.Tab(words["staff.inbox_tab"], id="inbox"):
        with gr.Row():
            reason = gr.Dropdown(choices=[(words["staff.inbox_all"], "")] + [(r, r) for r in REASONS], value="",
                                 label=words["staff.inbox_reason"], scale=2)
            page_no = gr.Number(1, label=words["staff.inbox_page"], precision=0, minimum=1, scale=1)
            inbox_refresh = gr.Button(words["staff.refresh"], size="sm", scale=0)
        inbox_table = gr.Dataframe(headers=words["staff.inbox_headers"], datatype="str", type="array",
                                   interactive=False, wrap=False, max_height=640, label=words["staff.inbox_table"],
                                   column_widths=["6%", "13%", "11%", "38%", "11%", "10%", "5%", "6%"])
        shown_page = gr.Markdown()
        with gr.Row():
            with gr.Column(scale=3):
                item_id = gr.Number(label=words["staff.message"], precision=0, interactive=False)
                item_detail = gr.Markdown(pick)
            with gr.Column(scale=2):
                with gr.Row():
                    label_intent = gr.Dropdown(choices=intents, value=None, scale=3,
                                               label=words["staff.label_intent"])
                    label_btn = gr.Button(words["staff.label"], scale=1)
                with gr.Row():
                    attach_to = gr.Dropdown(choices=answer_choices(store), value=None, scale=3,
                                            label=words["staff.attach_to"])
                    attach_btn = gr.Button(words["staff.attach"], scale=1)
                new_key = gr.Textbox(label=words["staff.new_key"], max_lines=1)
                new_text = gr.Textbox(label=words["staff.new_text"], lines=3)
                new_btn = gr.Button(words["staff.new_answer"], variant="primary")
                wrong_btn = gr.Button(words["staff.wrong_answer"])
                with gr.Row():
                    takeover_btn = gr.Button(words["staff.take_over_conversation"])
                    dismiss_btn = gr.Button(words["staff.dismiss"], variant="stop")
                    dismiss_all_btn = gr.Button(words["staff.dismiss_sender"], variant="stop")

    def inbox_view(kind="", page=1, note: str = pick):
        keys, page = answer_keys(store), max(1, int(page or 1))
        first = (page - 1) * PAGE
        items = store.inbox(limit=PAGE, offset=first, reason=kind or None)
        where = (words.say("staff.inbox_shown", page=page, first=first + 1, last=first + len(items))
                 if items else words.say("staff.inbox_empty", page=page))
        return (inbox_rows(items, keys), where, None, note,
                gr.Dropdown(choices=list(store.intents()), value=None),
                gr.Dropdown(choices=[(k, i) for i, k in keys.items()], value=None), "", "")

    inbox_outputs = [inbox_table, shown_page, item_id, item_detail, label_intent, attach_to, new_key, new_text]
    listing = [reason, page_no]

    @staff
    def inbox(kind, page, request: gr.Request, *, user):
        return inbox_view(kind, page)

    @staff
    def open_item(kind, page, evt: gr.SelectData, request: gr.Request, *, user):
        message_id = picked_id(evt, words)
        item = next(iter(store.inbox(item=message_id, limit=1)), None)
        if item is None:
            return inbox_view(kind, page, words.say("staff.handled_meanwhile", id=message_id))
        keys, trace = answer_keys(store), item["reply_trace"]
        hits = trace.get("hits") or []
        return (gr.skip(), gr.skip(), message_id, trace_markdown(item, keys, words),
                trace.get("intent") if trace.get("intent") in store.intents() else None,
                hits[0]["answer_id"] if hits and hits[0]["answer_id"] in keys else None,
                suggest_key(item["text"]), "")

    @staff
    def label(message_id, intent, kind, page, request: gr.Request, *, user):
        if not intent:
            raise gr.Error(words["staff.pick_intent"])
        engine.label(chosen(store, message_id, words)["id"], intent, author=user)
        return inbox_view(kind, page, words.say("staff.labelled", id=int(message_id), intent=as_text(intent)))

    @staff
    def attach_answer(message_id, answer, kind, page, request: gr.Request, *, user):
        if answer is None:
            raise gr.Error(words["staff.pick_answer"])
        if int(answer) not in answer_keys(store):
            raise gr.Error(words["staff.answer_gone"])
        message = chosen(store, message_id, words)
        engine.answer_inbox_item(message["id"], answer_id=int(answer), actor=user)
        return inbox_view(kind, page, words.say("staff.attached", id=message["id"]))

    @staff
    def new_answer(message_id, key, text, kind, page, request: gr.Request, *, user):
        message = chosen(store, message_id, words)
        engine.answer_inbox_item(message["id"], key=key, text=text, actor=user)  # never overwrites an answer
        return inbox_view(kind, page, words.say("staff.saved_new_answer", answer=as_text(key.strip())))

    @staff
    def wrong_answer(message_id, kind, page, request: gr.Request, *, user):
        message = chosen(store, message_id, words)
        answer = engine.reject_answer(message["id"], actor=user)
        return inbox_view(kind, page, words.say("staff.marked_wrong", id=message["id"], answer=as_text(answer["key"])))

    @staff
    def dismiss(message_id, kind, page, request: gr.Request, *, user):
        engine.dismiss(chosen(store, message_id, words)["id"], actor=user)
        return inbox_view(kind, page, words.say("staff.dismissed", id=int(message_id)))

    @staff
    def dismiss_sender(message_id, kind, page, request: gr.Request, *, user):
        count = engine.dismiss_sender(chosen(store, message_id, words)["id"], actor=user)
        return inbox_view(kind, page, words.say("staff.dismissed_sender", id=int(message_id), count=count))

    gr.on([page.load, inbox_refresh.click, reason.change, page_no.submit], inbox, listing, inbox_outputs,
          api_name="inbox")
    inbox_table.select(open_item, listing, outputs=inbox_outputs, api_name="open_item")
    label_btn.click(label, [item_id, label_intent, *listing], inbox_outputs, api_name="label")
    attach_btn.click(attach_answer, [item_id, attach_to, *listing], inbox_outputs, api_name="attach_answer")
    new_btn.click(new_answer, [item_id, new_key, new_text, *listing], inbox_outputs, api_name="new_answer")
    wrong_btn.click(wrong_answer, [item_id, *listing], inbox_outputs, api_name="wrong_answer")
    dismiss_btn.click(dismiss, [item_id, *listing], inbox_outputs, api_name="dismiss")
    dismiss_all_btn.click(dismiss_sender, [item_id, *listing], inbox_outputs, api_name="dismiss_sender")
    return InboxParts(item_id=item_id, attach_to=attach_to, takeover_btn=takeover_btn)

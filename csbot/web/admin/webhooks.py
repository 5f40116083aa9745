"""The admin page's Webhooks tab: the shop's endpoints that hear of events (a customer asked for a
person, a message fell back, a reply was rated), a form to add one (its signing secret shown once)
or remove one, and the delivery log, newest first, with "send again".

`webhooks_tab` builds the tab's components and events inside the current Blocks. Sending,
signing and retrying are service/webhooks.py's; this module calls the engine and the store.
"""

from typing import TYPE_CHECKING

import gradio as gr
import pandas as pd

from csbot.errors import DataError
from csbot.language import Words
from csbot.store.webhooks import EVENTS
from csbot.web.common import guarded
from csbot.web.format import when

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts
    from csbot.service.engine import Engine


def endpoint_rows(hooks: list[dict], words: Words) -> pd.DataFrame:
    """Example: [{"id": 1, "url": "https://hooks.example/csbot", "events": ["message.fallback"],
                  "created_at": "2026-12-06T10:00:00+00:00"}] -> one row: "1", the url, the events, "2026-12-06 10:00" """
    return pd.DataFrame([[str(h["id"]), h["url"], " ".join(h["events"]), when(h.get("created_at"))] for h in hooks],
                        columns=words["admin.webhook_headers"], dtype="str")


def delivery_rows(deliveries: list[dict], words: Words) -> pd.DataFrame:
    """Example: [{"id": 7, "event": "message.fallback", "url": "https://…", "status": "pending", "attempts": 1,
                  "last_status": 500, "last_error": "HTTP 500", "created_at": "…"}] -> one row of strings"""
    return pd.DataFrame([[str(d["id"]), when(d.get("created_at")), d["event"], d["url"], d["status"], str(d["attempts"]),
                          "" if d.get("last_status") is None else str(d["last_status"]), d.get("last_error") or ""]
                         for d in deliveries], columns=words["admin.delivery_headers"], dtype="str")


def webhooks_tab(page: gr.Blocks, *, engine: "Engine", accounts: "Accounts", words: Words) -> None:
    """Build the Webhooks tab and its events inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")
    w = words.__getitem__
    store = engine.store

    with gr.Tab(w("admin.webhooks_tab"), id="webhooks"):
        gr.Markdown(w("admin.webhooks_intro"))
        endpoints = gr.Dataframe(label=w("admin.webhook_endpoints"), interactive=False)
        with gr.Row():
            url = gr.Textbox(label=w("admin.webhook_url"), max_lines=1, scale=3)
            events = gr.CheckboxGroup(list(EVENTS), value=list(EVENTS), label=w("admin.webhook_events"), scale=3)
            add = gr.Button(w("admin.webhook_add"), variant="primary", scale=1)
        note = gr.Markdown()
        with gr.Row():
            chosen = gr.Number(label=w("admin.webhook_id"), precision=0, scale=1)
            remove = gr.Button(w("admin.webhook_remove"), variant="stop", scale=1)
            delivery = gr.Number(label=w("admin.delivery_id"), precision=0, scale=1)
            again = gr.Button(w("admin.send_again"), scale=1)
            refresh = gr.Button(w("admin.refresh"), size="sm", scale=0)
        log = gr.Dataframe(label=w("admin.delivery_log"), interactive=False, wrap=True)

    def view(text: str = ""):
        return endpoint_rows(store.webhooks(), words), delivery_rows(store.deliveries(limit=100), words), text

    outputs = [endpoints, log, note]

    @admin
    def show(request: gr.Request, *, user):
        return view()

    @admin
    def add_endpoint(address, picked, request: gr.Request, *, user):
        made = engine.add_webhook(url=address or "", events=list(picked or []), actor=user)
        return view(words.say("admin.webhook_added", id=made["id"], secret=made["secret"]))

    def given(number) -> int:
        if number is None:
            raise DataError(w("admin.answers_give_value"))
        return int(number)

    @admin
    def remove_endpoint(webhook_id, request: gr.Request, *, user):
        webhook_id = given(webhook_id)
        engine.remove_webhook(webhook_id, actor=user)
        return view(words.say("admin.webhook_removed", id=webhook_id))

    @admin
    def send_again(delivery_id, request: gr.Request, *, user):
        delivery_id = given(delivery_id)
        engine.resend_webhook(delivery_id, actor=user)
        return view(words.say("admin.webhook_resent", id=delivery_id))

    gr.on([page.load, refresh.click], show, None, outputs, api_name="webhooks")
    add.click(add_endpoint, [url, events], outputs, api_name="webhook_add")
    remove.click(remove_endpoint, chosen, outputs, api_name="webhook_remove")
    again.click(send_again, delivery, outputs, api_name="webhook_resend")

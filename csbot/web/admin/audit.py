"""The admin page's Audit log tab: who did what and when (logins, failed logins with their address,
logouts, answer and template edits, labels, imports, retrains, promotes and rollbacks, account
changes), newest first, filtered by person, action or any text.

This module only shows the log; the services that act write it (auth.py, engine.py, jobs.py, bot.py).
"""

from typing import TYPE_CHECKING

import gradio as gr
import pandas as pd

from csbot.language import Words
from csbot.web.common import guarded
from csbot.web.format import when

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts


def audit_table(rows: list[dict], words: Words) -> pd.DataFrame:
    """Example: [{"at": "2026-12-01T10:00:00.000+00:00", "actor": "ada", "action": "promote", "target": "v2",
    "detail": {}, "address": None}] -> one row "2026-12-01 10:00:00", "ada", "promote", "v2", "", "" """
    def detail(d: dict) -> str:
        return ", ".join(f"{k}={v}" for k, v in (d or {}).items())
    return pd.DataFrame([[when(r["at"], seconds=True), r["actor"] or "", r["action"] or "",
                          r["target"] or "", detail(r["detail"]), r["address"] or ""] for r in rows],
                        columns=words["admin.audit_headers"], dtype="str")


def audit_tab(page: gr.Blocks, *, store, accounts: "Accounts", words: Words) -> None:
    """Build the Audit log tab and its events inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")

    with gr.Tab(words["admin.audit_tab"], id="audit"):
        with gr.Row():
            who = gr.Textbox(label=words["admin.who"], max_lines=1, scale=2)
            action = gr.Dropdown([], value=None, label=words["admin.action"], allow_custom_value=True, scale=2)
            text = gr.Textbox(label=words["admin.containing"], max_lines=1, scale=2)
            refresh = gr.Button(words["admin.show"], scale=1)
        table = gr.Dataframe(label=words["admin.audit_table"], interactive=False, wrap=True)

    @admin
    def show(who_value, action_value, text_value, request: gr.Request, *, user):
        rows = store.audit_log(actor=(who_value or "").strip() or None, action=action_value or None,
                               text=(text_value or "").strip() or None, limit=500)
        return audit_table(rows, words), gr.update(choices=[""] + store.audit_actions())

    gr.on([page.load, refresh.click, who.submit, text.submit], show, [who, action, text], [table, action],
          api_name="audit")

"""The admins' page (mounted at /admin): retrain the intent model and watch it run, read each
version's evaluation report and promote or roll back, see the dashboard, see and move how curated
answers are held back, manage the shop's webhooks, manage accounts.

`build_admin` makes the Blocks and its tabs, one module per tab (`retrain`, `versions`,
`dashboard`, `answers`, `webhooks`, `users`, `audit`; `format` holds the helpers they share), and wires the one event that crosses
tabs: the Retrain tab's "Show the new version's report", which switches to the Versions tab and
picks the new version there. Every handler, page loads and timer ticks included, is wrapped in
`guarded(accounts, "admin")`: the login in front of the page is not the only check, because any
event of a Blocks can be called through its API. Handlers call one engine/retrainer/accounts/store
method (and re-read what the page shows after a change); the pure helpers only format rows.

Training runs in a child process (jobs.py), so the page only starts, cancels and polls it with a
`gr.Timer`; its state lives in the store, so a reload or a second admin sees the same run.
This package does not train, evaluate, decide what serves, or check passwords itself.

Every word the page shows comes from the `admin` and `report` sections of the staff language's
admin.yaml (csbot/languages/<code>/, picked by the `staff_language` setting); version ids, intents,
routes, audit actions, user names and the engine's error messages show as they are.
"""

from typing import TYPE_CHECKING

import gradio as gr

from csbot.language import Words
from csbot.web.admin.answers import answers_tab
from csbot.web.admin.audit import audit_tab
from csbot.web.admin.dashboard import DAY_WINDOWS, dashboard_tab, dashboard_view
from csbot.web.admin.retrain import (
    BAR,
    PHASES,
    phase_label,
    progress_text,
    retrain_tab,
    status_html,
)
from csbot.web.admin.users import users_tab, users_table
from csbot.web.admin.versions import (
    changes_table,
    comparison_markdown,
    report_markdown,
    version_choices,
    versions_tab,
    versions_view,
)
from csbot.web.admin.webhooks import webhooks_tab
from csbot.web.common import guarded, page_header
from csbot.web.format import device_label, eta, percent

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts
    from csbot.service.engine import Engine
    from csbot.service.jobs import Retrainer

# The page's builder, and the pure helpers under the names they had when the page was one module.
__all__ = ["build_admin", "BAR", "DAY_WINDOWS", "PHASES", "changes_table", "comparison_markdown",
           "dashboard_view", "device_label", "eta", "percent", "phase_label", "progress_text",
           "report_markdown", "status_html", "users_table", "version_choices"]


def build_admin(engine: "Engine", accounts: "Accounts", retrainer: "Retrainer") -> gr.Blocks:
    """The admin page over one engine; `retrainer` starts and watches its training runs."""
    admin = guarded(accounts, "admin")
    words = Words.load(engine.settings.staff_language)

    with gr.Blocks(title=words["admin.title"]) as page:
        page_header(words["admin.title"], words["admin.log_out"], words["admin.two_factor"])
        with gr.Tabs() as tabs:
            open_report = retrain_tab(page, engine=engine, accounts=accounts, retrainer=retrainer, words=words)
            versions = versions_tab(page, engine=engine, accounts=accounts, words=words)

            @admin
            def open_new_report(request: gr.Request, *, user):
                job = retrainer.status()
                return gr.Tabs(selected="versions"), *versions_view(engine.store, job and job.get("model_version"),
                                                                    words=words)

            open_report.click(open_new_report, None, [tabs, versions.versions_table, versions.version],
                              api_name="open_new_report")

            dashboard_tab(page, engine=engine, accounts=accounts, words=words)
            answers_tab(page, engine=engine, accounts=accounts, words=words)
            webhooks_tab(page, engine=engine, accounts=accounts, words=words)
            users_tab(page, accounts=accounts, words=words)
            audit_tab(page, store=engine.store, accounts=accounts, words=words)
    return page

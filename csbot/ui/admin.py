"""The admins' page (mounted at /admin): retrain the intent model and watch it run, read each
version's evaluation report and promote or roll back, see the dashboard, manage accounts.

Every handler, page loads and timer ticks included, is wrapped in `guarded(accounts, "admin")`:
the login in front of the page is not the only check, because any event of a Blocks can be
called through its API. Handlers call one engine/retrainer/accounts method (and re-read what
the page shows after a change); the pure helpers at the top only format rows for the page.

Training runs in a child process (jobs.py), so the page only starts, cancels and polls it with a
`gr.Timer`; its state lives in the store, so a reload or a second admin sees the same run.
This module does not train, evaluate, decide what serves, or check passwords itself.
"""

import html
from typing import TYPE_CHECKING

import gradio as gr
import pandas as pd

from csbot import dashboard, report
from csbot.errors import DataError
from csbot.ui.common import as_text, guarded

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.auth import Accounts
    from csbot.engine import Engine
    from csbot.jobs import Retrainer

PHASES = {"queued": "queued", "starting": "starting (loading the base model)", "collect": "collecting examples",
          "split": "splitting off held-out examples", "fine_tune": "fine-tuning",
          "calibrate": "calibrating the threshold", "evaluate": "evaluating on held-out examples",
          "compare": "comparing with the serving model", "done": "done"}
DAY_WINDOWS = [7, 30, 90]
BAR = 'aria-label="training progress" style="width:100%"'
# All training examples, and those staff labelled from the inbox (source "staff:<name>").
EXAMPLE_COUNTS = ("SELECT count(*) AS examples, coalesce(sum(substr(source, 1, 6) = 'staff:'), 0) AS staff"
                  " FROM examples")


# --- pure formatting helpers ------------------------------------------------------------
def eta(seconds: float | None) -> str:
    """A duration for people.

    Example: eta(65) -> "1 min 05 s"; eta(4.2) -> "4 s"; eta(3725) -> "1 h 02 min"; eta(None) -> "–"
    """
    if seconds is None:
        return "–"
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def percent(value: float | None) -> str:
    """Example: percent(0.9312) -> "93.1%"; percent(None) -> "–" """
    return "–" if value is None else f"{100 * value:.1f}%"


def device_label(kind: str) -> str:
    """Example: device_label("cuda") -> "GPU (cuda)"; device_label("cpu") -> "CPU" """
    return "GPU (cuda)" if kind == "cuda" else "CPU" if kind == "cpu" else kind


def phase_label(phase: str | None) -> str:
    """Example: phase_label("fine_tune (cancelling)") -> "fine-tuning (cancelling)" """
    base, _, rest = (phase or "").partition(" ")
    return " ".join(p for p in (PHASES.get(base, base), rest) if p) or "–"


def progress_text(job: dict | None) -> str:
    """Example: {"step": 12, "total": 40} -> "step 12 / 40"; before fine-tuning (total 0) -> "" """
    return f"step {job.get('step') or 0} / {job['total']}" if job and job.get("total") else ""


def status_html(job: dict | None) -> str:
    """The latest training run as a small HTML block: a progress bar and its figures.

    Example: {"status": "running", "phase": "fine_tune", "step": 12, "total": 40, "loss": 0.81, ...}
             -> '<progress value="12" max="40" ...></progress> ... step 12 / 40 ... 0.8100 ...'
    """
    if not job:
        return "<p>No training run yet. Start one above.</p>"
    e = html.escape
    status, total = job.get("status") or "?", job.get("total") or 0
    if total:
        bar = f'<progress value="{job.get("step") or 0}" max="{total}" {BAR}></progress>'
    else:  # no step count before fine-tuning starts: an indeterminate bar while it runs
        bar = f'<progress {BAR}></progress>' if status == "running" else ""
    loss = job.get("loss")
    rows = [("Status", status), ("Phase", phase_label(job.get("phase"))), ("Progress", progress_text(job) or "–"),
            ("Loss", "–" if loss is None else f"{loss:.4f}"), ("Elapsed", eta(job.get("elapsed_seconds"))),
            ("Time left (estimate)", eta(job.get("eta_seconds")) if status == "running" else "–"),
            ("Device", device_label(job.get("device") or "?")),
            ("Started", f"{(job.get('started_at') or '')[:19].replace('T', ' ')} UTC by "
                        f"{(job.get('options') or {}).get('user', '?')}")]
    table = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{e(k)}</th><td>{e(str(v))}</td></tr>"
                    for k, v in rows)
    notes = []
    if status == "done" and job.get("model_version"):
        then = ("it was promoted automatically if it passed the gate (the versions table says which serves)"
                if (job.get("options") or {}).get("promote_if_better") else "promote it there if it is better")
        notes.append(f"<p><b>New version {e(job['model_version'])}</b> is saved. Its report is under "
                     f"<i>Versions &amp; reports</i> (button below); {then}.</p>")
    if job.get("error"):
        label = "Note" if status == "done" else "Error"
        notes.append(f"<p><b>{label}:</b> <code style='white-space:pre-wrap'>{e(job['error'])}</code></p>")
    return f"<div id='training-status'>{bar}<table>{table}</table>{''.join(notes)}</div>"


def version_choices(versions: list[dict]) -> list[tuple[str, str]]:
    """Dropdown choices, newest first. Example: [{"id": "v2", "is_current": 1}] -> [("v2 (current)", "v2")]"""
    return [(f"{v['id']} (current)" if v.get("is_current") else v["id"], v["id"]) for v in versions]


def report_markdown(version: dict) -> str:
    """A version's headline figures. Example: accuracy 0.9 -> "| Accuracy | 90.0% |" among the rows."""
    m = version.get("metrics") or {}
    rows = [("Accuracy", percent(m.get("accuracy"))), ("Macro-F1", percent(m.get("macro_f1"))),
            ("Accepted share (answered by a template)", percent(m.get("accepted"))),
            ("Precision of the accepted", percent(m.get("accepted_precision"))),
            ("Known out-of-scope questions accepted", percent(m.get("known_oos_accepted"))),
            ("Held-out examples", m.get("n", "–")),
            ("Calibrated threshold", "–" if version.get("threshold") is None else f"{version['threshold']:.4f}"),
            ("Trained on", device_label(version.get("device") or "?")),
            ("Training time", eta(version.get("train_seconds")))]
    lines = [f"### {version['id']}", "", "| Figure | Value |", "|---|---|"]
    return "\n".join(lines + [f"| {k} | {as_text(str(v))} |" for k, v in rows])


def comparison_markdown(comparison: dict | None) -> str:
    """The gate verdict and how recent real traffic would change.

    Example: {"gate": {"passed": True, "new_macro_f1": 0.9, "current_macro_f1": 0.8, "reason": "..."},
              "messages": 300, "intent_changed": 12, "route_changed": 5, "against": "v1"}
             -> "**Gate: passed** ... 12 of the last 300 customer messages would get another intent ..."
    """
    if not comparison:
        return "No comparison with a serving model was recorded for this version."
    gate = comparison.get("gate") or {}
    verdict = "passed" if gate.get("passed") else "failed"
    parts = [f"**Gate: {verdict}** ({as_text(gate.get('reason') or '')}). Macro-F1 on the same held-out "
             f"messages: new {percent(gate.get('new_macro_f1'))}, serving {percent(gate.get('current_macro_f1'))}."]
    if comparison.get("error"):
        parts.append(f"The traffic comparison failed: {as_text(comparison['error'])}")
    elif comparison.get("intent_changed") is None:
        parts.append(f"No traffic comparison: {comparison.get('messages', 0)} recent customer messages and "
                     f"{'no serving model' if not comparison.get('against') else 'nothing to compare'}.")
    else:
        n = comparison.get("messages", 0)
        parts.append(f"Against {as_text(comparison.get('against') or '?')}: {comparison['intent_changed']} of the "
                     f"last {n} customer messages would get another intent, {comparison['route_changed']} "
                     "another route (template / answer / fallback).")
    return "\n\n".join(parts)


def changes_table(comparison: dict | None) -> pd.DataFrame:
    """Example messages whose handling would change. Example: [{"message": "hi", "current": "a / template",
    "new": "b / template"}] -> one row with columns message, serving model, new model"""
    rows = (comparison or {}).get("examples") or []
    return pd.DataFrame([[r.get("message"), r.get("current"), r.get("new")] for r in rows],
                        columns=["message", "serving model", "new model"], dtype="str")


def dashboard_view(figures: dict) -> tuple:
    """dashboard.summary's figures as the page's (heading, per-day, routes, intents, ratings, unanswered).

    Example: {"start": "2026-11-22", "end": "2026-11-28", "ratings": {"likes": 3, "dislikes": 1,
              "like_ratio": 0.75}, ...}
             -> ("From 2026-11-22 to 2026-11-28 (UTC): ...", per-day frame with `day` as dates, ...,
                 "**Ratings of bot replies:** likes 3, dislikes 1, like ratio 75.0%", ...)
    """
    per_day = figures["messages_per_day"].assign(day=lambda d: pd.to_datetime(d["day"]))
    r = figures["ratings"]
    rating = (f"**Ratings of bot replies:** likes {r['likes']}, dislikes {r['dislikes']}, like ratio "
              + ("– (nobody rated a reply)" if r["like_ratio"] is None else percent(r["like_ratio"])))
    heading = (f"From {figures['start']} to {figures['end']} (UTC): "
               f"{int(figures['messages_per_day']['messages'].sum())} customer messages.")
    return heading, per_day, figures["route_shares"], figures["top_intents"], rating, figures["top_unanswered"]


def users_table(users: list[dict]) -> pd.DataFrame:
    """Example: [{"name": "sam", "role": "staff", "created_at": "2026-11-28T18:31:19+00:00"}]
    -> name "sam", role "staff", created "2026-11-28 18:31" """
    return pd.DataFrame([[u["name"], u["role"], (u.get("created_at") or "")[:16].replace("T", " ")]
                         for u in users], columns=["name", "role", "created"], dtype="str")


def _same_passwords(first: str, second: str) -> str:
    if first != second:
        raise DataError("the two passwords differ; type the same password in both boxes")
    return first


# --- the page ---------------------------------------------------------------------------
def build_admin(engine: "Engine", accounts: "Accounts", retrainer: "Retrainer") -> gr.Blocks:
    """The admin page over one engine; `retrainer` starts and watches its training runs."""
    from csbot.intents import pick_device  # torch: only when the admin page is built

    admin = guarded(accounts, "admin")
    store = engine.store
    device = device_label(pick_device(engine.settings.device).type)

    with gr.Blocks(title="csbot · admin") as page:
        gr.Markdown("## csbot · admin")
        with gr.Tabs() as tabs:
            with gr.Tab("Retrain", id="retrain"):
                data_note = gr.Markdown()
                with gr.Row():
                    epochs = gr.Number(engine.settings.epochs, label="Epochs (passes over the training data)",
                                       minimum=0.1, maximum=100, step=1)
                    auto_promote = gr.Checkbox(False, label="promote automatically if at least as good")
                with gr.Row():
                    start_button = gr.Button("Start training", variant="primary")
                    cancel_button = gr.Button("Cancel", variant="stop")
                status = gr.HTML(status_html(None))
                open_report = gr.Button("Show the new version's report", visible=False)
                timer = gr.Timer(1.0)
            with gr.Tab("Versions & reports", id="versions"):
                versions_table = gr.Dataframe(label="Model versions (newest first)", interactive=False, wrap=True)
                with gr.Row():
                    version = gr.Dropdown([], label="Version", interactive=True, scale=3, allow_custom_value=True)
                    promote_button = gr.Button("Promote this version", variant="primary", scale=1)
                    rollback_button = gr.Button("Roll back to the previous version", scale=1)
                    refresh_versions = gr.Button("Refresh", scale=0)
                action_note = gr.Markdown()
                summary = gr.Markdown()
                comparison = gr.Markdown()
                changes = gr.Dataframe(label="Recent messages the new model would handle differently (up to 20)",
                                       interactive=False, wrap=True)
                per_intent = gr.Dataframe(label="Per intent, worst F1 first", interactive=False)
                confusion = gr.Image(label="Confusion matrix (rows: true intent, columns: predicted)",
                                     type="pil", format="png", interactive=False, buttons=["download"])
            with gr.Tab("Dashboard", id="dashboard"):
                with gr.Row():
                    days = gr.Radio(DAY_WINDOWS, value=30, label="Days", scale=3)
                    refresh_dashboard = gr.Button("Refresh", scale=0)
                heading = gr.Markdown()
                with gr.Row():
                    per_day = gr.LinePlot(x="day", y="messages", title="Customer messages per day", x_title="day")
                    routes = gr.BarPlot(x="route", y="messages", title="How they were answered")
                with gr.Row():
                    intents = gr.BarPlot(x="intent", y="messages", title="Top intents (template replies)",
                                         x_label_angle=-30)
                    with gr.Column():
                        ratings = gr.Markdown()
                        unanswered = gr.Dataframe(label="Top unanswered questions (fallback replies)",
                                                  interactive=False, wrap=True)
            with gr.Tab("Users", id="users"):
                users = gr.Dataframe(label="Accounts", interactive=False)
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### Create an account")
                        new_name = gr.Textbox(label="Name", max_lines=1)
                        new_role = gr.Radio(["staff", "admin"], value="staff", label="Role")
                        new_password = gr.Textbox(label="Password (10 or more characters)", type="password")
                        new_again = gr.Textbox(label="Password again", type="password")
                        create_button = gr.Button("Create account", variant="primary")
                    with gr.Column():
                        gr.Markdown("### Reset a password")
                        reset_name = gr.Dropdown([], label="Account", allow_custom_value=True)
                        reset_password = gr.Textbox(label="New password", type="password")
                        reset_again = gr.Textbox(label="New password again", type="password")
                        reset_button = gr.Button("Set the new password")
                users_note = gr.Markdown()

        # --- Retrain ---------------------------------------------------------------------
        @admin
        def training_data(request: gr.Request, *, user):
            counts = store.query(EXAMPLE_COUNTS)[0]
            return (f"Training will run on **{device}**, in a background process: the chat keeps answering. "
                    f"**{counts['examples']:,}** training examples, of which **{counts['staff']:,}** "
                    "were labelled by staff.")

        @admin
        def train_status(request: gr.Request, *, user):
            job = retrainer.status()
            done = bool(job and job.get("status") == "done" and job.get("model_version"))
            label = f"Show the report of {job['model_version']}" if done else "Show the new version's report"
            return status_html(job), gr.update(visible=done, value=label)

        @admin
        def start_training(epochs_value, promote, request: gr.Request, *, user):
            retrainer.start(user=user, epochs=epochs_value, promote_if_better=bool(promote))
            return status_html(retrainer.status())

        @admin
        def cancel_training(request: gr.Request, *, user):
            retrainer.cancel()
            return status_html(retrainer.status())

        page.load(training_data, None, data_note, api_name="training_data")
        gr.on([page.load, timer.tick], train_status, None, [status, open_report], api_name="train_status",
              show_progress="hidden", trigger_mode="always_last")
        start_button.click(start_training, [epochs, auto_promote], status, api_name="start_training",
                           concurrency_id="training", concurrency_limit=1)
        cancel_button.click(cancel_training, None, status, api_name="cancel_training")

        # --- Versions & reports ------------------------------------------------------------
        def versions_view(selected: str | None = None):
            rows = store.model_versions()
            ids = [v["id"] for v in rows]
            current = next((v["id"] for v in rows if v.get("is_current")), None)
            value = selected if selected in ids else current or (ids[0] if ids else None)
            return report.summary_rows(rows).round(4), gr.update(choices=version_choices(rows), value=value)

        @admin
        def versions(selected, request: gr.Request, *, user):
            return versions_view(selected)

        @admin
        def show_report(version_id, request: gr.Request, *, user):
            row = next((v for v in store.model_versions() if v["id"] == version_id), None)
            if row is None:
                return "Pick a version to see its report.", "", changes_table(None), None, None
            metrics = row.get("metrics") or {}
            picture = (report.confusion_image(metrics["labels"], metrics["confusion"], title=row["id"])
                       if metrics.get("labels") and metrics.get("confusion") else None)
            return (report_markdown(row), comparison_markdown(row.get("comparison")),
                    changes_table(row.get("comparison")), report.per_intent_table(metrics), picture)

        @admin
        def promote(version_id, request: gr.Request, *, user):
            if not version_id:
                raise DataError("pick a version in the list first, then promote it")
            engine.promote(version_id)
            return *versions_view(version_id), f"**{as_text(version_id)}** is serving now."

        @admin
        def rollback(request: gr.Request, *, user):
            back_to = engine.rollback()
            return *versions_view(back_to), f"Rolled back: **{as_text(back_to)}** is serving now."

        @admin
        def open_new_report(request: gr.Request, *, user):
            job = retrainer.status()
            return gr.Tabs(selected="versions"), *versions_view(job and job.get("model_version"))

        gr.on([page.load, refresh_versions.click], versions, version, [versions_table, version], api_name="versions")
        version.change(show_report, version, [summary, comparison, changes, per_intent, confusion], api_name="report")
        promote_button.click(promote, version, [versions_table, version, action_note], api_name="promote")
        rollback_button.click(rollback, None, [versions_table, version, action_note], api_name="rollback")
        open_report.click(open_new_report, None, [tabs, versions_table, version], api_name="open_new_report")

        # --- Dashboard ---------------------------------------------------------------------
        @admin
        def refresh(days_value, request: gr.Request, *, user):
            return dashboard_view(dashboard.summary(store, days=int(days_value or 30)))

        gr.on([page.load, refresh_dashboard.click, days.change], refresh, days,
              [heading, per_day, routes, intents, ratings, unanswered], api_name="dashboard")

        # --- Users ---------------------------------------------------------------------------
        def users_view():
            rows = accounts.list()
            return users_table(rows), gr.update(choices=[u["name"] for u in rows])

        @admin
        def list_users(request: gr.Request, *, user):
            return users_view()

        @admin
        def create_user(name, role, password, again, request: gr.Request, *, user):
            accounts.create((name or "").strip(), _same_passwords(password, again), role=role)
            return *users_view(), "", "", f"Created the {as_text(role)} account **{as_text(name.strip())}**."

        @admin
        def set_password(name, password, again, request: gr.Request, *, user):
            if not name:
                raise DataError("pick the account whose password to reset")
            accounts.reset_password(name, _same_passwords(password, again))
            return "", "", f"The password of **{as_text(name)}** is changed."

        page.load(list_users, None, [users, reset_name], api_name="users")
        create_button.click(create_user, [new_name, new_role, new_password, new_again],
                            [users, reset_name, new_password, new_again, users_note], api_name="create_user")
        reset_button.click(set_password, [reset_name, reset_password, reset_again],
                           [reset_password, reset_again, users_note], api_name="reset_password")
    return page

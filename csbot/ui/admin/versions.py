"""The admin page's Versions & reports tab: every saved model version, the report of the one picked
(headline figures, the gate verdict and how recent traffic would change, per-intent table,
confusion matrix), and buttons to promote it or roll back to the previous version.

`versions_tab` builds the tab's components and events inside the current Blocks and returns the
two components the Retrain tab's "Show the new version's report" fills; `versions_view` is what
that event (wired in the package's `build_admin`) and this tab's own events show. Comparison text
comes from stored runs, so it goes through `common.as_text`. This module does not evaluate,
gate or load models: the training run wrote the report, and the engine's promote / rollback
decide what serves.
"""

from typing import TYPE_CHECKING, NamedTuple

import gradio as gr
import pandas as pd

from csbot import report
from csbot.errors import DataError
from csbot.ui.admin.format import device_label, eta, percent
from csbot.ui.common import as_text, guarded

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.auth import Accounts
    from csbot.engine import Engine
    from csbot.store import Store


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


def versions_view(store: "Store", selected: str | None = None) -> tuple:
    """The versions table and the dropdown, on `selected` if it exists, else the serving version,
    else the newest. Example: versions_view(store, "v9") -> (summary frame, update(choices, value="v2"))"""
    rows = store.model_versions()
    ids = [v["id"] for v in rows]
    current = next((v["id"] for v in rows if v.get("is_current")), None)
    value = selected if selected in ids else current or (ids[0] if ids else None)
    return report.summary_rows(rows).round(4), gr.update(choices=version_choices(rows), value=value)


class VersionsTab(NamedTuple):
    """The components another tab's event fills: the versions table and the version picked."""
    versions_table: gr.Dataframe
    version: gr.Dropdown


def versions_tab(page: gr.Blocks, *, engine: "Engine", accounts: "Accounts") -> VersionsTab:
    """Build the Versions & reports tab and its events inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")
    store = engine.store

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

    @admin
    def versions(selected, request: gr.Request, *, user):
        return versions_view(store, selected)

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
        engine.promote(version_id, actor=user)
        return *versions_view(store, version_id), f"**{as_text(version_id)}** is serving now."

    @admin
    def rollback(request: gr.Request, *, user):
        back_to = engine.rollback(actor=user)
        return *versions_view(store, back_to), f"Rolled back: **{as_text(back_to)}** is serving now."

    gr.on([page.load, refresh_versions.click], versions, version, [versions_table, version], api_name="versions")
    version.change(show_report, version, [summary, comparison, changes, per_intent, confusion], api_name="report")
    promote_button.click(promote, version, [versions_table, version, action_note], api_name="promote")
    rollback_button.click(rollback, None, [versions_table, version, action_note], api_name="rollback")
    return VersionsTab(versions_table, version)

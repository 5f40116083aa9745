"""The admin page's Versions & reports tab: every saved model version, the report of the one picked
(headline figures, the gate verdict and how recent traffic would change, the threshold's
trade-off curve with the operating point that serves, per-intent table, confusion matrix),
buttons to promote it or roll back to the previous version, and the controls that move its
operating point by a target precision or acceptance (live at once, no retraining).

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
from csbot.calibration import TARGETS
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
            ("Threshold (serving)", "–" if version.get("threshold") is None else f"{version['threshold']:.4f}"),
            ("Trained on", device_label(version.get("device") or "?")),
            ("Training time", eta(version.get("train_seconds")))]
    lines = [f"### {version['id']}", "", "| Figure | Value |", "|---|---|"]
    return "\n".join(lines + [f"| {k} | {as_text(str(v))} |" for k, v in rows])


def point_markdown(version: dict) -> str:
    """How the version's threshold was chosen and what it gives on held-out messages.

    Example: {"threshold": 3.1, "operating_point": {"by": "precision", "target": 0.95, "accepted": 0.93,
              "precision": 0.95, "threshold": 3.1}} -> "**Operating point:** threshold 3.1000, chosen by
              target precision 95.0% ... accepts 93.0% of held-out messages at 95.0% precision"
    """
    metrics = version.get("metrics") or {}
    point = version.get("operating_point") or metrics.get("operating_point") or {}
    if version.get("threshold") is None:
        return "**Operating point:** none recorded."
    how = (f"chosen by target {point['by']} {percent(point.get('target'))}" if point.get("by") in ("precision", "acceptance")
           else f"the trained default ({as_text(point.get('rule') or 'calibrated at training')})")
    parts = [f"**Operating point:** threshold {version['threshold']:.4f}, {how}."]
    if point.get("accepted") is not None:
        parts.append(f"On held-out messages it accepts {percent(point['accepted'])} at "
                     f"{percent(point.get('precision'))} precision" +
                     (f"; known out-of-scope questions accepted: {percent(point['oos_accepted'])}."
                      if point.get("oos_accepted") is not None else "."))
    return " ".join(parts)


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


def report_view(store: "Store", version_id: str | None) -> tuple:
    """What the report shows for one version: headline figures, comparison, changed messages, the
    operating point with its curve picture and table, per-intent table, confusion matrix."""
    row = next((v for v in store.model_versions() if v["id"] == version_id), None)
    if row is None:
        return "Pick a version to see its report.", "", changes_table(None), "", None, None, None, None
    metrics = row.get("metrics") or {}
    picture = (report.confusion_image(metrics["labels"], metrics["confusion"], title=row["id"])
               if metrics.get("labels") and metrics.get("confusion") else None)
    curve = metrics.get("operating_curve") or {}
    point = {**(metrics.get("operating_point") or {}), **(row.get("operating_point") or {}),
             "threshold": row.get("threshold")}
    curve_picture = report.curve_image(curve, point, title=row["id"]) if curve.get("points") else None
    return (report_markdown(row), comparison_markdown(row.get("comparison")), changes_table(row.get("comparison")),
            point_markdown(row), curve_picture, report.curve_table(curve) if curve.get("points") else None,
            report.per_intent_table(metrics), picture)


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
        with gr.Accordion("Operating point: what the intent model accepts", open=True):
            point_note = gr.Markdown()
            with gr.Row():
                curve = gr.Image(label="Trade-off on held-out messages", type="pil", format="png",
                                 interactive=False, scale=3)
                curve_points = gr.Dataframe(label="The curve at a few points", interactive=False, scale=2)
            with gr.Row():
                target_kind = gr.Radio([("by target precision", "precision"), ("by target acceptance", "acceptance")],
                                       value="precision", label="Move the operating point", scale=2)
                target = gr.Number(value=0.95, minimum=0.5, maximum=1.0, step=0.01, label="target (0.5 to 1)",
                                   scale=1)
                move_button = gr.Button("Move the operating point", scale=1)
                default_button = gr.Button("Back to the trained default", scale=1)
        per_intent = gr.Dataframe(label="Per intent, worst F1 first", interactive=False)
        confusion = gr.Image(label="Confusion matrix (rows: true intent, columns: predicted)",
                             type="pil", format="png", interactive=False, buttons=["download"])

    @admin
    def versions(selected, request: gr.Request, *, user):
        return versions_view(store, selected)

    @admin
    def show_report(version_id, request: gr.Request, *, user):
        return report_view(store, version_id)

    @admin
    def move_point(version_id, kind, value, request: gr.Request, *, user):
        if not version_id:
            raise DataError("pick a version in the list first, then move its operating point")
        if value is None or kind not in TARGETS:
            raise DataError(f"choose a target ({' or '.join(TARGETS)}) and type it between 0.5 and 1, e.g. 0.95")
        point = engine.set_operating_point(version_id, **{kind: float(value)}, actor=user)
        note = (f"**{as_text(version_id)}** now accepts at threshold {point['threshold']:.4f} "
                f"(was {'–' if point['before'] is None else format(point['before'], '.4f')}).")
        return *report_view(store, version_id), *versions_view(store, version_id), note

    @admin
    def default_point(version_id, request: gr.Request, *, user):
        if not version_id:
            raise DataError("pick a version in the list first")
        point = engine.set_operating_point(version_id, default=True, actor=user)
        note = f"**{as_text(version_id)}** is back on its trained default threshold {point['threshold']:.4f}."
        return *report_view(store, version_id), *versions_view(store, version_id), note

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
    report_outputs = [summary, comparison, changes, point_note, curve, curve_points, per_intent, confusion]
    version.change(show_report, version, report_outputs, api_name="report")
    move_button.click(move_point, [version, target_kind, target], [*report_outputs, versions_table, version, action_note],
                      api_name="operating_point")
    default_button.click(default_point, version, [*report_outputs, versions_table, version, action_note],
                         api_name="default_operating_point")
    promote_button.click(promote, version, [versions_table, version, action_note], api_name="promote")
    rollback_button.click(rollback, None, [versions_table, version, action_note], api_name="rollback")
    return VersionsTab(versions_table, version)

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

from csbot.errors import DataError
from csbot.language import Words
from csbot.nlu.calibration import TARGETS
from csbot.web import report
from csbot.web.common import as_text, guarded
from csbot.web.format import device_label, eta, percent

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts
    from csbot.service.engine import Engine
    from csbot.store import Store


def version_choices(versions: list[dict], words: Words) -> list[tuple[str, str]]:
    """Dropdown choices, newest first. Example: [{"id": "v2", "is_current": 1}] -> [("v2 (current)", "v2")]"""
    return [(words.say("admin.current", version=v["id"]) if v.get("is_current") else v["id"], v["id"]) for v in versions]


def report_markdown(version: dict, words: Words) -> str:
    """A version's headline figures. Example: accuracy 0.9 -> "| Accuracy | 90.0% |" among the rows."""
    m = version.get("metrics") or {}
    rows = [("accuracy", percent(m.get("accuracy"))), ("macro_f1", percent(m.get("macro_f1"))),
            ("accepted", percent(m.get("accepted"))), ("accepted_precision", percent(m.get("accepted_precision"))),
            ("known_oos_accepted", percent(m.get("known_oos_accepted"))), ("held_out", m.get("n", "–")),
            ("threshold", "–" if version.get("threshold") is None else f"{version['threshold']:.4f}"),
            ("trained_on", device_label(version.get("device") or "?", words)),
            ("training_time", eta(version.get("train_seconds"), words))]
    lines = [f"### {version['id']}", "", f"| {words['admin.figure']} | {words['admin.value']} |", "|---|---|"]
    return "\n".join(lines + [f"| {words['admin.' + k]} | {as_text(str(v))} |" for k, v in rows])


def point_markdown(version: dict, words: Words) -> str:
    """How the version's threshold was chosen and what it gives on held-out messages.

    Example: {"threshold": 3.1, "operating_point": {"by": "precision", "target": 0.95, "accepted": 0.93,
              "precision": 0.95, "threshold": 3.1}} -> "**Operating point:** threshold 3.1000, chosen by
              target precision 95.0% ... accepts 93.0% of held-out messages at 95.0% precision"
    """
    metrics = version.get("metrics") or {}
    point = version.get("operating_point") or metrics.get("operating_point") or {}
    if version.get("threshold") is None:
        return words["admin.point_none"]
    how = (words.say(f"admin.chosen_by_{point['by']}", target=percent(point.get("target")))
           if point.get("by") in ("precision", "acceptance")
           else words.say("admin.trained_default", rule=as_text(point.get("rule") or words["admin.calibrated_at_training"])))
    parts = [words.say("admin.point", threshold=f"{version['threshold']:.4f}", how=how)]
    if point.get("accepted") is not None:
        figures = {"accepted": percent(point["accepted"]), "precision": percent(point.get("precision"))}
        parts.append(words.say("admin.point_accepts", **figures) if point.get("oos_accepted") is None
                     else words.say("admin.point_accepts_oos", **figures, oos=percent(point["oos_accepted"])))
    return " ".join(parts)


def comparison_markdown(comparison: dict | None, words: Words) -> str:
    """The gate verdict and how recent real traffic would change.

    Example: {"gate": {"passed": True, "new_macro_f1": 0.9, "current_macro_f1": 0.8, "reason": "..."},
              "messages": 300, "intent_changed": 12, "route_changed": 5, "against": "v1"}
             -> "**Gate: passed** ... 12 of the last 300 customer messages would get another intent ..."
    """
    if not comparison:
        return words["admin.no_comparison"]
    gate = comparison.get("gate") or {}
    verdict = words["admin.gate_passed" if gate.get("passed") else "admin.gate_failed"]
    parts = [words.say("admin.gate", verdict=verdict, reason=as_text(gate.get("reason") or ""),
                       new=percent(gate.get("new_macro_f1")), serving=percent(gate.get("current_macro_f1")))]
    if comparison.get("error"):
        parts.append(words.say("admin.traffic_failed", error=as_text(comparison["error"])))
    elif comparison.get("intent_changed") is None:
        parts.append(words.say("admin.no_traffic_nothing" if comparison.get("against") else "admin.no_traffic_no_model",
                               messages=comparison.get("messages", 0)))
    else:
        parts.append(words.say("admin.traffic", against=as_text(comparison.get("against") or "?"),
                               intent_changed=comparison["intent_changed"], messages=comparison.get("messages", 0),
                               route_changed=comparison["route_changed"]))
    return "\n\n".join(parts)


def changes_table(comparison: dict | None, words: Words) -> pd.DataFrame:
    """Example messages whose handling would change. Example: [{"message": "hi", "current": "a / template",
    "new": "b / template"}] -> one row with columns message, serving model, new model"""
    rows = (comparison or {}).get("examples") or []
    return pd.DataFrame([[r.get("message"), r.get("current"), r.get("new")] for r in rows],
                        columns=words["admin.changes_headers"], dtype="str")


def versions_view(store: "Store", selected: str | None = None, *, words: Words) -> tuple:
    """The versions table and the dropdown, on `selected` if it exists, else the serving version,
    else the newest. Example: versions_view(store, "v9", words=words) -> (summary frame, update(choices, value="v2"))"""
    rows = store.model_versions()
    ids = [v["id"] for v in rows]
    current = next((v["id"] for v in rows if v.get("is_current")), None)
    value = selected if selected in ids else current or (ids[0] if ids else None)
    return report.summary_rows(rows, words=words).round(4), gr.update(choices=version_choices(rows, words), value=value)


def report_view(store: "Store", version_id: str | None, words: Words) -> tuple:
    """What the report shows for one version: headline figures, comparison, changed messages, the
    operating point with its curve picture and table, per-intent table, confusion matrix."""
    row = next((v for v in store.model_versions() if v["id"] == version_id), None)
    if row is None:
        return words["admin.pick_version"], "", changes_table(None, words), "", None, None, None, None
    metrics = row.get("metrics") or {}
    picture = (report.confusion_image(metrics["labels"], metrics["confusion"], title=row["id"], words=words)
               if metrics.get("labels") and metrics.get("confusion") else None)
    curve = metrics.get("operating_curve") or {}
    point = {**(metrics.get("operating_point") or {}), **(row.get("operating_point") or {}),
             "threshold": row.get("threshold")}
    has_curve = bool(curve.get("points"))
    return (report_markdown(row, words), comparison_markdown(row.get("comparison"), words),
            changes_table(row.get("comparison"), words), point_markdown(row, words),
            report.curve_image(curve, point, title=row["id"], words=words) if has_curve else None,
            report.curve_table(curve, words=words) if has_curve else None,
            report.per_intent_table(metrics, words=words), picture)


class VersionsTab(NamedTuple):
    """The components another tab's event fills: the versions table and the version picked."""
    versions_table: gr.Dataframe
    version: gr.Dropdown


def versions_tab(page: gr.Blocks, *, engine: "Engine", accounts: "Accounts", words: Words) -> VersionsTab:
    """Build the Versions & reports tab and its events inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")
    store = engine.store
    w = words.__getitem__

    with gr.Tab(w("admin.versions_tab"), id="versions"):
        versions_table = gr.Dataframe(label=w("admin.versions_table"), interactive=False, wrap=True)
        with gr.Row():
            version = gr.Dropdown([], label=w("admin.version"), interactive=True, scale=3, allow_custom_value=True)
            promote_button = gr.Button(w("admin.promote"), variant="primary", scale=1)
            rollback_button = gr.Button(w("admin.rollback"), scale=1)
            refresh_versions = gr.Button(w("admin.refresh"), scale=0)
        action_note = gr.Markdown()
        summary = gr.Markdown()
        comparison = gr.Markdown()
        changes = gr.Dataframe(label=w("admin.changes"), interactive=False, wrap=True)
        with gr.Accordion(w("admin.operating_point"), open=True):
            point_note = gr.Markdown()
            with gr.Row():
                curve = gr.Image(label=w("admin.curve"), type="pil", format="png", interactive=False, scale=3)
                curve_points = gr.Dataframe(label=w("admin.curve_points"), interactive=False, scale=2)
            with gr.Row():
                target_kind = gr.Radio([(w("admin.by_precision"), "precision"), (w("admin.by_acceptance"), "acceptance")],
                                       value="precision", label=w("admin.move_point_label"), scale=2)
                target = gr.Number(value=0.95, minimum=0.5, maximum=1.0, step=0.01, label=w("admin.target"), scale=1)
                move_button = gr.Button(w("admin.move_point"), scale=1)
                default_button = gr.Button(w("admin.back_to_default"), scale=1)
        per_intent = gr.Dataframe(label=w("admin.per_intent"), interactive=False)
        confusion = gr.Image(label=w("admin.confusion"), type="pil", format="png", interactive=False,
                             buttons=["download"])

    @admin
    def versions(selected, request: gr.Request, *, user):
        return versions_view(store, selected, words=words)

    @admin
    def show_report(version_id, request: gr.Request, *, user):
        return report_view(store, version_id, words)

    def after_change(version_id: str, note: str) -> tuple:
        return *report_view(store, version_id, words), *versions_view(store, version_id, words=words), note

    @admin
    def move_point(version_id, kind, value, request: gr.Request, *, user):
        if not version_id:
            raise DataError(w("admin.pick_to_move"))
        if value is None or kind not in TARGETS:
            raise DataError(w("admin.choose_target"))
        point = engine.set_operating_point(version_id, **{kind: float(value)}, actor=user)
        return after_change(version_id, words.say(
            "admin.moved", version=as_text(version_id), threshold=f"{point['threshold']:.4f}",
            before="–" if point["before"] is None else format(point["before"], ".4f")))

    @admin
    def default_point(version_id, request: gr.Request, *, user):
        if not version_id:
            raise DataError(w("admin.pick_first"))
        point = engine.set_operating_point(version_id, default=True, actor=user)
        return after_change(version_id, words.say("admin.back_on_default", version=as_text(version_id),
                                                  threshold=f"{point['threshold']:.4f}"))

    @admin
    def promote(version_id, request: gr.Request, *, user):
        if not version_id:
            raise DataError(w("admin.pick_to_promote"))
        engine.promote(version_id, actor=user)
        return *versions_view(store, version_id, words=words), words.say("admin.serving_now", version=as_text(version_id))

    @admin
    def rollback(request: gr.Request, *, user):
        back_to = engine.rollback(actor=user)
        return *versions_view(store, back_to, words=words), words.say("admin.rolled_back", version=as_text(back_to))

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

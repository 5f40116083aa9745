"""The admin page's Answers tab: how curated answers are held back. The threshold on the judge's
confidence that serves and how it was chosen, what it gives on the answers' own held-out phrasings,
the whole trade-off as a curve like a model version's, and the forms to move it: a threshold, a
target precision, or back to the settings'. A change is stored, so every server follows it at its
next poll, with no refit.

`answers_tab` builds the tab's components and events inside the current Blocks. This module does
not fit or calibrate anything (dialogue/ranker.py) nor store the choice (the engine does).
"""

from typing import TYPE_CHECKING

import gradio as gr

from csbot.errors import DataError
from csbot.language import Words
from csbot.web.common import guarded
from csbot.web.format import percent
from csbot.web.report import curve_image

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts
    from csbot.service.engine import Engine


def calibration_markdown(calibration: dict | None, *, answer_threshold: float, words: Words) -> str:
    """What serves, in words, from engine.answer_calibration() (None: search by similarity).

    Example: {"threshold": 0.55, "chosen_by": "precision", "target": 0.97, "point": {"right": 0.5, "wrong": 0.016,
              "precision": 0.97, "answered_uncovered": 0.14}, "covered": 385, "uncovered": 385, ...}
             -> "A curated answer is given when the judge's confidence ... reaches **0.55**, the lowest ..."
    """
    if calibration is None:
        return words.say("admin.answers_similarity", threshold=f"{answer_threshold:.2f}")
    point = calibration["point"]
    chosen = (words.say("admin.answers_by_threshold") if calibration["chosen_by"] == "threshold"
              else words.say("admin.answers_by_precision", target=percent(calibration["target"])))
    text = words.say("admin.answers_calibrated", threshold=f"{calibration['threshold']:.2f}", chosen=chosen,
                     covered=calibration["covered"], uncovered=calibration["uncovered"], right=percent(point["right"]),
                     wrong=percent(point["wrong"]), precision=percent(point["precision"]),
                     uncovered_answered=percent(point["answered_uncovered"]))
    return text + ("\n\n" + words["admin.answers_stale"] if calibration.get("stale") else "")


def curve_points(calibration: dict) -> dict:
    """The judge's curve in report.curve_image's terms: the share of held-out questions answered,
    the precision of those answers, and the uncovered questions answered.

    Example: [{"threshold": 0.5, "right": 0.6, "wrong": 0.02, "precision": 0.968, "answered_uncovered": 0.2}]
             -> {"points": [{"threshold": 0.5, "accepted": 0.62, "precision": 0.968, "oos_accepted": 0.2}]}
    """
    return {"points": [{"threshold": c["threshold"], "accepted": round(c["right"] + c["wrong"], 4),
                        "precision": c["precision"], "oos_accepted": c["answered_uncovered"]}
                       for c in calibration["curve"] if c["precision"] is not None]}


def answers_tab(page: gr.Blocks, *, engine: "Engine", accounts: "Accounts", words: Words) -> None:
    """Build the Answers tab and its events inside the current gr.Tabs."""
    admin = guarded(accounts, "admin")
    w = words.__getitem__
    target = engine.settings.answer_precision

    with gr.Tab(w("admin.answers_tab"), id="answers"):
        summary = gr.Markdown()
        picture = gr.Image(type="pil", interactive=False, show_label=False, visible=False)
        with gr.Row():
            threshold = gr.Number(label=w("admin.answers_threshold"), minimum=0.01, maximum=0.99, step=0.01)
            use_threshold = gr.Button(w("admin.answers_use_threshold"))
            precision = gr.Number(label=w("admin.answers_precision"), minimum=0.5, maximum=1.0, step=0.01)
            use_precision = gr.Button(w("admin.answers_use_precision"))
        reset = gr.Button(words.say("admin.answers_reset", target=percent(target)))

    def view(calibration: dict | None):
        text = calibration_markdown(calibration, answer_threshold=engine.settings.answer_threshold, words=words)
        if calibration is None:
            return text, gr.Image(visible=False), None, None
        points = curve_points(calibration)
        serving = next((p for p in points["points"] if p["threshold"] == calibration["point"]["threshold"]), None)
        image = curve_image(points, serving, title=w("admin.answers_curve_title"), words=words)
        return (text, gr.Image(image, visible=True), calibration["threshold"],
                calibration["target"] if calibration["chosen_by"] == "precision" else None)

    outputs = [summary, picture, threshold, precision]

    @admin
    def show(request: gr.Request, *, user):
        return view(engine.answer_calibration())

    @admin
    def set_threshold(value, request: gr.Request, *, user):
        if value is None:
            raise DataError(w("admin.answers_give_value"))
        return view(engine.set_answer_tuning(threshold=float(value), actor=user))

    @admin
    def set_precision(value, request: gr.Request, *, user):
        if value is None:
            raise DataError(w("admin.answers_give_value"))
        return view(engine.set_answer_tuning(precision=float(value), actor=user))

    @admin
    def back_to_settings(request: gr.Request, *, user):
        return view(engine.set_answer_tuning(actor=user))

    page.load(show, None, outputs, api_name="answer_calibration")
    use_threshold.click(set_threshold, threshold, outputs, api_name="answer_threshold")
    use_precision.click(set_precision, precision, outputs, api_name="answer_precision")
    reset.click(back_to_settings, None, outputs, api_name="answer_tuning_reset")

"""The admin page's Retrain tab: how many examples the next run has and on which device it runs,
start a run (optionally promoting the result if it passes the gate), cancel it, and watch it.

Training runs in a child process (jobs.py), so the tab only starts, cancels and polls it with a
`gr.Timer`; its state lives in the store, so a reload or a second admin sees the same run.
`retrain_tab` builds the tab's components and events inside the current Blocks and returns the
"Show the new version's report" button, which the package's `build_admin` wires to the Versions
tab. `status_html` and its helpers only format a job row. This module does not train, evaluate
or count examples itself: the retrainer and the store do.
"""

import html
from typing import TYPE_CHECKING

import gradio as gr

from csbot.ui.admin.format import device_label, eta
from csbot.ui.common import guarded

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.auth import Accounts
    from csbot.engine import Engine
    from csbot.jobs import Retrainer

PHASES = {"queued": "queued", "starting": "starting (loading the base model)", "collect": "collecting examples",
          "split": "splitting off held-out examples", "fine_tune": "fine-tuning",
          "export": "exporting for ONNX Runtime (and int8 if it keeps accuracy)",
          "calibrate": "calibrating the threshold", "evaluate": "evaluating on held-out examples",
          "compare": "comparing with the serving model", "done": "done"}
BAR = 'aria-label="training progress" style="width:100%"'


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
            ("Worker", job.get("worker") or ("waiting for a training worker" if status == "queued" else "–")),
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


def retrain_tab(page: gr.Blocks, *, engine: "Engine", accounts: "Accounts", retrainer: "Retrainer") -> gr.Button:
    """Build the Retrain tab and its events inside the current gr.Tabs; returns its "Show the new
    version's report" button (shown once a run is done), for the caller to wire to the Versions tab."""
    from csbot.device import device_kind

    admin = guarded(accounts, "admin")
    store = engine.store
    where = ("on a **training worker** (`python -m csbot worker`, on its GPU when it has one)"
             if retrainer.by_worker else
             f"on **{device_label(device_kind(engine.settings.device))}**, in a background process")

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

    @admin
    def training_data(request: gr.Request, *, user):
        counts = store.example_counts()
        return (f"Training will run {where}: the chat keeps answering. "
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
        retrainer.cancel(user=user)
        return status_html(retrainer.status())

    page.load(training_data, None, data_note, api_name="training_data")
    gr.on([page.load, timer.tick], train_status, None, [status, open_report], api_name="train_status",
          show_progress="hidden", trigger_mode="always_last")
    start_button.click(start_training, [epochs, auto_promote], status, api_name="start_training",
                       concurrency_id="training", concurrency_limit=1)
    cancel_button.click(cancel_training, None, status, api_name="cancel_training")
    return open_report

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

from csbot.language import Words
from csbot.web.common import guarded
from csbot.web.format import device_label, eta, one_of, when

if TYPE_CHECKING:  # annotations only (quoted: this module must not postpone them, see common.guarded)
    from csbot.service.auth import Accounts
    from csbot.service.engine import Engine
    from csbot.service.jobs import Retrainer

# The phases a run reports (engine.py, training.py, jobs.py); each has its words as admin.phase_<name>.
PHASES = ("queued", "starting", "collect", "split", "fine_tune", "export", "calibrate", "evaluate", "compare", "done")
BAR = 'aria-label="training progress" style="width:100%"'


def phase_label(phase: str | None, words: Words) -> str:
    """Example: phase_label("fine_tune (cancelling)", words) -> "fine-tuning (cancelling)" """
    base, _, rest = (phase or "").partition(" ")
    rest = words["admin.phase_cancelling"] if rest == "(cancelling)" else rest
    return " ".join(p for p in (one_of(words, "admin.phase", base), rest) if p) or "–"


def progress_text(job: dict | None, words: Words) -> str:
    """Example: {"step": 12, "total": 40} -> "step 12 / 40"; before fine-tuning (total 0) -> "" """
    return words.say("admin.step", step=job.get("step") or 0, total=job["total"]) if job and job.get("total") else ""


def status_html(job: dict | None, words: Words | None = None) -> str:
    """The latest training run as a small HTML block: a progress bar and its figures.

    Example: {"status": "running", "phase": "fine_tune", "step": 12, "total": 40, "loss": 0.81, ...}
             -> '<progress value="12" max="40" ...></progress> ... step 12 / 40 ... 0.8100 ...'
    """
    words = words or Words.load("en")
    w, e = words.__getitem__, html.escape
    if not job:
        return f"<p>{e(w('admin.no_run'))}</p>"
    status, total = job.get("status") or "?", job.get("total") or 0
    if total:
        bar = f'<progress value="{job.get("step") or 0}" max="{total}" {BAR}></progress>'
    else:  # no step count before fine-tuning starts: an indeterminate bar while it runs
        bar = f'<progress {BAR}></progress>' if status == "running" else ""
    loss = job.get("loss")
    worker = job.get("worker") or (w("admin.waiting_for_worker") if status == "queued" else "–")
    rows = [(w("admin.status"), one_of(words, "admin.status", status)),
            (w("admin.phase"), phase_label(job.get("phase"), words)),
            (w("admin.progress"), progress_text(job, words) or "–"),
            (w("admin.loss"), "–" if loss is None else f"{loss:.4f}"),
            (w("admin.elapsed"), eta(job.get("elapsed_seconds"), words)),
            (w("admin.time_left"), eta(job.get("eta_seconds"), words) if status == "running" else "–"),
            (w("admin.device"), device_label(job.get("device") or "?", words)),
            (w("admin.worker"), worker),
            (w("admin.started"), words.say("admin.started_by", when=when(job.get("started_at"), seconds=True),
                                           user=(job.get("options") or {}).get("user", "?")))]
    table = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{e(k)}</th><td>{e(str(v))}</td></tr>"
                    for k, v in rows)
    notes = []
    if status == "done" and job.get("model_version"):
        then = w("admin.promoted_if_passed" if (job.get("options") or {}).get("promote_if_better") else "admin.promote_there")
        notes.append(f"<p>{words.say('admin.new_version', version=e(job['model_version']), then=e(then))}</p>")
    if job.get("error"):
        label = w("admin.note") if status == "done" else w("admin.error")
        notes.append(f"<p><b>{e(label)}:</b> <code style='white-space:pre-wrap'>{e(job['error'])}</code></p>")
    return f"<div id='training-status'>{bar}<table>{table}</table>{''.join(notes)}</div>"


def retrain_tab(page: gr.Blocks, *, engine: "Engine", accounts: "Accounts", retrainer: "Retrainer",
                words: Words) -> gr.Button:
    """Build the Retrain tab and its events inside the current gr.Tabs; returns its "Show the new
    version's report" button (shown once a run is done), for the caller to wire to the Versions tab."""
    from csbot.nlu.device import device_kind

    admin = guarded(accounts, "admin")
    timed = guarded(accounts, "admin", renew=False)  # called by the timer too: not a user action
    store = engine.store
    where = (words["admin.on_worker"] if retrainer.by_worker else
             words.say("admin.on_device", device=device_label(device_kind(engine.settings.device), words)))

    with gr.Tab(words["admin.retrain_tab"], id="retrain"):
        data_note = gr.Markdown()
        with gr.Row():
            epochs = gr.Number(engine.settings.epochs, label=words["admin.epochs"], minimum=0.1, maximum=100, step=1)
            auto_promote = gr.Checkbox(False, label=words["admin.auto_promote"])
        with gr.Row():
            start_button = gr.Button(words["admin.start"], variant="primary")
            cancel_button = gr.Button(words["admin.cancel"], variant="stop")
        status = gr.HTML(status_html(None, words))
        open_report = gr.Button(words["admin.show_new_report"], visible=False)
        timer = gr.Timer(1.0)

    @admin
    def training_data(request: gr.Request, *, user):
        counts = store.example_counts()
        return words.say("admin.training_data", where=where, examples=f"{counts['examples']:,}",
                         staff=f"{counts['staff']:,}")

    @timed
    def train_status(request: gr.Request, *, user):
        job = retrainer.status()
        done = bool(job and job.get("status") == "done" and job.get("model_version"))
        label = (words.say("admin.show_report_of", version=job["model_version"]) if done
                 else words["admin.show_new_report"])
        return status_html(job, words), gr.update(visible=done, value=label)

    @admin
    def start_training(epochs_value, promote, request: gr.Request, *, user):
        retrainer.start(user=user, epochs=epochs_value, promote_if_better=bool(promote))
        return status_html(retrainer.status(), words)

    @admin
    def cancel_training(request: gr.Request, *, user):
        retrainer.cancel(user=user)
        return status_html(retrainer.status(), words)

    page.load(training_data, None, data_note, api_name="training_data")
    gr.on([page.load, timer.tick], train_status, None, [status, open_report], api_name="train_status",
          show_progress="hidden", trigger_mode="always_last")
    start_button.click(start_training, [epochs, auto_promote], status, api_name="start_training",
                       concurrency_id="training", concurrency_limit=1)
    cancel_button.click(cancel_training, None, status, api_name="cancel_training")
    return open_report

"""The engine: builds the real store, reply book, encoder, answer index, registry and bot from
Settings, keeps them in step with the store, and offers the few operations the CLI and the web
app share.

Heavy pieces (the encoder, the classifier) load on first use, so `init` or an import does not
pay for what it does not need. The store is the one source of truth: the engine's `Follower`
(follower.py) keeps this process's pieces in step with changes made anywhere, and no chat
message waits for a model load or an index save. Training runs hold a lease (jobs.Lease). This
module holds no business rules of its own: it wires and delegates. Answer rules live in
store/answers.py, inbox, label and out-of-scope rules in store/conversations.py, account rules in
auth.py and store/users.py, the routing order and how a new model changes routes in
dialogue/bot.py, template rules in dialogue/replies.py, the operating point in nlu/calibration.py,
and a run's pace and time left in jobs.py.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from pathlib import Path

from csbot.dialogue.replies import ReplyBook, check_covered, load_shop_file, load_templates_file
from csbot.dialogue.scrub import scrub
from csbot.errors import AnswerIndexError, DataError, ModelError, TrainingCancelled
from csbot.files import remove_stale_work
from csbot.importer import read_answers, read_history, read_logs
from csbot.language import Words
from csbot.nlu.basemodels import resolve_model_path
from csbot.service.follower import Follower
from csbot.service.jobs import Lease, Pace
from csbot.settings import Settings
from csbot.store import Store, clean_answer, clean_question, local_actor, now

log = logging.getLogger("csbot.service.engine")
HISTORY_BATCH = 2000  # customer turns scrubbed at a time on import (whole conversations)


def _conversation_batches(turns: list[dict], *, size: int):
    """(index of the first turn, turns) in batches of about `size`, never splitting a conversation
    (a name a customer gives leaves the agent's replies of the whole conversation)."""
    start = 0
    while start < len(turns):
        stop = min(len(turns), start + size)
        while stop < len(turns) and turns[stop]["conversation"] == turns[stop - 1]["conversation"]:
            stop += 1
        yield start, turns[start:stop]
        start = stop


class Engine:
    """One csbot home: its database, index, models and the bot that serves from them."""

    def __init__(self, settings: Settings, *, store: Store | None = None, encoder=None):
        self.settings = settings
        self.store = store or Store.from_settings(settings)
        self._encoder = encoder
        self._index = None
        self._webhooks = None
        self._bot = None
        self._lock = threading.RLock()  # builds the lazy pieces once; never held while serving
        self.swap_lock = threading.Lock()  # one promote / rollback / follower swap at a time
        self.follower = Follower(self)
        # the serving edge's limit on requests for a person per client (web/server.py sets it):
        # (client key) -> None to go ahead, or the words that refuse; None: no limit
        self.handoff_refusal = None

    # --- lazily built pieces ------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is not None:
            return self._encoder
        with self._lock:
            if self._encoder is None:
                self._encoder = self._load_encoder()
            return self._encoder

    def _load_encoder(self):
        """ONNX Runtime on a CPU when the runtime setting says onnx; sentence-transformers otherwise,
        or when the model cannot be exported (said in the log); numpy for the multilingual USE."""
        from csbot.nlu import runtime
        from csbot.nlu.device import device_kind
        from csbot.nlu.embedder import (
            OnnxSentenceEncoder,
            SentenceEncoder,
            UniversalSentenceEncoder,
        )

        name, settings = self.settings.retrieval_model, self.settings
        device = device_kind(settings.device)
        if name == UniversalSentenceEncoder.NAME:
            return UniversalSentenceEncoder(threads=settings.inference_threads)
        path = resolve_model_path(name, cache_dir=settings.cache_dir)
        if runtime.serves(settings.runtime, device):
            try:
                return OnnxSentenceEncoder(name, path=path, cache_dir=settings.cache_dir,
                                           threads=settings.inference_threads, quantize=settings.quantize)
            except ModelError as exc:
                log.warning("the answer encoder serves on PyTorch: %s", exc)
        return SentenceEncoder(name, path=path, device=device)

    @property
    def index(self):
        """The answer index, loaded from disk and caught up with the store (rebuilt if it is unusable)."""
        if self._index is not None:
            return self._index
        from csbot.dialogue.answers import AnswerIndex

        with self._lock:
            if self._index is None:
                try:
                    index = AnswerIndex.load(self._index_dir, self.encoder, **self._index_options)
                except AnswerIndexError as exc:
                    log.warning("%s; rebuilding the answer index from the store", exc)
                    index = AnswerIndex(self.encoder, **self._index_options)
                done = self.follower.answers(index)
                if index.needs_calibration and index.judge is None:
                    index.calibrate()  # nothing to serve meanwhile; a stale judge is recalibrated off the request path
                if done["changed"] or done["removed"]:
                    log.info("answer index caught up with the store: %s", done)
                    self.follower.index_dirty = not self.follower.save_index(index)
                self._index = index
            return self._index

    @property
    def review(self):
        """Discovery runs and the review of their proposals (review.py)."""
        from csbot.service.review import Review

        return Review(self)

    @property
    def registry(self):
        from csbot.service.registry import ModelRegistry

        return ModelRegistry(self.store, self.settings.models_dir, device=self.settings.device,
                             runtime=self.settings.runtime, threads=self.settings.inference_threads)

    @property
    def bot(self):
        if self._bot is not None:
            return self._bot
        from csbot.dialogue.bot import Bot

        with self._lock:
            if self._bot is None:
                generations = self.store.generations()
                classifier = self.follower.load_serving()
                self._bot = Bot(store=self.store, replies=self.reply_book(),
                                classifier=classifier, index=self.index,
                                answer_threshold=self.settings.answer_threshold,
                                answer_override=self.settings.answer_override,
                                max_message_chars=self.settings.max_message_chars,
                                review_confidence=self.settings.review_confidence,
                                review_answer_score=self.settings.review_answer_score,
                                handoff_intent=self.settings.handoff_intent or None,
                                handoff_refusal=lambda client: self.handoff_refusal and self.handoff_refusal(client),
                                notify=self.store.record_event)
                self.follower.seen.update(templates=generations["templates"], shop=generations["shop"],
                                          model=generations["model"])
            return self._bot

    @property
    def built_bot(self):
        """The bot if something built it already, else None (following does not build one)."""
        return self._bot

    @property
    def model_problem(self) -> str | None:
        """Why the model served is not the store's current one (said in the log and /api/health), or None."""
        return self.follower.problem

    @property
    def loaded_index(self):
        """The answer index if this process has loaded it (None: nothing to keep up yet)."""
        return self._index

    @property
    def _index_options(self) -> dict:
        s = self.settings
        return {"encoder": self.encoder.name, "dim": self.encoder.dim, "across": s.answer_across,
                "calibrated": s.answer_search == "calibrated", "precision": s.answer_precision}

    @property
    def _index_dir(self) -> Path:
        return self.settings.indexes_dir / "answers"

    def reply_book(self) -> ReplyBook:
        return ReplyBook(self.store.templates(), self.store.shop(), Words.load(self.settings.language))

    # --- following the store ------------------------------------------------------------
    def sync(self) -> dict:
        """Catch up with changes made anywhere (follower.py). Returns what changed."""
        return self.follower.sync()

    def follow(self, *, interval: float | None = None) -> None:
        """Catch up every `interval` seconds (setting sync_seconds) in a background thread. A server
        starting to follow first clears what writers that died left half-written (files.py)."""
        for folder in (self.settings.models_dir, self.settings.indexes_dir, self.settings.cache_dir):
            for stale in remove_stale_work(folder):
                log.warning("removed %s, left half-written by a process that stopped", stale)
        self.follower.start(interval=interval or self.settings.sync_seconds)
        self.webhooks.start(interval=interval or self.settings.sync_seconds)  # each delivery by one process

    def stop_following(self) -> None:
        self.follower.stop()
        self.webhooks.stop()

    @property
    def webhooks(self):
        """This process's sender of the shop's webhooks (service/webhooks.py), made on first use."""
        if self._webhooks is None:
            from csbot.service.webhooks import Sender

            self._webhooks = Sender(self.store, private=self.settings.webhook_private)
        return self._webhooks

    def add_webhook(self, *, url: str, events: list[str], actor: str) -> dict:
        """A new endpoint for the shop's webhooks; its secret is returned here once (keep it)."""
        from csbot.service.webhooks import new_secret, private_address

        url = url.strip()
        found = None if self.settings.webhook_private else private_address(url)
        if found is not None:
            raise DataError(f"{url[:200]} is at {found}, on a private network or this machine: webhooks go "
                            "to the public internet. To send to your own network, set webhook_private "
                            "(CSBOT_WEBHOOK_PRIVATE=true)")
        secret = new_secret()
        webhook_id = self.store.add_webhook(url=url, secret=secret, events=events, actor=actor)
        self.store.audit(actor, "webhook_add", url[:200], detail={"id": webhook_id, "events": events})
        return {"id": webhook_id, "secret": secret}

    def remove_webhook(self, webhook_id: int, *, actor: str) -> None:
        """Remove an endpoint and its deliveries (DataError when there is none), audited."""
        self.store.delete_webhook(webhook_id)
        self.store.audit(actor, "webhook_remove", str(webhook_id))

    def resend_webhook(self, delivery_id: int, *, actor: str) -> None:
        """Send a delivery again at the sender's next round, whatever became of it, audited."""
        self.store.resend(delivery_id)
        self.store.audit(actor, "webhook_resend", str(delivery_id))

    # --- operations -----------------------------------------------------------------------
    def readiness(self) -> list[str]:
        """Why this process should not get traffic yet; [] when it is ready: the store answers, a
        model is loaded (the current one, unless it failed here and is being retried), and the
        answer index and reply book are caught up with the store."""
        bot = self.built_bot
        if bot is None or bot.classifier is None:
            return ["no model is loaded yet"]
        if self.follower.retry is not None:  # the current model failed to load here; it is retried
            return [self.follower.problem or "the current model does not load here"]
        try:
            if not self.follower.caught_up(within=max(5.0, 5 * self.settings.sync_seconds)):
                return ["the answer index or the reply book is behind the store"]
        except Exception as exc:
            return [f"the store does not answer: {type(exc).__name__}: {exc}"]
        return []

    def load_defaults(self, data_dir: Path | None = None) -> dict:
        """Load shop facts, templates, the support log and the curated answers from a data folder.
        Everything is read and checked before anything is stored."""
        data_dir = Path(data_dir or self.settings.data_dir)
        shop = load_shop_file(data_dir / "shop.yaml")
        descriptions, templates = load_templates_file(data_dir / "templates.yaml")
        ReplyBook(templates, shop)  # raises TemplateError on any broken variant
        logs = read_logs(data_dir / "support_log.csv")
        answers = read_answers(data_dir / "answers.csv")
        check_covered({r["intent"] for r in logs}, templates, where=data_dir / "templates.yaml")
        self.store.set_shop(shop)
        self.store.set_intents({intent: (descriptions[intent], variants) for intent, variants in templates.items()})
        new_examples = self.store.add_examples(logs, source="import")
        self.store.upsert_answers(answers)
        self.store.audit(self.actor, "import_defaults", str(data_dir), detail={"answers": len(answers),
                                                                              "examples": new_examples})
        self.reindex()
        return {"intents": len(templates), "examples": len(logs), "new_examples": new_examples,
                "answers": len(answers)}

    def import_logs(self, path: Path, *, actor: str | None = None) -> dict:
        rows = read_logs(path)
        new = self.store.add_examples(rows, source="import")
        self.store.audit(actor or self.actor, "import_logs", Path(path).name, detail={"rows": len(rows), "new": new})
        return {"rows": len(rows), "new": new}

    def import_answers(self, path: Path, *, actor: str | None = None) -> dict:
        answers = read_answers(path)
        self.store.upsert_answers(answers)  # one transaction: all or nothing
        self.store.audit(actor or self.actor, "import_answers", Path(path).name, detail={"rows": len(answers)})
        self.reindex()
        return {"rows": len(answers), "answers": len(self.store.answers())}

    def import_history(self, path: Path, *, actor: str | None = None, progress=None) -> dict:
        """Import raw support history (importer.read_history): every customer turn and agent reply is
        scrubbed of personal data (dialogue/scrub.py) before anything is stored, the names a customer
        gave removed from the agent's replies too, in batches of whole conversations, each reported
        to `progress(share, what)`. Importing the same history again adds nothing."""
        from collections import Counter

        from csbot.dialogue.scrub import scrub_turns

        turns = read_history(path)
        clean, counts = [], Counter()
        for start, batch in _conversation_batches(turns, size=HISTORY_BATCH):
            if progress:
                progress(start / len(turns), "scrubbing")
            done, found = scrub_turns(batch)
            clean += done
            counts.update(found)
        counts = dict(sorted(counts.items()))
        added = self.store.add_history(name=Path(path).name, turns=clean, scrubbed=counts, actor=actor or self.actor)
        self.store.audit(actor or self.actor, "import_history", Path(path).name, detail=added)
        return {**added, "scrubbed": counts}

    def reindex(self):
        """Rebuild the answer index from the database and save it; servers following the store pick
        the change up by themselves (their index catches up with the same rows)."""
        from csbot.dialogue.answers import AnswerIndex

        answers, generation = self.store.answers_snapshot()
        index = AnswerIndex.build(answers, self.encoder, generation=generation, **self._index_options)
        index.tuning = self.store.answer_tuning()
        index.save(self._index_dir)
        with self.follower.lock:
            self._index = index
            self.follower.seen["answers"] = generation
            if self._bot is not None:
                self._bot.index = index
        return index

    @property
    def actor(self) -> str:
        """Who the audit log names for a change made without a logged-in user (store.local_actor)."""
        return local_actor()

    def train(self, *, epochs: float | None = None, device: str | None = None, report=None,
              should_stop=None, job: str | None = None, promote: bool = True, worker: str | None = None) -> dict:
        """Fine-tune on every stored example, save a version with its comparison against the serving
        model, and promote it if `promote` and the gate passes.

        The run is recorded as a job (phase, step, loss, elapsed, estimate of the time left, outcome);
        pass `job` to report into a job row made earlier (the admin page's background run, a worker's
        claim): then that row's options decide whether it promotes itself (`promote_if_better`), so
        the choice survives a restart of the server that started it. A cancel request on that row
        stops the run. A failure leaves the serving model as it was."""
        from csbot.nlu import training
        from csbot.nlu.device import device_kind

        args = training.TrainArgs.from_settings(self.settings, epochs=epochs, device=device)
        device_name = device_kind(args.device)
        if job is None:  # the CLI's own run: refused while another one holds a live lease
            now_at = self.store.clock()
            job = self.store.start_job(kind="train", device=device_name, options="{}", at=now_at,
                                       stale_before=now_at - self.settings.job_lease_seconds)
        options = json.loads(self.store.job(job).get("options") or "{}")
        if options:  # started elsewhere: what the admin chose is in the store, not in the starter's memory
            promote = bool(options.get("promote_if_better"))
        worker = worker or f"{socket.gethostname()}:{os.getpid()}"  # who runs it, as the admin page shows
        self.store.update_job(job, device=device_name, phase="starting", pid=os.getpid(), worker=worker,
                              heartbeat_at=self.store.clock())
        lease = Lease(self.store, job, worker=worker, every=self.settings.job_lease_seconds / 4)
        pace = Pace()

        def progress(p) -> None:
            self.store.update_job(job, **pace.fields(p))
            if report:
                report(p)

        def stop_requested() -> bool:
            # a cancel, or the lease lost (another process marked this run interrupted): stop either way
            row = self.store.job(job)
            return bool((should_stop and should_stop()) or row.get("cancel_requested")
                        or row.get("status") != "running")
        try:
            oos = self.store.known_out_of_scope()
            result = training.train(self.store.examples(), args, oos_texts=oos, report=progress,
                                    should_stop=stop_requested)
            registry = self.registry
            try:
                current = registry.load_current()
            except ModelError:
                current = None  # a broken current model must not block its replacement
            gate = registry.gate(result, current)
            version = registry.save(result)
            self.store.update_job(job, phase="compare", eta_seconds=None)
            try:
                comparison = self.compare(result.classifier, current)
            except Exception as exc:  # the report is a help, not a reason to lose the model
                comparison = {"error": f"{type(exc).__name__}: {exc}"}
            self.store.set_comparison(version, {"gate": gate, **comparison})
            promoted = promote and gate["passed"] and self.store.job(job)["status"] == "running"
            not_promoted = "not promoted: it did not pass the gate" if promote and not gate["passed"] else None
            if promoted:
                try:
                    self.promote(version, actor=options.get("user") or "training")
                except Exception as exc:  # the current model keeps serving; the version stays to promote by hand
                    promoted, not_promoted = False, f"not promoted: {type(exc).__name__}: {exc}"
        except BaseException as exc:
            lease.stop()
            status = "cancelled" if isinstance(exc, TrainingCancelled) else "failed"
            self.store.finish_job(job, status=status, error=f"{type(exc).__name__}: {exc}", finished_at=now(),
                                  eta_seconds=None)  # an interrupted mark made elsewhere stands
            raise
        lease.stop()
        self.store.finish_job(job, status="done", phase="done", model_version=version, finished_at=now(),
                              eta_seconds=0.0, elapsed_seconds=round(pace.elapsed, 1))
        if not_promoted:
            self.store.update_job(job, error=not_promoted)
        self.store.audit("training", "train_done", version, detail={"job": job, "promoted": promoted,
                                                                    "accuracy": result.metrics.get("accuracy")})
        return {"version": version, "promoted": promoted, "gate": gate, "job": job,
                "metrics": {k: result.metrics.get(k) for k in ("accuracy", "macro_f1", "accepted",
                                                                "accepted_precision", "known_oos_accepted", "n")},
                "threshold": round(result.classifier.threshold, 4),
                "temperature": round(result.classifier.temperature, 4),
                "train_seconds": round(result.train_seconds, 1), "device": result.classifier.meta["device"],
                "n_train": result.n_train, "n_heldout": result.n_heldout,
                "changed_on_recent": {k: comparison.get(k) for k in ("messages", "intent_changed", "route_changed")}}

    # --- staff curation: each change is live for the next customer, no retraining -----------
    def save_answer(self, *, key: str, questions: list[str], answer: str, actor: str | None = None,
                    create_only: bool = False, revision: int | None = None) -> int:
        """Create or replace the curated answer `key` and make it searchable at once, its phrasings
        scrubbed of personal data (a customer's wording kept as a phrasing keeps no e-mail, order
        number or name: dialogue/scrub.py). Returns its id.
        With `create_only`, an existing key is refused instead of replaced; with `revision` (the
        answer's as the editor opened it), a save is refused (StaleEdit) when it changed since."""
        clean = clean_answer(key=key, questions=[scrub(q) for q in questions], answer=answer,
                             max_question_chars=self.settings.max_message_chars)
        answer_id = self.store.upsert_answer(**clean, create_only=create_only, revision=revision)
        self.store.audit(actor or self.actor, "answer_save", clean["key"], detail={"id": answer_id,
                                                                                   "questions": len(clean["questions"])})
        self._catch_up_answers()
        return answer_id

    def delete_answer(self, answer_id: int, *, actor: str | None = None) -> None:
        key = self.store.answer(answer_id)["key"]
        self.store.delete_answer(answer_id)
        self.store.audit(actor or self.actor, "answer_delete", key, detail={"id": answer_id})
        self._catch_up_answers()

    def attach_question(self, answer_id: int, question: str, *, actor: str | None = None) -> None:
        """Add a customer's wording, scrubbed of personal data, to an existing answer's phrasings."""
        question = clean_question(scrub(question), max_question_chars=self.settings.max_message_chars)
        answer = self.store.add_question(answer_id, question)
        self.store.audit(actor or self.actor, "answer_attach", answer["key"], detail={"question": question[:200]})
        self._catch_up_answers()

    def answer_inbox_item(self, message_id: int, *, actor: str, answer_id: int | None = None,
                          key: str | None = None, text: str | None = None) -> None:
        """Answer an inbox message: attach it to answer `answer_id` as a new phrasing, or make it the
        first phrasing of a new answer `key` with `text` (never replacing an existing one); then the
        item is closed as answered. Either way the bot uses it for the next similar question."""
        message = self.store.inbox_message(message_id)
        if answer_id is not None:
            self.attach_question(int(answer_id), message["text"], actor=actor)
        else:
            self.save_answer(key=key or "", questions=[message["text"]], answer=text or "", actor=actor,
                             create_only=True)
        self.store.set_inbox_status(message_id, "answered")

    def reject_answer(self, message_id: int, *, actor: str) -> dict:
        """Staff confirm that the curated answer the bot gave to inbox message `message_id` (a
        customer's thumbs-down, typically) was wrong for it: that answer is never given again for
        this wording, or one closer to it than to the answer's own phrasings, in any process. The
        item stays open, to attach to the right answer. Returns the answer ({id, key})."""
        item = self.store.inbox(item=self.store.inbox_message(message_id)["id"])
        reply = self.store.message(item[0]["reply_id"]) if item and item[0].get("reply_id") else None
        if not reply or reply.get("route") != "answer" or not reply.get("answer_id"):
            raise DataError("the bot gave no curated answer to this message; only a curated answer can be "
                            "marked wrong (label the message or attach it to an answer instead)")
        answer = self.store.answer(reply["answer_id"])
        wording = clean_question(scrub(item[0]["text"]), max_question_chars=self.settings.max_message_chars)
        self.store.add_negative(answer["id"], wording, actor=actor)
        self.store.audit(actor, "answer_reject", answer["key"], detail={"message": message_id})
        self._catch_up_answers()
        return {"id": answer["id"], "key": answer["key"]}

    def set_answer_tuning(self, *, threshold: float | None = None, precision: float | None = None,
                          actor: str) -> dict:
        """Move the curated answers' operating point (a confidence threshold or a target precision;
        neither: back to the settings'), live in every process at its next poll."""
        tuning = self.store.set_answer_tuning(threshold=threshold, precision=precision, actor=actor)
        self.store.audit(actor, "answer_tuning", "answers", detail=tuning)
        self._catch_up_answers()
        return self.answer_calibration()

    def answer_calibration(self) -> dict | None:
        """What the admin page shows of the curated answers' judge: the threshold that serves, how it
        was chosen, its held-out figures, and the whole curve; None while search is by similarity."""
        index = self.index
        judge, threshold = index.judge, index.confidence_threshold
        if judge is None or threshold is None:
            return None
        tuning = index.tuning
        chosen = ("threshold" if tuning.get("threshold") is not None else "precision",
                  tuning.get("threshold") or tuning.get("precision") or index.precision)
        return {"threshold": threshold, "chosen_by": chosen[0], "target": chosen[1], "point": judge.point(threshold),
                "curve": judge.curve, "covered": judge.covered, "uncovered": judge.uncovered,
                "stale": index.needs_calibration}

    def dismiss(self, message_id: int, *, actor: str) -> None:
        self.store.inbox_message(message_id)
        self.store.set_inbox_status(message_id, "dismissed")
        self.store.audit(actor, "inbox_dismiss", str(message_id))

    def dismiss_sender(self, message_id: int, *, actor: str) -> int:
        """Dismiss every open inbox item of the sender of `message_id` at once (a flood's). How many."""
        self.store.inbox_message(message_id)
        count = self.store.dismiss_sender(message_id)
        self.store.audit(actor, "inbox_dismiss_sender", str(message_id), detail={"dismissed": count})
        return count

    def _catch_up_answers(self) -> None:
        """Serve an answer change from this process's next message (the follower saves the index)."""
        if self._index is not None:
            self.follower.answers(self._index)

    def set_templates(self, intent: str, variants: list[str], *, actor: str | None = None) -> None:
        """Replace an intent's reply variants; a variant that does not render is refused and the old ones stay."""
        variants = self.reply_book().cleaned(intent, variants)  # TemplateError with the reason
        self.store.replace_templates(intent, variants)
        self.store.audit(actor or self.actor, "templates_edit", intent, detail={"variants": len(variants)})
        self.sync()

    def label(self, message_id: int, intent: str, *, author: str) -> None:
        """Staff label a customer message with an intent: a training example for the next retrain."""
        self.store.label_message(message_id, intent, source=f"staff:{author}", scrubbed=scrub)
        self.store.audit(author, "label", intent, detail={"message": message_id})

    def compare(self, new, current, *, limit: int = 300) -> dict:
        """How the new classifier would change recent real traffic against the current one:
        how many of the last `limit` customer messages get another intent or another route."""
        texts = self.store.recent_customer_messages(limit)
        if not texts or current is None:
            return {"messages": len(texts), "intent_changed": None, "route_changed": None,
                    "against": current.version if current else None, "examples": []}
        from csbot.dialogue.bot import route_changes

        tops = [hits[0] if hits else None for hits in self.index.search_many(texts, k=1)]
        changes = route_changes(texts, tops, current.predict(texts), new.predict(texts),
                                templates=self.reply_book().templates, answer_threshold=self.settings.answer_threshold,
                                answer_override=self.settings.answer_override,
                                answer_confidence=self.index.confidence_threshold)
        return {**changes, "against": current.version}

    def promote(self, version: str, *, actor: str | None = None) -> None:
        """Serve `version`: it is loaded first (a version that does not load is refused and the
        current one stays), then named current in the store and swapped in here by reference;
        every other process follows the store within its next poll. No chat message waits."""
        with self.swap_lock:  # a promote and a rollback at once must not leave the other one serving
            classifier = self.registry.promote(version)
            if self._bot is not None:
                self._bot.set_classifier(classifier)
                self.follower.problem = None
        self.store.audit(actor or self.actor, "promote", version)

    def set_operating_point(self, version: str, *, precision: float | None = None,
                            acceptance: float | None = None, default: bool = False,
                            actor: str | None = None) -> dict:
        """Move `version`'s operating point along its saved curve, to a target precision of the
        accepted or a target acceptance (calibration.point_for), or back to the trained default.
        It serves here at once and in every other process from its next poll; no retraining.
        Returns the point chosen, with the threshold it had before."""
        from csbot.nlu.calibration import chosen_point

        row = self.store.model_version(version)
        point = chosen_point(row.get("metrics") or {}, precision=precision, acceptance=acceptance, default=default,
                             version=version)
        before = row.get("threshold")
        with self.swap_lock:  # not between a promote's load and its swap
            self.store.set_operating_point(version, point["threshold"], None if default else point)
            serving = self._bot.classifier if self._bot is not None else None
            if serving is not None and serving.version == version:
                serving.threshold = float(point["threshold"])
        detail = {k: point.get(k) for k in ("by", "target", "threshold", "accepted", "precision", "oos_accepted")}
        self.store.audit(actor or self.actor, "operating_point", version, detail={**detail, "before": before})
        return {**point, "before": before}

    def rollback(self, *, actor: str | None = None) -> str:
        with self.swap_lock:
            version, classifier = self.registry.rollback()
            if self._bot is not None:
                self._bot.set_classifier(classifier)
                self.follower.problem = None
        self.store.audit(actor or self.actor, "rollback", version)
        return version

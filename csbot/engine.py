"""The engine: builds the real store, reply book, encoder, answer index, registry and bot from
Settings, and offers the few operations the CLI and the web app share.

Heavy pieces (the encoder, the classifier) load on first use, so `init` or an import does not
pay for what it does not need. This module holds no business rules of its own: it wires and
delegates.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from csbot.errors import AnswerIndexError, DataError, ModelError, TemplateError, TrainingCancelled
from csbot.importer import read_answers, read_logs
from csbot.replies import ReplyBook, load_shop_file, load_templates_file
from csbot.settings import Settings, resolve_model_path
from csbot.store import Store, now


_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Engine:
    """One csbot home: its database, index, models and the bot that serves from them."""

    def __init__(self, settings: Settings, *, store: Store | None = None, encoder=None):
        self.settings = settings
        self.store = store or Store.open(settings.db_path)
        self._encoder = encoder
        self._index = None
        self._bot = None
        self._lock = threading.RLock()

    # --- lazily built pieces ------------------------------------------------------------
    @property
    def encoder(self):
        with self._lock:
            if self._encoder is None:
                from csbot.embedder import SentenceEncoder
                from csbot.intents import pick_device

                name = self.settings.retrieval_model
                self._encoder = SentenceEncoder(name, path=resolve_model_path(name),
                                                device=pick_device(self.settings.device).type)
            return self._encoder

    @property
    def index(self):
        from csbot.retrieval import AnswerIndex

        with self._lock:
            if self._index is None:
                try:
                    self._index = AnswerIndex.load(self._index_dir, self.encoder,
                                                   encoder=self.encoder.name, dim=self.encoder.dim)
                except AnswerIndexError:
                    self._index = self.reindex()
            return self._index

    @property
    def registry(self):
        from csbot.registry import ModelRegistry

        return ModelRegistry(self.store, self.settings.models_dir, device=self.settings.device)

    @property
    def bot(self):
        from csbot.bot import Bot

        with self._lock:
            if self._bot is None:
                self._bot = Bot(store=self.store, replies=self.reply_book(),
                                classifier=self.registry.load_current(), index=self.index,
                                answer_threshold=self.settings.answer_threshold,
                                answer_override=self.settings.answer_override,
                                max_message_chars=self.settings.max_message_chars,
                                review_confidence=self.settings.review_confidence,
                                review_answer_score=self.settings.review_answer_score,
                                handoff_intent=self.settings.handoff_intent or None)
            return self._bot

    @property
    def _index_dir(self) -> Path:
        return self.settings.indexes_dir / "answers"

    def reply_book(self) -> ReplyBook:
        return ReplyBook(self.store.templates(), self.store.shop())

    # --- operations -----------------------------------------------------------------------
    def load_defaults(self, data_dir: Path | None = None) -> dict:
        """Load shop facts, templates, the support log and the curated answers from a data folder.
        Everything is read and checked before anything is stored."""
        data_dir = Path(data_dir or self.settings.data_dir)
        shop = load_shop_file(data_dir / "shop.yaml")
        descriptions, templates = load_templates_file(data_dir / "templates.yaml")
        ReplyBook(templates, shop)  # raises TemplateError on any broken variant
        logs = read_logs(data_dir / "support_log.csv")
        answers = read_answers(data_dir / "answers.csv")
        unknown = sorted({r["intent"] for r in logs} - set(templates))
        if unknown:
            raise TemplateError(f"{data_dir / 'templates.yaml'}: intents {', '.join(unknown)} appear in the "
                                "support log but have no templates; add templates for them")
        self.store.set_shop(shop)
        for intent, variants in templates.items():
            self.store.set_intent(intent, description=descriptions[intent], templates=variants)
        new_examples = self.store.add_examples(logs, source="import")
        self.store.upsert_answers(answers)
        self.reindex()
        return {"intents": len(templates), "examples": len(logs), "new_examples": new_examples,
                "answers": len(answers)}

    def import_logs(self, path: Path) -> dict:
        rows = read_logs(path)
        return {"rows": len(rows), "new": self.store.add_examples(rows, source="import")}

    def import_answers(self, path: Path) -> dict:
        answers = read_answers(path)
        self.store.upsert_answers(answers)
        self.reindex()
        return {"rows": len(answers), "answers": len(self.store.answers())}

    def reindex(self):
        """Rebuild the answer index from the database and save it."""
        from csbot.retrieval import AnswerIndex

        with self._lock:
            index = AnswerIndex.build(self.store.answers(), self.encoder,
                                      encoder=self.encoder.name, dim=self.encoder.dim)
            index.save(self._index_dir)
            self._index = index
            if self._bot is not None:
                self._bot.index = index
            return index

    def train(self, *, epochs: float | None = None, device: str | None = None, report=None,
              should_stop=None, job: str | None = None, promote: bool = True) -> dict:
        """Fine-tune on every stored example, save a version with its comparison against the serving
        model, and promote it if `promote` and the gate passes.

        The run is recorded as a job (phase, step, loss, elapsed, estimate of the time left, outcome);
        pass `job` to report into a job row made earlier (the admin page's background run). A cancel
        request on that row stops the run. A failure leaves the serving model as it was."""
        from csbot import training
        from csbot.intents import pick_device

        args = training.TrainArgs.from_settings(self.settings, epochs=epochs, device=device)
        device_name = pick_device(args.device).type
        if job is None:
            job = self.store.create_job(kind="train", device=device_name)
        self.store.update_job(job, device=device_name, phase="starting", pid=os.getpid())
        started, tuning = time.monotonic(), {}

        def progress(p) -> None:
            elapsed = time.monotonic() - started
            fields = {"phase": p.phase, "elapsed_seconds": round(elapsed, 1)}
            if p.total:
                fields.update(step=p.step, total=p.total, loss=p.loss)
                tuning.setdefault("t0", elapsed - 1e-9)
                if p.step:  # fine-tuning is nearly all of a run: extrapolate its pace, plus a little
                    per_step = (elapsed - tuning["t0"]) / p.step
                    fields["eta_seconds"] = round(per_step * (p.total - p.step) * 1.05 + 2, 1)
            elif p.phase in ("calibrate", "evaluate"):
                fields["eta_seconds"] = 2.0
            self.store.update_job(job, **fields)
            if report:
                report(p)

        def stop_requested() -> bool:
            return bool((should_stop and should_stop()) or self.store.job(job).get("cancel_requested"))
        try:
            oos = [q["question"] for q in self.store.questions()]
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
            promoted = promote and gate["passed"]
            if promoted:
                classifier = registry.promote(version)
                if self._bot is not None:
                    self._bot.set_classifier(classifier)
        except BaseException as exc:
            status = "cancelled" if isinstance(exc, TrainingCancelled) else "failed"
            self.store.update_job(job, status=status, error=f"{type(exc).__name__}: {exc}", finished_at=now(),
                                  eta_seconds=None)
            raise
        self.store.update_job(job, status="done", phase="done", model_version=version, finished_at=now(),
                              eta_seconds=0.0, elapsed_seconds=round(time.monotonic() - started, 1))
        return {"version": version, "promoted": promoted, "gate": gate, "job": job,
                "metrics": {k: result.metrics.get(k) for k in ("accuracy", "macro_f1", "accepted",
                                                                "accepted_precision", "known_oos_accepted", "n")},
                "threshold": round(result.classifier.threshold, 4),
                "temperature": round(result.classifier.temperature, 4),
                "train_seconds": round(result.train_seconds, 1), "device": result.classifier.meta["device"],
                "n_train": result.n_train, "n_heldout": result.n_heldout,
                "changed_on_recent": {k: comparison.get(k) for k in ("messages", "intent_changed", "route_changed")}}

    # --- staff curation: each change is live for the next customer, no retraining -----------
    def save_answer(self, *, key: str, questions: list[str], answer: str) -> int:
        """Create or replace the curated answer `key` and make it searchable at once. Returns its id."""
        key, answer = (key or "").strip(), (answer or "").strip()
        questions = [q.strip() for q in questions if q and q.strip()]
        problems = []
        if not _KEY.fullmatch(key):
            problems.append(f"the key must be 1-64 letters, digits, '_' or '-'; found {key!r}")
        if not answer or len(answer) > 4000:
            problems.append(f"the answer must be 1-4,000 characters; found {len(answer):,}")
        limit = self.settings.max_message_chars  # any customer message can become a phrasing
        if not questions or any(len(q) > limit for q in questions):
            problems.append(f"give at least one question phrasing, each up to {limit:,} characters")
        if problems:
            raise DataError("the answer was not saved", problems=problems)
        with self._lock:
            answer_id = self.store.upsert_answer(key=key, questions=questions, answer=answer)
            self.index.put(answer_id, [*questions, answer])
            self.index.save(self._index_dir)
        return answer_id

    def delete_answer(self, answer_id: int) -> None:
        with self._lock:
            self.index.remove_answer(answer_id)  # unsearchable first, so no reply can pick a deleted answer
            self.store.delete_answer(answer_id)
            self.index.save(self._index_dir)

    def attach_question(self, answer_id: int, question: str) -> None:
        """Add a customer's wording to an existing answer's phrasings."""
        with self._lock:  # read and write together: two staff attaching at once must both count
            existing = self.store.answer(answer_id)
            phrasings = [q["question"] for q in self.store.questions(answer_id)]
            self.save_answer(key=existing["key"], questions=[*phrasings, question], answer=existing["answer"])

    def set_templates(self, intent: str, variants: list[str]) -> None:
        """Replace an intent's reply variants; a variant that does not render is refused and the old ones stay."""
        descriptions = self.store.intents()
        if intent not in descriptions:
            raise DataError(f"no intent {intent!r}; pick one of the list")
        variants = [v.strip() for v in variants if v and v.strip()]
        if not variants:
            raise TemplateError(f"intent {intent!r} needs at least one reply variant")
        book = self.reply_book()
        book.check(intent, variants)  # raises TemplateError with the reason
        self.store.set_intent(intent, description=descriptions[intent], templates=variants)
        if self._bot is not None:
            self._bot.replies = self.reply_book()

    def label(self, message_id: int, intent: str, *, author: str) -> None:
        """Staff label a customer message with an intent: a training example for the next retrain."""
        message = self.store.message(message_id)
        if message is None or message["role"] != "customer":
            raise DataError(f"message {message_id} is not a customer message")
        if intent not in self.store.intents():
            raise DataError(f"no intent {intent!r}; pick one of the list")
        self.store.add_examples([{"text": message["text"], "intent": intent,
                                  "created_at": message["created_at"]}], source=f"staff:{author}")
        self.store.set_inbox_status(message_id, "labelled")

    def compare(self, new, current, *, limit: int = 300) -> dict:
        """How the new classifier would change recent real traffic against the current one:
        how many of the last `limit` customer messages get another intent or another route."""
        texts = self.store.recent_customer_messages(limit)
        if not texts or current is None:
            return {"messages": len(texts), "intent_changed": None, "route_changed": None,
                    "against": current.version if current else None, "examples": []}
        from csbot.bot import route_for

        book, thresholds = self.reply_book(), dict(answer_threshold=self.settings.answer_threshold,
                                                   answer_override=self.settings.answer_override)
        tops = [hits[0].score if hits else None for hits in self.index.search_many(texts, k=1)]
        old, new_p = current.predict(texts), new.predict(texts)
        examples, intent_changed, route_changed = [], 0, 0
        for text, top, a, b in zip(texts, tops, old, new_p):
            route_a = route_for(a, top, templates=book.templates, **thresholds)
            route_b = route_for(b, top, templates=book.templates, **thresholds)
            intent_changed += a.intent != b.intent
            route_changed += route_a != route_b
            if (a.intent != b.intent or route_a != route_b) and len(examples) < 20:
                examples.append({"message": text, "current": f"{a.intent} / {route_a}", "new": f"{b.intent} / {route_b}"})
        return {"messages": len(texts), "intent_changed": intent_changed, "route_changed": route_changed,
                "against": current.version, "examples": examples}

    def promote(self, version: str) -> None:
        with self._lock:  # the store's current version and the served one change together
            classifier = self.registry.promote(version)
            if self._bot is not None:
                self._bot.set_classifier(classifier)

    def rollback(self) -> str:
        with self._lock:
            version, classifier = self.registry.rollback()
            if self._bot is not None:
                self._bot.set_classifier(classifier)
            return version

"""The engine: builds the real store, reply book, encoder, answer index, registry and bot from
Settings, and offers the few operations the CLI and the web app share.

Heavy pieces (the encoder, the classifier) load on first use, so `init` or an import does not
pay for what it does not need. This module holds no business rules of its own: it wires and
delegates.
"""

from __future__ import annotations

import threading
from pathlib import Path

from csbot.errors import AnswerIndexError, ModelError, TemplateError, TrainingCancelled
from csbot.importer import read_answers, read_logs
from csbot.replies import ReplyBook, load_shop_file, load_templates_file
from csbot.settings import Settings, resolve_model_path
from csbot.store import Store, now


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
                                max_message_chars=self.settings.max_message_chars)
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
              should_stop=None) -> dict:
        """Fine-tune on every stored example, save a version, and promote it if the gate passes.
        The run is recorded as a job (phase, step, loss, outcome); a failure leaves the serving model as it was."""
        from csbot import training
        from csbot.intents import pick_device

        args = training.TrainArgs.from_settings(self.settings, epochs=epochs, device=device)
        job = self.store.create_job(kind="train", device=pick_device(args.device).type)

        def progress(p) -> None:
            counts = {"step": p.step, "total": p.total, "loss": p.loss} if p.total else {}
            self.store.update_job(job, phase=p.phase, **counts)
            if report:
                report(p)
        try:
            oos = [q["question"] for q in self.store.questions()]
            result = training.train(self.store.examples(), args, oos_texts=oos, report=progress,
                                    should_stop=should_stop)
            registry = self.registry
            try:
                current = registry.load_current()
            except ModelError:
                current = None  # a broken current model must not block its replacement
            gate = registry.gate(result, current)
            version = registry.save(result)
            if gate["passed"]:
                classifier = registry.promote(version)
                if self._bot is not None:
                    self._bot.set_classifier(classifier)
        except BaseException as exc:
            status = "cancelled" if isinstance(exc, TrainingCancelled) else "failed"
            self.store.update_job(job, status=status, error=f"{type(exc).__name__}: {exc}", finished_at=now())
            raise
        self.store.update_job(job, status="done", phase="done", model_version=version, finished_at=now())
        return {"version": version, "promoted": gate["passed"], "gate": gate, "job": job,
                "metrics": {k: result.metrics.get(k) for k in ("accuracy", "macro_f1", "accepted",
                                                                "accepted_precision", "known_oos_accepted", "n")},
                "threshold": round(result.classifier.threshold, 4),
                "temperature": round(result.classifier.temperature, 4),
                "train_seconds": round(result.train_seconds, 1), "device": result.classifier.meta["device"],
                "n_train": result.n_train, "n_heldout": result.n_heldout}

    def promote(self, version: str) -> None:
        classifier = self.registry.promote(version)
        if self._bot is not None:
            self._bot.set_classifier(classifier)

    def rollback(self) -> str:
        version, classifier = self.registry.rollback()
        if self._bot is not None:
            self._bot.set_classifier(classifier)
        return version

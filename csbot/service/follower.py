"""Following the store: one process's serving pieces kept in step with changes made anywhere.

The store keeps a change counter per kind of shared state (store/generations.py). A `Follower`
remembers the counters its process serves and, on `sync`, catches up with what moved: curated
answers (the index re-embeds only the answers whose texts changed and drops deleted ones), the
templates and shop facts (the reply book is rebuilt), and the serving model (loaded off the
request path, then swapped in by reference, so no chat message waits) or its threshold, when
an admin moved the version's operating point. After a change to the curated answers, the
index's judge is recalibrated here too (ranker.py: seconds), off the request path. A model that fails to load (a folder still being
copied, a share briefly away) is tried again after 1 s, 2 s, 4 s ... up to a minute, and the
process says it is not ready meanwhile (engine.readiness), so a load balancer sends customers to
the replicas that serve the current model. `start` runs `sync`
every `sync_seconds` in a background thread and saves the caught-up answer index to disk at
most every few seconds, off the request path; a failing save is said loudly and retried.

This module decides nothing about replies and writes no rows: it reads the store and swaps
pieces of the engine's bot.
"""

from __future__ import annotations

import logging
import threading
import time

from csbot.errors import AnswerIndexError

log = logging.getLogger("csbot.service.follower")


class Follower:
    """What one process serves, against what the store says; `engine` owns the pieces."""

    RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds before a failed model load is tried again, doubling

    def __init__(self, engine, *, clock=time.monotonic):
        self.engine = engine
        self.clock = clock
        self.retry: tuple[str, float, float] | None = None  # (version, when, delay) of a model load to try again
        self.lock = threading.Lock()  # one catch-up of answers and templates at a time
        self._model_lock = threading.Lock()  # one model catch-up at a time
        self.seen: dict[str, int] = {}  # the store generations this process serves
        self.index_dirty = False  # caught up in memory but not yet saved to disk
        self.bad_versions: set[str] = set()  # versions that failed to load (not retried every poll)
        self.problem: str | None = None  # why the model served is not the current one (health says it)
        self.synced_at: float | None = None  # time.monotonic() of the last sync that caught up with everything
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def load_serving(self):
        """The classifier to serve at start: the current version or, when its folder is damaged, the
        newest older one that loads (said loudly: the store still names the broken one as current)."""
        classifier, problem = self.engine.registry.load_serving(skip=self.bad_versions)
        if problem:
            log.error("MODEL PROBLEM: %s", problem)
        self.problem = problem
        return classifier

    def answers(self, index) -> dict:
        """Catch `index` up with the store's answers (at start, and after this process changed one)."""
        with self.lock:
            return self._answers(index)

    def _answers(self, index) -> dict:
        answers, generation = self.engine.store.answers_snapshot()
        index.tuning = self.engine.store.answer_tuning()  # an admin's operating point: a float, no refit
        done = index.catch_up(answers, generation)
        self.seen["answers"] = generation
        self.index_dirty = self.index_dirty or bool(done["changed"] or done["removed"])
        return done

    def sync(self) -> dict:
        """Catch up with changes made anywhere; returns what changed. Safe from any thread."""
        engine = self.engine
        bot = engine.built_bot
        if bot is None:
            return {}
        failed = False
        with self.lock:
            generations = engine.store.generations()
            changed = {}
            # Each kind on its own: a failure in one (a template that no longer renders) must not
            # keep the others from catching up; the failed one is tried again at the next poll.
            if generations["answers"] != self.seen.get("answers"):
                try:
                    changed["answers"] = self._answers(engine.index)
                except Exception:
                    failed = True
                    log.exception("could not catch up with the curated answers; retrying at the next poll")
            if (generations["templates"], generations["shop"]) != (self.seen.get("templates"), self.seen.get("shop")):
                try:
                    bot.replies = engine.reply_book()
                    self.seen.update(templates=generations["templates"], shop=generations["shop"])
                    changed["templates"] = generations["templates"]
                except Exception:
                    failed = True
                    log.exception("could not rebuild the reply book; retrying at the next poll")
        # The model outside the catch-up lock: a load takes seconds, and an answer saved meanwhile
        # must not wait for it (the model lock keeps two polls from loading it twice).
        with self._model_lock:
            moved = generations["model"] != self.seen.get("model")
            if moved:
                self.bad_versions.clear()  # the serving version moved: a folder fixed since may load now
                self.retry = None
            if moved or (self.retry is not None and self.clock() >= self.retry[1]):
                changed.update(self._model(bot))
                self.seen["model"] = generations["model"]
        if not failed:
            self.synced_at = time.monotonic()
        return changed

    def caught_up(self, *, within: float) -> bool:
        """Whether this process serves what the store holds: answers and templates caught up now, or
        a sync that caught up with everything less than `within` seconds ago (a change made a moment
        ago is taken at the next poll; readiness must not flap for it)."""
        generations = self.engine.store.generations()
        now_seen = all(self.seen.get(k) == generations[k] for k in ("answers", "templates", "shop"))
        return now_seen or (self.synced_at is not None and time.monotonic() - self.synced_at < within)

    def _model(self, bot) -> dict:
        current, serving = self.engine.store.current_model(), bot.classifier
        if not current:
            return {}
        if serving and serving.version == current["id"]:
            self.problem = None  # e.g. rolled back elsewhere to the version this process fell back to
            if current.get("threshold") is not None and serving.threshold != current["threshold"]:
                serving.threshold = float(current["threshold"])  # its operating point moved: one float, no load
                return {"threshold": serving.threshold}
            return {}
        try:
            classifier = self.engine.registry.load(current["id"])  # loaded first: no message waits
        except Exception as exc:  # ModelError, or anything else a damaged folder raises
            # Tried again after 1 s, 2 s, 4 s ... up to a minute: a folder still being copied, or a
            # share briefly away, is served once it reads; a broken one costs a load a minute.
            delay = min(self.RETRY_MAX, self.retry[2] * 2) if self.retry and self.retry[0] == current["id"] \
                else self.RETRY_FIRST
            self.retry = (current["id"], self.clock() + delay, delay)
            self.bad_versions.add(current["id"])
            self.problem = (f"the current model {current['id']} does not load here ({exc}); still serving "
                            f"{serving.version if serving else 'no model'}; trying again in {delay:.0f} s")
            log.error("MODEL PROBLEM: %s", self.problem)
            return {}
        self.retry = None
        self.bad_versions.discard(current["id"])
        with self.engine.swap_lock:  # swap in only what the store still names (a promote may have raced)
            now_current = self.engine.store.current_model()
            if now_current and now_current["id"] == current["id"]:
                bot.set_classifier(classifier)
                self.problem = None
        return {"model": current["id"]}

    def start(self, *, interval: float, save_every: float = 5.0) -> None:
        """Run `sync` every `interval` seconds in a background thread, and save the caught-up answer
        index to disk at most every `save_every` seconds."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            last_save = 0.0
            while not self._stop.wait(interval):
                try:
                    self.sync()
                    index = self.engine.loaded_index
                    if index is not None and index.needs_calibration:
                        index.calibrate()  # seconds, here rather than in a request; the old judge serves meanwhile
                        self.index_dirty = True
                    if self.index_dirty and time.monotonic() - last_save >= save_every:
                        self.index_dirty = False
                        self.save_index(self.engine.index)
                        last_save = time.monotonic()
                except Exception:  # a failing poll must not end following; the next one retries
                    log.exception("catching up with the store failed; retrying in %.1f s", interval)
        self._thread = threading.Thread(target=run, daemon=True, name="csbot-follow")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def save_index(self, index) -> bool:
        """Save the index to disk; on a full or failing disk say so and keep serving from memory
        (the next save retries, and a restart rebuilds what is missing from the store)."""
        try:
            index.save(self.engine.settings.indexes_dir / "answers")
            return True
        except AnswerIndexError as exc:
            self.index_dirty = True
            log.error("%s. It keeps serving from memory; the next save retries.", exc)
            return False

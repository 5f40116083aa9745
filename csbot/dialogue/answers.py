"""The answer index: FAISS over the curated answers, each embedded as its question phrasings and
its answer text (indexing the answer's own words found the right answer for 58% rather than
42% of held-out phrasings of the demo data at similarity 0.55).

Each text is one unit vector with an id the index assigns; a search returns the best-matching
text of each answer with its cosine similarity. Adding or removing an answer changes the index at
once, no retraining. The database is the source of truth: the index remembers a fingerprint of
each answer's texts and the store's `answers` generation it has caught up to, and `catch_up`
re-embeds only the answers that changed (in this process or any other) and drops deleted ones.

On disk an index is a generation folder (`index.faiss` + `meta.json` with the encoder, dimension,
count, fingerprints and store generation) named by a `CURRENT` file that is replaced atomically,
so a crash while saving leaves the previous generation loadable. Older generations are removed
only once they are a minute old, so a save never deletes what another process is still loading.

With `calibrated` (settings.answer_search "calibrated", the default), answers are ranked by the
shop's own head, and each hit carries a `confidence`, the judge's probability that it is right
(dialogue/ranker.py): both are refitted on the curated answers as they change, and
`confidence_threshold` says what a hit must reach: the admin's choice (`tuning`, from the store),
or the judge's threshold for the target precision. Until the judge is fitted (under three answers,
under twenty held-out phrasings) or with answer_search "similarity", hits are ranked by cosine and
carry no confidence, and bot.py holds them to the cosine answer_threshold as before.

A wording staff confirmed wrong for an answer (a customer's thumbs-down, `negatives`) keeps that
answer from being returned for any message closer to the wrong wording than to the answer's own
texts: at once, in every process, as any change to the answer.

This module does not decide whether a hit is good enough (bot.py) nor embed text itself: it
calls the `encode` function it is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import faiss
import numpy as np

from csbot.dialogue import ranker
from csbot.errors import AnswerIndexError
from csbot.files import fsync_dir, write_folder, write_synced
from csbot.text import fold, unspaced

Encode = Callable[[list[str]], np.ndarray]
FORMAT = "csbot-answer-index"
FORMAT_VERSION = 3  # 3: the ranker's head and judge, whether a text is a phrasing, wrong wordings
KEEP_OLD_SECONDS = 60.0  # how long a replaced generation stays for processes still loading it
# The script of an indexed text, worked out once per text rather than once per search that meets it.
_indexed_unspaced = lru_cache(maxsize=100_000)(unspaced)


@dataclass(frozen=True)
class Hit:
    answer_id: int
    text: str  # the phrasing (or the answer text) that matched
    score: float  # cosine similarity, plus the encoder's allowance when the two are in different scripts
    confidence: float | None = None  # the judge's probability that this answer is right (calibrated search)


class AnswerIndex:
    """Question phrasings -> vectors, searchable by cosine similarity. Safe to use from several threads."""

    def __init__(self, encode: Encode, *, encoder: str, dim: int, across: float = 0.0,
                 calibrated: bool = False, precision: float = 0.97):
        self.encode = encode
        self.encoder = encoder
        self.dim = dim
        self.across = across  # added to a match between a Chinese and an English text (settings.ANSWER_SCALES)
        self.calibrated = calibrated  # rank by the shop's head and judge (ranker.py), not by cosine alone
        self.precision = precision  # the target precision the judge's threshold is chosen for
        self.tuning: dict = {"threshold": None, "precision": None}  # an admin's choice (store.answer_tuning)
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._texts: dict[int, tuple[int, str, bool]] = {}  # vector id -> (answer id, text, is a phrasing)
        self._vectors_by_id: dict[int, np.ndarray] = {}  # vector id -> its vector (what the head is fitted on)
        self._negatives: dict[int, tuple[np.ndarray, list[str]]] = {}  # answer id -> wordings confirmed wrong
        self._next_id = 0
        self._fingerprints: dict[int, str] = {}  # answer id -> fingerprint of its texts
        self._by_answer: dict[int, tuple[np.ndarray, list[str]]] | None = None  # answer id -> its texts' vectors
        self._head: ranker.Head | None = None
        self._headed: str | None = None  # the state() the head was fitted on
        self._judge: ranker.Judge | None = None
        self._judged: str | None = None  # the state() the judge was calibrated on
        self.generation = 0  # the store's `answers` generation this index has caught up to
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._index.ntotal

    @classmethod
    def build(cls, answers: list[dict], encode: Encode, *, encoder: str, dim: int,
              generation: int = 0, across: float = 0.0, calibrated: bool = False,
              precision: float = 0.97) -> AnswerIndex:
        """A new index from answers: dicts with id, questions and answer (as Store.answers() gives),
        with its judge calibrated."""
        index = cls(encode, encoder=encoder, dim=dim, across=across, calibrated=calibrated, precision=precision)
        index.catch_up(answers, generation)
        index.calibrate()
        return index

    def catch_up(self, answers: list[dict], generation: int) -> dict:
        """Make the index hold exactly `answers` (the store's rows at `generation`): re-embed the
        answers whose texts changed, add new ones, drop the ones that are gone. Returns what it did.

        Example: catch_up([{"id": 1, "questions": ["Gift wrap?"], "answer": "Yes."}], 4)
                 -> {"changed": 1, "removed": 0, "generation": 4}
        """
        wanted = {int(a["id"]): a for a in answers}
        changed = [aid for aid, a in wanted.items()
                   if self._fingerprints.get(aid) != fingerprint(texts_of(a), a.get("negatives", ()))]
        removed = [aid for aid in list(self._fingerprints) if aid not in wanted]
        for aid in removed:
            self.remove_answer(aid)
        for aid in changed:
            a = wanted[aid]
            self.put(aid, texts_of(a), answer_text=a["answer"], negatives=a.get("negatives", ()))
        with self._lock:
            self.generation = generation
        if changed or removed or (self.calibrated and self._headed != self.state()):
            self.fit_head()
        return {"changed": len(changed), "removed": len(removed), "generation": generation}

    def put(self, answer_id: int, texts: list[str], *, answer_text: str | None = None,
            negatives: list[str] | tuple = ()) -> None:
        """Make `texts` the searchable texts of answer `answer_id`, replacing any it had; `answer_text`
        (one of them) is the answer's own words, not a question phrasing; `negatives` are wordings
        staff confirmed it is wrong for. Call `fit_head` after (catch_up does)."""
        texts, negatives = _distinct(texts), _distinct(list(negatives))
        vectors = self._vectors(texts) if texts else None
        wrong = self._vectors(negatives) if negatives else None
        with self._lock:
            self.remove_answer(answer_id)
            self._fingerprints[int(answer_id)] = fingerprint(texts, negatives)
            if wrong is not None:
                self._negatives[int(answer_id)] = (wrong, negatives)
            if vectors is None:
                return
            ids = np.arange(self._next_id, self._next_id + len(texts), dtype=np.int64)
            self._next_id += len(texts)
            self._index.add_with_ids(vectors, ids)
            for vid, text, vector in zip(ids, texts, vectors):
                self._texts[int(vid)] = (int(answer_id), text, text != answer_text)
                self._vectors_by_id[int(vid)] = vector

    def remove_answer(self, answer_id: int) -> None:
        with self._lock:
            ids = [vid for vid, (aid, _, _) in self._texts.items() if aid == answer_id]
            if ids:
                self._index.remove_ids(np.array(ids, dtype=np.int64))
            for vid in ids:
                del self._texts[vid]
                self._vectors_by_id.pop(vid, None)
            self._fingerprints.pop(int(answer_id), None)
            self._negatives.pop(int(answer_id), None)
            self._by_answer = None

    # --- the shop's ranker (ranker.py) ------------------------------------------------
    def state(self) -> str:
        """A fingerprint of everything the index holds: what a head or judge was fitted on."""
        with self._lock:
            return fingerprint([f"{k}:{v}" for k, v in sorted(self._fingerprints.items())])

    def _matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """(vectors, answer ids, is a phrasing, state) of every text, in vector-id order."""
        with self._lock:
            ids = sorted(self._texts)
            vectors = (np.stack([self._vectors_by_id[v] for v in ids]) if ids
                       else np.zeros((0, self.dim), dtype=np.float32))
            return (vectors, np.array([self._texts[v][0] for v in ids], dtype=np.int64),
                    np.array([self._texts[v][2] for v in ids], dtype=bool), self.state())

    def fit_head(self) -> None:
        """Refit the head on the texts held now (calibrated search only; milliseconds to a second)."""
        if not self.calibrated:
            return
        vectors, owners, _, state = self._matrix()
        head = ranker.fit_head(vectors, owners) if len(vectors) else None
        with self._lock:
            if self.state() == state:
                self._head, self._headed = head, state

    @property
    def needs_calibration(self) -> bool:
        return self.calibrated and self._judged != self.state()

    def calibrate(self) -> ranker.Judge | None:
        """Fit the judge on held-out rounds of the texts held now (seconds: the follower does it off
        the request path after a change; the previous judge serves meanwhile)."""
        if not self.calibrated:
            return None
        vectors, owners, is_question, state = self._matrix()
        judge = ranker.calibrate(vectors, owners, is_question) if len(vectors) else None
        with self._lock:
            if self.state() == state:
                self._judge, self._judged = judge, state
        return judge

    @property
    def judge(self) -> ranker.Judge | None:
        return self._judge if self.calibrated else None

    @property
    def confidence_threshold(self) -> float | None:
        """What a hit's confidence must reach to be given: the admin's threshold, else the judge's for
        the admin's or the settings' target precision; None when hits carry no confidence."""
        judge = self.judge
        if judge is None or self._head is None:
            return None
        if self.tuning.get("threshold") is not None:
            return float(self.tuning["threshold"])
        return judge.threshold_for(self.tuning.get("precision") or self.precision)

    def search(self, text: str, *, k: int = 3) -> list[Hit]:
        """The best-matching text of each of the k most similar answers, best first.

        Example: search("can you gift wrap it?") -> [Hit(answer_id=2, text="Do you offer gift wrapping?", score=0.83), ...]
        """
        return self.search_many([text], k=k)[0]

    def search_many(self, texts: list[str], *, k: int = 3) -> list[list[Hit]]:
        """`search` for several texts with one encoder pass (the web server batches messages)."""
        vectors = self._vectors(texts)
        with self._lock:
            if self._index.ntotal == 0:
                return [[] for _ in texts]
            if self.judge is not None and self._head is not None:
                return [self._ranked(text, vector, k) for text, vector in zip(texts, vectors)]
            scores, ids = self._index.search(vectors, min(self._index.ntotal, k * 8))
            out = []
            for text, vector, row_scores, row_ids in zip(texts, vectors, scores, ids):
                hits: dict[int, Hit] = {}
                script = unspaced(text) if self.across else None
                for score, vid in zip(row_scores, row_ids):
                    if vid < 0 or int(vid) not in self._texts:
                        continue
                    answer_id, matched, _ = self._texts[int(vid)]
                    if self.across and _indexed_unspaced(matched) != script:
                        score += self.across
                    if answer_id not in hits or score > hits[answer_id].score:
                        hits[answer_id] = Hit(answer_id, matched, round(float(score), 4))
                ranked = sorted(hits.values(), key=lambda h: -h.score)
                out.append([h for h in ranked if not self._ruled_out(h.answer_id, vector, h.score, script)][:k])
        return out

    def _ranked(self, text: str, vector: np.ndarray, k: int) -> list[Hit]:
        """The head's best answers for one text, each with its closest text's cosine and the judge's
        confidence; answers ruled out for this wording are skipped. Called under the lock."""
        probabilities = self._head.probabilities(vector[None, :])[0]
        by_answer = self._answers_matrix()
        script = unspaced(text) if self.across else None
        hits = []
        for i in np.argsort(-probabilities):
            answer_id = int(self._head.answer_ids[i])
            if answer_id not in by_answer:
                continue  # deleted since the head was fitted: catch_up refits it
            matrix, texts = by_answer[answer_id]
            cosines = self._allowed(matrix @ vector, texts, script)
            best = int(cosines.argmax())
            score = float(cosines[best])
            if self._ruled_out(answer_id, vector, score, script):
                continue
            confidence = float(self._judge.confidence(probabilities[i], score))
            hits.append(Hit(answer_id, texts[best], round(score, 4), round(confidence, 4)))
            if len(hits) == k:
                break
        return hits

    def _answers_matrix(self) -> dict[int, tuple[np.ndarray, list[str]]]:
        if self._by_answer is None:
            grouped: dict[int, list[int]] = {}
            for vid, (aid, _, _) in self._texts.items():
                grouped.setdefault(aid, []).append(vid)
            self._by_answer = {aid: (np.stack([self._vectors_by_id[v] for v in vids]),
                                     [self._texts[v][1] for v in vids]) for aid, vids in grouped.items()}
        return self._by_answer

    def _allowed(self, cosines: np.ndarray, texts: list[str], script: str | None) -> np.ndarray:
        """Cosines with the encoder's allowance added where a text is in another script than the message's."""
        if not self.across:
            return cosines
        return cosines + np.array([self.across if _indexed_unspaced(t) != script else 0.0 for t in texts])

    def _ruled_out(self, answer_id: int, vector: np.ndarray, score: float, script: str | None) -> bool:
        """Whether the message is at least as close to a wording confirmed wrong for this answer as
        to the answer's own closest text (`score`)."""
        wrong = self._negatives.get(answer_id)
        return wrong is not None and float(self._allowed(wrong[0] @ vector, wrong[1], script).max()) >= score - 1e-6

    def _vectors(self, texts: list[str]) -> np.ndarray:
        # width-folded (text.fold), as the classifier reads them: "ＢＢ－４８２９１３" is BB-482913
        vectors = np.ascontiguousarray(self.encode([fold(t) for t in texts]), dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise AnswerIndexError(f"encoder {self.encoder!r} returned shape {vectors.shape}; "
                                   f"expected ({len(texts)}, {self.dim})")
        return vectors

    # --- saving and loading ---------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write a new generation under `folder` and point CURRENT at it (atomic rename). A failing
        write (a full disk) raises AnswerIndexError and leaves the previous generation as it was."""
        folder = Path(folder)
        generation = folder / f"gen-{uuid.uuid4().hex[:10]}"
        pointer = None

        def fill(work: Path) -> None:
            with self._lock:
                faiss.write_index(self._index, str(work / "index.faiss"))
                meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "encoder": self.encoder,
                        "dim": self.dim, "count": int(self._index.ntotal), "next_id": self._next_id,
                        "generation": self.generation,
                        "fingerprints": {str(k): v for k, v in sorted(self._fingerprints.items())},
                        "texts": [[vid, aid, text, question] for vid, (aid, text, question)
                                  in sorted(self._texts.items())],
                        "negatives": {str(aid): texts for aid, (_, texts) in sorted(self._negatives.items())},
                        "head": self._headed if self._head is not None else None,
                        "judge": self._judge.as_dict() if self._judge is not None else None,
                        "judged": self._judged}
                arrays = {f"negatives_{aid}": m for aid, (m, _) in self._negatives.items()}
                if self._head is not None:
                    arrays.update(head_ids=self._head.answer_ids, head_coef=self._head.coef,
                                  head_intercept=self._head.intercept)
                with open(work / "ranker.npz", "wb") as f:
                    np.savez(f, **arrays)
            (work / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        try:
            write_folder(generation, fill, exists="refuse")
            pointer = folder / f"CURRENT.{uuid.uuid4().hex[:6]}.tmp"
            write_synced(pointer, generation.name.encode())
            _mark_replaced(folder)
            os.replace(pointer, folder / "CURRENT")
            fsync_dir(folder)
        except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
            shutil.rmtree(generation, ignore_errors=True)
            if pointer is not None:
                pointer.unlink(missing_ok=True)  # ours only: another process's may be mid-rename
            raise AnswerIndexError(f"could not write the answer index to {folder} ({exc}); the previous index "
                                   "is untouched. Free some disk space, then run `python -m csbot reindex`") from None
        # Another process may have just read CURRENT and be loading the generation it named: only
        # generations replaced a while ago go (a replaced one's mtime is when it was replaced, see
        # _mark_replaced), never the one CURRENT names now.
        current = (folder / "CURRENT").read_text().strip()
        for old in folder.glob("gen-*"):
            if old.name not in (generation.name, current) and _older_than(old, KEEP_OLD_SECONDS):
                shutil.rmtree(old, ignore_errors=True)
        for stale in folder.glob("CURRENT.*.tmp"):  # left by a process killed between write and rename
            if _older_than(stale, KEEP_OLD_SECONDS):
                stale.unlink(missing_ok=True)
        return generation

    @classmethod
    def load(cls, folder: Path, encode: Encode, *, encoder: str, dim: int, across: float = 0.0,
             calibrated: bool = False, precision: float = 0.97) -> AnswerIndex:
        """Load the current generation, refusing one made by another encoder or damaged on disk."""
        folder = Path(folder)
        pointer = folder / "CURRENT"
        if not pointer.is_file():
            raise AnswerIndexError(f"no answer index in {folder}; run `python -m csbot reindex` to build one")
        generation = folder / pointer.read_text().strip()
        try:
            meta = json.loads((generation / "meta.json").read_text(encoding="utf-8"))
            raw = faiss.read_index(str(generation / "index.faiss"))
        except (OSError, ValueError, RuntimeError) as exc:
            raise AnswerIndexError(f"answer index {generation} is damaged ({exc}); "
                                   "run `python -m csbot reindex` to rebuild it from the database") from None
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise AnswerIndexError(f"answer index {generation}: expected format {FORMAT} v{FORMAT_VERSION}, "
                                   f"found {meta.get('format')} v{meta.get('format_version')}; run reindex")
        if meta.get("encoder") != encoder or meta.get("dim") != dim:
            raise AnswerIndexError(f"answer index {generation} was built with encoder {meta.get('encoder')!r} "
                                   f"(dim {meta.get('dim')}), but this csbot uses {encoder!r} (dim {dim}); run reindex")
        if raw.ntotal != meta.get("count") or len(meta.get("texts", [])) != raw.ntotal:
            raise AnswerIndexError(f"answer index {generation}: meta says {meta.get('count')} vectors, "
                                   f"index holds {raw.ntotal}; run reindex")
        try:
            with np.load(generation / "ranker.npz") as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError) as exc:
            raise AnswerIndexError(f"answer index {generation}: its ranker is damaged ({exc}); "
                                   "run `python -m csbot reindex` to rebuild it from the database") from None
        index = cls(encode, encoder=encoder, dim=dim, across=across, calibrated=calibrated, precision=precision)
        index._index = raw
        index._texts = {int(v): (int(a), t, bool(q)) for v, a, t, q in meta["texts"]}
        index._vectors_by_id = {v: raw.reconstruct(v) for v in index._texts}
        index._negatives = {int(aid): (arrays[f"negatives_{aid}"], texts) for aid, texts in meta["negatives"].items()}
        index._next_id = int(meta["next_id"])
        index._fingerprints = {int(k): v for k, v in meta.get("fingerprints", {}).items()}
        index.generation = int(meta.get("generation", 0))
        if meta.get("head") and "head_ids" in arrays:
            index._head = ranker.Head(arrays["head_ids"], arrays["head_coef"], arrays["head_intercept"])
            index._headed = meta["head"]
        if meta.get("judge"):
            index._judge, index._judged = ranker.Judge.from_dict(meta["judge"]), meta.get("judged")
        if calibrated and index._headed != index.state():
            index.fit_head()  # saved by a process with calibration off, or before its last refit
        return index


def texts_of(answer: dict) -> list[str]:
    """What an answer is searched by: its phrasings, then its own text, without repeats or blanks."""
    return _distinct([*answer["questions"], answer["answer"]])


def _distinct(texts: list[str]) -> list[str]:
    """Example: _distinct(["a", " ", "b", "a"]) -> ["a", "b"]"""
    return list(dict.fromkeys(t for t in texts if t.strip()))


def _older_than(path: Path, seconds: float) -> bool:
    """Whether `path` was last modified over `seconds` ago; False when another process removed it first."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def fingerprint(texts: list[str], negatives: list[str] | tuple = ()) -> str:
    """Example: fingerprint(["Gift wrap?", "Yes."]) -> "5f1c..." (the same texts, the same value)"""
    joined = "\x00".join(texts) + ("\x01" + "\x00".join(negatives) if negatives else "")
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()[:16]


def _mark_replaced(folder: Path) -> None:
    """Touch the generation CURRENT names, just before it is replaced: its mtime then says since
    when it is old, which is what the clean-up in `save` ages it by."""
    try:
        os.utime(folder / (folder / "CURRENT").read_text().strip())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass  # no previous generation

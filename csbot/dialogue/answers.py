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

from csbot.errors import AnswerIndexError
from csbot.files import fsync_dir, write_folder, write_synced
from csbot.text import fold, unspaced

Encode = Callable[[list[str]], np.ndarray]
FORMAT = "csbot-answer-index"
FORMAT_VERSION = 2
KEEP_OLD_SECONDS = 60.0  # how long a replaced generation stays for processes still loading it
# The script of an indexed text, worked out once per text rather than once per search that meets it.
_indexed_unspaced = lru_cache(maxsize=100_000)(unspaced)


@dataclass(frozen=True)
class Hit:
    answer_id: int
    text: str  # the phrasing (or the answer text) that matched
    score: float  # cosine similarity, plus the encoder's allowance when the two are in different scripts


class AnswerIndex:
    """Question phrasings -> vectors, searchable by cosine similarity. Safe to use from several threads."""

    def __init__(self, encode: Encode, *, encoder: str, dim: int, across: float = 0.0):
        self.encode = encode
        self.encoder = encoder
        self.dim = dim
        self.across = across  # added to a match between a Chinese and an English text (settings.ANSWER_SCALES)
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._texts: dict[int, tuple[int, str]] = {}  # vector id -> (answer id, text)
        self._next_id = 0
        self._fingerprints: dict[int, str] = {}  # answer id -> fingerprint of its texts
        self.generation = 0  # the store's `answers` generation this index has caught up to
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._index.ntotal

    @classmethod
    def build(cls, answers: list[dict], encode: Encode, *, encoder: str, dim: int,
              generation: int = 0, across: float = 0.0) -> AnswerIndex:
        """A new index from answers: dicts with id, questions and answer (as Store.answers() gives)."""
        index = cls(encode, encoder=encoder, dim=dim, across=across)
        index.catch_up(answers, generation)
        return index

    def catch_up(self, answers: list[dict], generation: int) -> dict:
        """Make the index hold exactly `answers` (the store's rows at `generation`): re-embed the
        answers whose texts changed, add new ones, drop the ones that are gone. Returns what it did.

        Example: catch_up([{"id": 1, "questions": ["Gift wrap?"], "answer": "Yes."}], 4)
                 -> {"changed": 1, "removed": 0, "generation": 4}
        """
        wanted = {int(a["id"]): texts_of(a) for a in answers}
        changed = [aid for aid, texts in wanted.items() if self._fingerprints.get(aid) != fingerprint(texts)]
        removed = [aid for aid in list(self._fingerprints) if aid not in wanted]
        for aid in removed:
            self.remove_answer(aid)
        for aid in changed:
            self.put(aid, wanted[aid])
        with self._lock:
            self.generation = generation
        return {"changed": len(changed), "removed": len(removed), "generation": generation}

    def put(self, answer_id: int, texts: list[str]) -> None:
        """Make `texts` the searchable texts of answer `answer_id`, replacing any it had."""
        texts = _distinct(texts)
        vectors = self._vectors(texts) if texts else None
        with self._lock:
            self.remove_answer(answer_id)
            self._fingerprints[int(answer_id)] = fingerprint(texts)
            if vectors is None:
                return
            ids = np.arange(self._next_id, self._next_id + len(texts), dtype=np.int64)
            self._next_id += len(texts)
            self._index.add_with_ids(vectors, ids)
            for vid, text in zip(ids, texts):
                self._texts[int(vid)] = (int(answer_id), text)

    def remove_answer(self, answer_id: int) -> None:
        with self._lock:
            ids = [vid for vid, (aid, _) in self._texts.items() if aid == answer_id]
            if ids:
                self._index.remove_ids(np.array(ids, dtype=np.int64))
            for vid in ids:
                del self._texts[vid]
            self._fingerprints.pop(int(answer_id), None)

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
            scores, ids = self._index.search(vectors, min(self._index.ntotal, k * 8))
            out = []
            for text, row_scores, row_ids in zip(texts, scores, ids):
                hits: dict[int, Hit] = {}
                script = unspaced(text) if self.across else None
                for score, vid in zip(row_scores, row_ids):
                    if vid < 0 or int(vid) not in self._texts:
                        continue
                    answer_id, matched = self._texts[int(vid)]
                    if self.across and _indexed_unspaced(matched) != script:
                        score += self.across
                    if answer_id not in hits or score > hits[answer_id].score:
                        hits[answer_id] = Hit(answer_id, matched, round(float(score), 4))
                out.append(sorted(hits.values(), key=lambda h: -h.score)[:k])
        return out

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
                        "texts": [[vid, aid, text] for vid, (aid, text) in sorted(self._texts.items())]}
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
    def load(cls, folder: Path, encode: Encode, *, encoder: str, dim: int, across: float = 0.0) -> AnswerIndex:
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
        index = cls(encode, encoder=encoder, dim=dim, across=across)
        index._index = raw
        index._texts = {int(v): (int(a), t) for v, a, t in meta["texts"]}
        index._next_id = int(meta["next_id"])
        index._fingerprints = {int(k): v for k, v in meta.get("fingerprints", {}).items()}
        index.generation = int(meta.get("generation", 0))
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


def fingerprint(texts: list[str]) -> str:
    """Example: fingerprint(["Gift wrap?", "Yes."]) -> "5f1c..." (the same texts, the same value)"""
    return hashlib.sha1("\x00".join(texts).encode("utf-8")).hexdigest()[:16]


def _mark_replaced(folder: Path) -> None:
    """Touch the generation CURRENT names, just before it is replaced: its mtime then says since
    when it is old, which is what the clean-up in `save` ages it by."""
    try:
        os.utime(folder / (folder / "CURRENT").read_text().strip())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass  # no previous generation

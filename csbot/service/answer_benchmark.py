"""How well the curated-answer search answers: a FAQ (answers in the curated-answers format) and
test questions with the key each should find (empty: no answer covers it), through exactly the
code and settings that serve, in a throwaway store that touches no home.

    python -m csbot evaluate-answers --answers A.csv --test B.csv [--json OUT]

The answers go in as a shop's import puts them (the store, then `reindex`: the index built, its
ranker fitted and its judge calibrated on these answers alone), every test text is searched as a
customer's message is, and an answer counts as given when it is good enough as serving decides:
its confidence reaches the calibrated threshold (`threshold`; `held_out` is what the judge
expected there from the answers' own held-out phrasings), or, with search by similarity, its
cosine reaches answer_threshold. The figures, each a share:
  - right: covered texts given their own answer; wrong: covered texts given another one;
  - declined_uncovered: texts no answer covers that were given none;
  - top1: covered texts whose best match is their answer, whatever the score (the ranking alone);
and the same at other thresholds (`curve`), to see what a stricter or looser one would trade.
"""

from __future__ import annotations

import csv
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from csbot.errors import DataError

CURVE = [round(0.3 + 0.05 * i, 2) for i in range(14)]  # cosines 0.30 ... 0.95 (search by similarity)
CONFIDENCES = [round(0.05 * i, 2) for i in range(1, 20)] + [0.97, 0.99]  # the judge's, 0.05 ... 0.99


def read_tests(path: Path, keys: set[str]) -> list[tuple[str, str]]:
    """(text, key) rows of a CSV with columns text and key; an empty key means no answer covers it.
    DataError for a missing column, an empty text or a key that is not one of the answers'."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"text", "key"} <= set(reader.fieldnames):
            raise DataError(f"{path}: needs the columns text and key; found {reader.fieldnames}")
        rows, problems = [], []
        for line, row in enumerate(reader, start=2):
            text, key = (row.get("text") or "").strip(), (row.get("key") or "").strip()
            if not text:
                problems.append(f"line {line}: empty text")
            elif key and key not in keys:
                problems.append(f"line {line}: key {key!r} is not one of the answers' keys")
            else:
                rows.append((text, key))
    if problems:
        raise DataError(f"{path}: {len(problems)} problem(s): {'; '.join(problems[:10])}. Fix them and run it again")
    if not rows:
        raise DataError(f"{path}: no test rows")
    return rows


def shares(tops: list[tuple[str | None, float]], expected: list[str], threshold: float) -> dict:
    """right, wrong and declined_uncovered at one threshold, from each text's best (key, score).

    Example: shares([("a", 0.9), ("b", 0.7), ("a", 0.4)], ["a", "a", ""], 0.6)
             -> {"threshold": 0.6, "right": 0.5, "wrong": 0.5, "declined_uncovered": 1.0}
    """
    covered = [(t, e) for t, e in zip(tops, expected) if e]
    uncovered = [t for t, e in zip(tops, expected) if not e]
    given = [(key, e) for (key, score), e in covered if key is not None and score >= threshold]
    out = {"threshold": threshold,
           "right": round(sum(k == e for k, e in given) / len(covered), 4) if covered else None,
           "wrong": round(sum(k != e for k, e in given) / len(covered), 4) if covered else None,
           "declined_uncovered": round(sum(key is None or score < threshold for key, score in uncovered)
                                       / len(uncovered), 4) if uncovered else None}
    return out


def run(answers: list[dict], tests: list[tuple[str, str]], settings, *, encoder=None) -> dict:
    """Build a throwaway answer store from `answers` as a shop's import would (the store, then the
    index with its ranker fitted and its judge calibrated: whatever serving learns from the answers,
    from them alone), ask every test text, and return the figures (see the module docstring).
    `settings` are the shop's; their home is not used."""
    from csbot.service.engine import Engine
    from csbot.store import Store
    from csbot.store.sqlite import SqliteDatabase

    quiet = logging.getLogger("csbot.service.engine")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a new home has no index on disk: nothing to warn about here
    with tempfile.TemporaryDirectory(prefix="csbot-answers-") as tmp:
        throwaway = replace(settings, home=Path(tmp), database_url="", artifacts_dir="")
        engine = Engine(throwaway, store=Store(SqliteDatabase(":memory:")), encoder=encoder)
        try:
            engine.encoder(["hello"])  # loaded (and exported, the first time) before timing
            loaded = time.perf_counter()
            engine.store.upsert_answers(answers)
            index = engine.reindex()
        finally:
            quiet.setLevel(level)
        keys = {row["id"]: row["key"] for row in engine.store.answers()}
        built = time.perf_counter()
        hits = index.search_many([text for text, _ in tests], k=1)
        asked = time.perf_counter()
        needed = index.confidence_threshold
        calibration = engine.answer_calibration()
        engine.store.close()
    # what decides: the judge's confidence where the index has one, else the cosine
    calibrated = needed is not None
    threshold = needed if calibrated else settings.answer_threshold
    tops = [(keys[h[0].answer_id], h[0].confidence if calibrated else h[0].score) if h else (None, float("-inf"))
            for h in hits]
    expected = [key for _, key in tests]
    covered = [i for i, key in enumerate(expected) if key]
    return {"answers": len(answers), "phrasings": sum(len(a["questions"]) for a in answers),
            "tests": len(tests), "covered": len(covered), "uncovered": len(tests) - len(covered),
            "encoder": engine.encoder.name, "search": "calibrated" if calibrated else "similarity",
            **shares(tops, expected, threshold),
            "top1": round(sum(tops[i][0] == expected[i] for i in covered) / len(covered), 4) if covered else None,
            "held_out": {k: calibration[k] for k in ("point", "covered", "uncovered")} if calibration else None,
            "curve": [shares(tops, expected, t) for t in (CONFIDENCES if calibrated else CURVE)],
            "seconds": {"build": round(built - loaded, 2), "ask": round(asked - built, 2),
                        "per_message_ms": round(1000 * (asked - built) / len(tests), 2)}}

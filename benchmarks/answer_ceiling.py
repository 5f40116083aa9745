"""How far can a confidence over the frozen encoders go? The ceiling behind issue 19's aims, on a
split of BANKING77 *train* only (the test set is not read).

    python benchmarks/answer_ceiling.py [--banking77 DIR] [--queries 2500]
                                        [--out benchmarks/results/answer_ceiling.json]

The FAQ is built as benchmarks/answer_search.py builds it (each intent one answer, its first 5
training texts its phrasings); the queries are a seeded sample of the other training texts, each
covered by its intent's answer. For each packaged encoder (all-MiniLM-L6-v2, the English default;
multilingual-e5-small; both vectors side by side), the head of dialogue/ranker.py is fitted on the
FAQ (and the Universal Sentence Encoder, multilingual v3, alone), and the script reports:

- `top1`: the share of queries whose answer the head ranks first;
- `best_at_3pct_wrong`: the most right answers at most 3% wrong, for one signal at a time, with the
  threshold chosen on the queries themselves (an upper bound for that signal, not an operating point);
- `judge_on_query_labels`: the same for a logistic regression over all six signals, fitted on the
  queries' own labels (5-fold cross-validated): an upper bound for any judge over these signals.

A benchmark: it asserts nothing. The figures are in docs/benchmarks.md, "Curated answers".
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csbot.dialogue import ranker  # noqa: E402
from csbot.nlu.basemodels import resolve_model_path  # noqa: E402
from csbot.nlu.embedder import OnnxSentenceEncoder, UniversalSentenceEncoder  # noqa: E402
from csbot.settings import DEFAULT_BASE_MODEL, MULTILINGUAL_MODEL  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks"


def split(path: Path, *, shots: int = 5, queries: int = 2500, seed: int = 3):
    by: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by.setdefault(row["category"], []).append(row["text"])
    faq, owners, asked, expected = [], [], [], []
    for i, key in enumerate(sorted(by)):
        faq += by[key][:shots]
        owners += [i] * len(by[key][:shots])
        asked += by[key][shots:]
        expected += [i] * len(by[key][shots:])
    chosen = random.Random(seed).sample(range(len(asked)), min(queries, len(asked)))
    return faq, np.array(owners), [asked[i] for i in chosen], np.array([expected[i] for i in chosen])


def best_at(score: np.ndarray, right: np.ndarray, wrong: float = 0.03) -> float:
    """Right answers at the threshold on `score` with the most of them at most `wrong` wrong."""
    order = np.argsort(-score)
    r, w = np.cumsum(right[order]), np.cumsum(~right[order])
    fits = w / len(score) <= wrong
    return round(float(r[fits].max() / len(score)), 4) if fits.any() else 0.0


def signals(vectors: np.ndarray, owners: np.ndarray, queries: np.ndarray, expected: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    head = ranker.fit_head(vectors, owners)
    probabilities = head.probabilities(queries)
    order = np.argsort(-probabilities, axis=1)
    top = head.answer_ids[order[:, 0]]
    right = top == expected
    rows = np.arange(len(queries))
    p1, p2 = probabilities[rows, order[:, 0]], probabilities[rows, order[:, 1]]
    cosines = queries @ vectors.T
    mine = owners[None, :] == top[:, None]
    s1 = np.where(mine, cosines, -1).max(axis=1)
    nearest = np.argsort(-cosines, axis=1)[:, :5]
    each = {"head probability": p1, "margin to the second": p1 - p2, "closest cosine": s1,
            "cosine margin to another answer": s1 - np.where(mine, -1, cosines).max(axis=1),
            "nearest-5 votes": (owners[nearest] == top[:, None]).mean(axis=1),
            "mean cosine": np.where(mine, cosines, 0).sum(axis=1) / mine.sum(axis=1)}
    x = np.stack(list(each.values()), axis=1)
    judged = cross_val_predict(LogisticRegression(C=10.0, max_iter=1000), x, right, cv=5, method="predict_proba")[:, 1]
    return {"top1": round(float(right.mean()), 4),
            "best_at_3pct_wrong": {name: best_at(v, right) for name, v in each.items()},
            "judge_on_query_labels": best_at(judged, right)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banking77", default=str(SHARED / "banking77"))
    parser.add_argument("--queries", type=int, default=2500)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "answer_ceiling.json"))
    args = parser.parse_args()
    faq, owners, asked, expected = split(Path(args.banking77) / "train.csv", queries=args.queries)
    vectors = {}
    with tempfile.TemporaryDirectory() as cache:
        for name in (DEFAULT_BASE_MODEL, MULTILINGUAL_MODEL):
            encoder = OnnxSentenceEncoder(name, path=resolve_model_path(name, cache_dir=Path(cache)),
                                          cache_dir=Path(cache))
            vectors[encoder.name] = (encoder(faq), encoder(asked))
    (a, qa), (b, qb) = vectors.values()
    vectors["both, side by side"] = (np.hstack([a, b]) / np.sqrt(2), np.hstack([qa, qb]) / np.sqrt(2))
    use = UniversalSentenceEncoder()
    vectors[use.name] = (use(faq), use(asked))
    results = {"faq": {"answers": int(len(set(owners))), "phrasings": len(faq)}, "queries": len(asked),
               "encoders": {}}
    for name, (v, q) in vectors.items():
        results["encoders"][name] = signals(v, owners, q, expected)
        print(name, json.dumps(results["encoders"][name]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"figures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

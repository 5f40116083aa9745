"""Which answer encoder for which language? Each candidate, as it would serve (ONNX, quantize auto,
for the transformers; numpy for USE), on the curated answers of both demo shops:

- leave one phrasing out (as answer_encoder.py): each question phrasing of each curated answer is
  searched against every other phrasing and answer text of its shop; right = the best match is
  its own answer. Counted at several score thresholds, with the wrong matches at or above them.
- across languages: benchmarks/data/crosslingual.csv has a Chinese question for each answer of the
  English shop and an English one for each answer of the Chinese shop, written by hand; each is
  searched against the other shop's answers.
- the support log's messages (a seeded sample of each shop's): how many reach a threshold with
  some curated answer. They belong to intents, so a high share means the encoder scores
  unrelated texts high and needs a higher threshold.
- one text's encoding time (the chat's case), as a ratio inside this run.
- `served`: each of the above at the encoder's own answer_threshold (settings.ANSWER_SCALES), with
  its allowance added to matches across scripts as the answer index does: what customers get.

    python benchmarks/answer_languages.py [--log-sample 400]

Figures go to benchmarks/results/answer_languages.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csbot.importer import read_answers, read_logs  # noqa: E402
from csbot.nlu import e5small  # noqa: E402
from csbot.nlu.basemodels import resolve_model_path  # noqa: E402
from csbot.nlu.embedder import OnnxSentenceEncoder, UniversalSentenceEncoder  # noqa: E402
from csbot.settings import ANSWER_SCALES, DEFAULT_BASE_MODEL  # noqa: E402
from csbot.text import unspaced  # noqa: E402

SHOPS = {"en": ROOT / "data", "zh": ROOT / "data" / "zh"}
GRID = tuple(round(x, 2) for x in (*np.arange(0.30, 0.80, 0.05), *np.arange(0.80, 0.97, 0.01)))


def corpus(answers: list[dict]) -> list[tuple[str, int]]:
    """(text, answer number) for every phrasing and answer text, as the index holds them."""
    return [(t, i) for i, a in enumerate(answers) for t in dict.fromkeys([*a["questions"], a["answer"]])]


def counts(best: list[tuple[bool, float]], threshold: float) -> dict:
    """Top-1 right, and right / wrong at or above each threshold (and the encoder's own), as shares."""
    n = len(best)
    return {"questions": n, "top1_right": round(sum(r for r, _ in best) / n, 4),
            "right_at": {str(t): round(sum(r and s >= t for r, s in best) / n, 4) for t in GRID},
            "wrong_at": {str(t): round(sum((not r) and s >= t for r, s in best) / n, 4) for t in GRID},
            "served": {"threshold": threshold, "right": round(sum(r and s >= threshold for r, s in best) / n, 4),
                       "wrong": round(sum((not r) and s >= threshold for r, s in best) / n, 4)}}


def scored(matrix: np.ndarray, owners: list, vector: np.ndarray, question: str, allowance: float) -> np.ndarray:
    """Cosines with every indexed text, plus the allowance across scripts (retrieval.AnswerIndex)."""
    similarity = matrix @ vector
    if allowance:
        script = unspaced(question)
        similarity += np.array([allowance * (unspaced(t) != script) for t, _ in owners], dtype=np.float32)
    return similarity


def leave_one_out(vectors: dict, answers: list[dict], scale: tuple) -> dict:
    owners = corpus(answers)
    matrix = np.stack([vectors[t] for t, _ in owners])
    best = []
    for i, answer in enumerate(answers):
        for question in answer["questions"]:
            similarity = scored(matrix, owners, vectors[question], question, scale[2])
            for j, (t, owner) in enumerate(owners):
                if owner == i and t == question:
                    similarity[j] = -2.0
            top = int(similarity.argmax())
            best.append((owners[top][1] == i, float(similarity[top])))
    return counts(best, scale[0])


def across(vectors: dict, answers: list[dict], questions: list[tuple[str, str]], scale: tuple) -> dict:
    owners = corpus(answers)
    keys = [a["key"] for a in answers]
    matrix = np.stack([vectors[t] for t, _ in owners])
    best = []
    for key, question in questions:
        similarity = scored(matrix, owners, vectors[question], question, scale[2])
        top = int(similarity.argmax())
        best.append((keys[owners[top][1]] == key, float(similarity[top])))
    return counts(best, scale[0])


def log_reach(vectors: dict, answers: list[dict], messages: list[str], scale: tuple) -> dict:
    owners = corpus(answers)
    matrix = np.stack([vectors[t] for t, _ in owners])
    top = np.array([float(scored(matrix, owners, vectors[m], m, scale[2]).max()) for m in messages])
    return {"messages": len(messages), "reach_at": {str(t): round(float((top >= t).mean()), 4) for t in GRID},
            "median_best": round(float(np.median(top)), 4),
            "served": {"threshold": scale[0], "reach": round(float((top >= scale[0]).mean()), 4)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-sample", type=int, default=400)
    args = parser.parse_args()
    answers = {lang: read_answers(folder / "answers.csv") for lang, folder in SHOPS.items()}
    rng = random.Random(7)
    logs = {lang: rng.sample([m["text"] for m in read_logs(folder / "support_log.csv")], args.log_sample)
            for lang, folder in SHOPS.items()}
    with open(ROOT / "benchmarks" / "data" / "crosslingual.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cross = {"zh->en": [(r["key"], r["question"]) for r in rows if r["answers"] == "data/answers.csv"],
             "en->zh": [(r["key"], r["question"]) for r in rows if r["answers"] == "data/zh/answers.csv"]}
    texts = sorted({t for shop in answers.values() for t, _ in corpus(shop)}
                   | {m for msgs in logs.values() for m in msgs} | {q for qs in cross.values() for _, q in qs})
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        cache = Path(cache)
        encoders = {
            DEFAULT_BASE_MODEL: lambda: OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=resolve_model_path(DEFAULT_BASE_MODEL),
                                                            cache_dir=cache),
            e5small.NAME: lambda: OnnxSentenceEncoder(e5small.NAME, path=resolve_model_path(e5small.NAME, cache_dir=cache),
                                                      cache_dir=cache),
            UniversalSentenceEncoder.NAME: lambda: UniversalSentenceEncoder(threads=1),
        }
        for name, make in encoders.items():
            encode = make()
            started = time.perf_counter()
            vectors = dict(zip(texts, encode(texts)))
            batch_s = time.perf_counter() - started
            lone = [a["questions"][0] for shop in answers.values() for a in shop]
            started = time.perf_counter()
            for text in lone:
                encode([text])
            one_ms = (time.perf_counter() - started) / len(lone) * 1000
            scale = ANSWER_SCALES[name]
            results[name] = {
                "serves_as": encode.name, "runtime": encode.runtime_name, "scale": scale,
                "one_text_ms": round(one_ms, 2), "batch_texts_per_s": round(len(texts) / batch_s, 1),
                **{f"loo_{lang}": leave_one_out(vectors, shop, scale) for lang, shop in answers.items()},
                "zh->en": across(vectors, answers["en"], cross["zh->en"], scale),
                "en->zh": across(vectors, answers["zh"], cross["en->zh"], scale),
                "no_allowance": {"zh->en": across(vectors, answers["en"], cross["zh->en"], (*scale[:2], 0.0))["served"],
                                 "en->zh": across(vectors, answers["zh"], cross["en->zh"], (*scale[:2], 0.0))["served"]},
                **{f"log_{lang}": log_reach(vectors, answers[lang], logs[lang], scale) for lang in SHOPS},
                "log_zh_vs_answers_en": log_reach(vectors, answers["en"], logs["zh"], scale)["served"],
                "log_en_vs_answers_zh": log_reach(vectors, answers["zh"], logs["en"], scale)["served"]}
            print(name, {k: v["top1_right"] for k, v in results[name].items() if isinstance(v, dict) and "top1_right" in v},
                  f"{one_ms:.1f} ms", flush=True)
    out = ROOT / "benchmarks" / "results" / "answer_languages.json"
    out.write_text(json.dumps(results, indent=2))
    print("\nServed, at each encoder's own thresholds (right / wrong answers given; log: share reaching one):")
    print("| encoder | threshold, allowance | en shop | zh shop | zh question, en answers | en question, zh answers "
          "| en log | zh log | one text |\n|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = [f"{r[k]['served']['right']:.1%} / {r[k]['served']['wrong']:.1%}" for k in ("loo_en", "loo_zh", "zh->en", "en->zh")]
        print(f"| {name} | {r['scale'][0]}, {r['scale'][2]} | " + " | ".join(cells)
              + f" | {r['log_en']['served']['reach']:.1%} | {r['log_zh']['served']['reach']:.1%} | {r['one_text_ms']} ms |")
    for name, r in results.items():
        print(f"\n{name} ({r['serves_as']}, {r['runtime']}): one text {r['one_text_ms']} ms")
        print("| t | " + " | ".join(f"{k} right/wrong" for k in ("loo_en", "loo_zh", "zh->en", "en->zh"))
              + " | log_en reach | log_zh reach |")
        for t in map(str, GRID):
            cells = [f"{r[k]['right_at'][t]:.2f}/{r[k]['wrong_at'][t]:.2f}" for k in ("loo_en", "loo_zh", "zh->en", "en->zh")]
            print(f"| {t} | " + " | ".join(cells) + f" | {r['log_en']['reach_at'][t]:.2f} | {r['log_zh']['reach_at'][t]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

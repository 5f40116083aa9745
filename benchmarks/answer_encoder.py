"""Does the int8 answer encoder find curated answers as well as fp32? Leave one phrasing out:
for each question phrasing of each curated answer in data/answers.csv, search every other
phrasing and answer text, and count how often the best match belongs to the right answer, and
how often it does so at or above answer_threshold and answer_override.

    python benchmarks/answer_encoder.py [--answers data/answers.csv]

Compares sentence-transformers on PyTorch, the ONNX export in fp32, and its int8 copy (the
default's choice), in one run; figures go to benchmarks/results/answer_encoder.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csbot.importer import read_answers  # noqa: E402
from csbot.nlu.basemodels import resolve_model_path  # noqa: E402
from csbot.nlu.embedder import OnnxSentenceEncoder, SentenceEncoder  # noqa: E402
from csbot.settings import ANSWER_SCALES, DEFAULT_BASE_MODEL  # noqa: E402


def leave_one_out(encode, answers: list[dict], thresholds: tuple[float, ...]) -> dict:
    texts = sorted({t for a in answers for t in [*a["questions"], a["answer"]]})
    vectors = dict(zip(texts, encode(texts)))
    owners = [(t, i) for i, a in enumerate(answers) for t in dict.fromkeys([*a["questions"], a["answer"]])]
    right, above, n = 0, dict.fromkeys(thresholds, 0), 0
    for i, answer in enumerate(answers):
        for question in answer["questions"]:
            others = [(t, owner) for t, owner in owners if not (owner == i and t == question)]
            similarity = np.array([vectors[t] @ vectors[question] for t, _ in others])
            best = int(similarity.argmax())
            n += 1
            if others[best][1] == i:
                right += 1
                for threshold in thresholds:
                    above[threshold] += bool(similarity[best] >= threshold)
    return {"phrasings": n, "top1_right": round(right / n, 4),
            **{f"right_at_{t}": round(v / n, 4) for t, v in above.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", default=str(ROOT / "data" / "answers.csv"))
    args = parser.parse_args()
    answers = read_answers(Path(args.answers))
    thresholds = ANSWER_SCALES[DEFAULT_BASE_MODEL][:2]
    path = resolve_model_path(DEFAULT_BASE_MODEL)
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        encoders = {"pytorch": SentenceEncoder(DEFAULT_BASE_MODEL, path=path),
                    "onnx fp32": OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=path, cache_dir=Path(cache), quantize="none"),
                    "onnx int8": OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=path, cache_dir=Path(cache), quantize="int8")}
        for name, encode in encoders.items():
            results[name] = leave_one_out(encode, answers, thresholds)
            lone = [a["questions"][0] for a in answers]
            started = time.perf_counter()
            for text in lone * 3:
                encode([text])
            results[name]["one_text_ms"] = round((time.perf_counter() - started) / (3 * len(lone)) * 1000, 2)
    out = ROOT / "benchmarks" / "results" / "answer_encoder.json"
    out.write_text(json.dumps(results, indent=2))
    keys = list(next(iter(results.values())))
    print("| " + " | ".join(["encoder", *keys]) + " |\n|" + "---|" * (len(keys) + 1))
    for name, figures in results.items():
        print("| " + " | ".join([name, *(str(figures[k]) for k in keys)]) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

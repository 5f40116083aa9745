"""Default-data benchmark: time `init` and `train` on the shipped demo data, then the latency of
answering one message at a time with the loaded model, and the serving process's peak memory.

    python benchmarks/serving.py [--home DIR] [--messages 1000]

Without --home it uses a fresh temporary home and trains there (in a child process, so the
serving figures below are of a process that only serves). Figures go to benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NOVEL = ["my parcel came soaking wet, what now", "can I change the colour of the sofa I ordered",
         "do you have a shop in Leeds", "how long do refunds take to show on a credit card",
         "is the oak table real wood", "I need a VAT invoice for my company", "hello?",
         "do your candles contain paraffin", "the code SPRING20 says invalid", "what's the weather"]


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return time.perf_counter() - started, done.stdout


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="an existing, trained home (default: a fresh temporary one)")
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    figures: dict = {}
    tmp = None
    home = args.home
    if home is None:
        tmp = tempfile.TemporaryDirectory()
        home = tmp.name
        figures["init_seconds"] = round(timed([sys.executable, "-m", "csbot", "init", "--home", home])[0], 1)
        seconds, summary = timed([sys.executable, "-m", "csbot", "train", "--home", home])
        figures["train_wall_seconds"] = round(seconds, 1)
        figures["train"] = json.loads(summary)

    from csbot.engine import Engine
    from csbot.importer import read_answers, read_logs
    from csbot.settings import load_settings

    started = time.perf_counter()
    engine = Engine(load_settings(home=home))
    bot = engine.bot
    bot.warm_up()
    figures["load_seconds"] = round(time.perf_counter() - started, 2)
    data = ROOT / "data"
    pool = [r["text"] for r in read_logs(data / "support_log.csv")]
    pool += [q for a in read_answers(data / "answers.csv") for q in a["questions"]] + NOVEL
    rng = random.Random(7)
    latencies, routes = [], {}
    for _ in range(args.messages):
        message = rng.choice(pool)
        t0 = time.perf_counter()
        reply = bot.respond(message, None, channel="benchmark")
        latencies.append((time.perf_counter() - t0) * 1000)
        routes[reply.route] = routes.get(reply.route, 0) + 1
    figures.update({
        "messages": args.messages, "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2), "mean_ms": round(sum(latencies) / len(latencies), 2),
        "routes": routes, "model_version": bot.classifier.version if bot.classifier else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    out = ROOT / "benchmarks" / "results" / "serving.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Default-data benchmark: time `init` and `train` on the shipped demo data, then the latency of
answering one message at a time with the loaded model, and the serving process's peak memory.

    python benchmarks/serving.py [--home DIR] [--messages 1000] [--runtime onnx|torch] [--compare]
    CSBOT_LANGUAGE=zh python benchmarks/serving.py --data data/zh --out benchmarks/results/serving_zh.json

Without --home it uses a fresh temporary home and trains there (in a child process, so the
serving figures below are of a process that only serves). Figures go to benchmarks/results/serving.json.
--compare serves the same home twice, one child process per runtime (PyTorch, then ONNX Runtime),
the same messages in the same order, and prints the two side by side (serving_compare.json).
Throughput is 16 threads calling `Bot.respond` for 20 s (the micro-batcher shares their passes).
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
    parser.add_argument("--runtime", choices=["onnx", "torch"], help="override the runtime setting")
    parser.add_argument("--compare", action="store_true", help="PyTorch beside ONNX Runtime on --home")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    parser.add_argument("--data", default=str(ROOT / "data"), help="the demo data to init from and ask from")
    args = parser.parse_args()
    if args.compare:
        return compare(args)
    figures: dict = {}
    tmp = None
    home = args.home
    if home is None:
        tmp = tempfile.TemporaryDirectory()
        home = tmp.name
        figures["init_seconds"] = round(timed([sys.executable, "-m", "csbot", "init", "--home", home,
                                                "--data", args.data])[0], 1)
        seconds, summary = timed([sys.executable, "-m", "csbot", "train", "--home", home])
        figures["train_wall_seconds"] = round(seconds, 1)
        figures["train"] = json.loads(summary)

    from csbot.importer import read_answers, read_logs
    from csbot.service.engine import Engine
    from csbot.settings import load_settings

    started = time.perf_counter()
    engine = Engine(load_settings(home=home, **({"runtime": args.runtime} if args.runtime else {})))
    bot = engine.bot
    bot.warm_up()
    figures["load_seconds"] = round(time.perf_counter() - started, 2)
    data = Path(args.data)
    pool = [r["text"] for r in read_logs(data / "support_log.csv")]
    pool += [q for a in read_answers(data / "answers.csv") for q in a["questions"]]
    pool += NOVEL if data.resolve() == (ROOT / "data").resolve() else []
    rng = random.Random(7)
    latencies, routes = [], {}
    for _ in range(args.messages):
        message = rng.choice(pool)
        t0 = time.perf_counter()
        reply = bot.respond(message, None, channel="benchmark")
        latencies.append((time.perf_counter() - t0) * 1000)
        routes[reply.route] = routes.get(reply.route, 0) + 1
    figures["threads16_per_second"] = throughput(bot, pool, threads=16, seconds=20)
    figures.update({
        "runtime": {"classifier": bot.classifier.runtime_name if bot.classifier else None,
                    "answers": engine.encoder.runtime_name},
        "messages": args.messages, "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2), "mean_ms": round(sum(latencies) / len(latencies), 2),
        "routes": routes, "model_version": bot.classifier.version if bot.classifier else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    if tmp:
        tmp.cleanup()
    return 0


def throughput(bot, pool: list[str], *, threads: int, seconds: float) -> float:
    """Messages a second answered by `threads` threads each calling bot.respond in a loop."""
    import threading

    done, stop = [0] * threads, time.perf_counter() + seconds

    def client(n: int) -> None:
        rng = random.Random(n)
        while time.perf_counter() < stop:
            bot.respond(rng.choice(pool), None, channel="benchmark")
            done[n] += 1
    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return round(sum(done) / (time.perf_counter() - started), 1)


def compare(args) -> int:
    if not args.home:
        raise SystemExit("--compare needs --home: a trained home both runtimes serve")
    results = {}
    for runtime in ("torch", "onnx"):
        out = ROOT / "benchmarks" / "results" / f"serving_{runtime}.json"
        subprocess.run([sys.executable, __file__, "--home", args.home, "--messages", str(args.messages),
                        "--runtime", runtime, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
        results[runtime] = json.loads(out.read_text())
        out.unlink()
    (ROOT / "benchmarks" / "results" / "serving_compare.json").write_text(json.dumps(results, indent=2))
    t, o = results["torch"], results["onnx"]
    print(f"| {args.messages} messages, one at a time (Bot.respond) | PyTorch | ONNX Runtime |\n|---|---|---|")
    print(f"| runtime | {t['runtime']['classifier']}; {t['runtime']['answers']} | "
          f"{o['runtime']['classifier']}; {o['runtime']['answers']} |")
    for label, key in (("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"), ("mean ms", "mean_ms"),
                       ("16 threads, messages/s", "threads16_per_second"), ("load seconds", "load_seconds"),
                       ("peak RSS MB", "peak_rss_mb")):
        print(f"| {label} | {t[key]} | {o[key]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

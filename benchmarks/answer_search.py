"""Curated answers, right, wrong or none: the calibrated search (the default) beside search by
similarity (cosine against answer_threshold, as before), on the same FAQs in one run, through
`evaluate-answers`' code (service/answer_benchmark.py: a throwaway store, nothing of a home touched).

    python benchmarks/answer_search.py [--banking77 DIR] [--smp DIR] [--home DIR] [--messages 300]
                                       [--out benchmarks/results/answer_search.json]

The FAQs:
- **BANKING77** (77 answers) and **SMP2017-ECDT** (31 answers, Chinese): each intent one answer
  whose phrasings are its first 5 training texts in file order, and whose text is "The answer
  about <intent>."; every BANKING77 test text (3,080) and SMP2017-ECDT validation text (770) must
  find its intent's answer. Nothing was tuned on these tests (ranker.py's settings came from
  BANKING77 train).
- **The demo shops** (data/answers.csv, data/zh/answers.csv): each answer's last phrasing held
  out (answers with two or more) is a covered question; 300 support-log messages, the intents'
  questions, are uncovered ones (`declined_uncovered`: how many the answers leave to the intents).

With --home (a trained home, e.g. `csbot init --home H && csbot train --home H`), the latency of
one message for each search: `Bot.respond` in process, and POST /api/chat over HTTP on
`python app.py`, on copies of the home, one message at a time, the demo's novel questions and its
log's. A benchmark: it asserts nothing. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from csbot.importer import read_answers  # noqa: E402
from csbot.service import answer_benchmark  # noqa: E402
from csbot.settings import load_settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "benchmarks"
SEARCHES = ("calibrated", "similarity")


def faq_from(path: Path, text: str, label: str, *, shots: int = 5) -> list[dict]:
    by: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if len(by.setdefault(row[label], [])) < shots:
                by[row[label]].append(row[text])
    return [{"key": key.strip("?"), "questions": qs, "answer": f"The answer about {key.strip('?')}."}
            for key, qs in sorted(by.items())]


def tests_from(path: Path, text: str, label: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        return [(row[text], row[label].strip("?")) for row in csv.DictReader(f)]


def demo(data: Path, *, uncovered: int = 300, seed: int = 7) -> tuple[list[dict], list[tuple[str, str]]]:
    answers, tests = [], []
    for a in read_answers(data / "answers.csv"):
        if len(a["questions"]) >= 2:
            tests.append((a["questions"][-1], a["key"]))
            a = {**a, "questions": a["questions"][:-1]}
        answers.append(a)
    with open(data / "support_log.csv", encoding="utf-8") as f:
        log = [row["text"] for row in csv.DictReader(f)]
    tests += [(t, "") for t in random.Random(seed).sample(log, min(uncovered, len(log)))]
    return answers, tests


def best_at(curve: list[dict], wrong: float = 0.03) -> dict | None:
    """The curve's point with the most right answers at or under `wrong` (chosen on the test itself:
    a reference for what the ranking allows, not an operating point)."""
    fits = [c for c in curve if c["wrong"] is not None and c["wrong"] <= wrong]
    return max(fits, key=lambda c: c["right"]) if fits else None


def latency(home: Path, search: str, texts: list[str]) -> dict:
    """Bot.respond in process, then POST /api/chat over HTTP, one message at a time, on copies of `home`."""
    import httpx
    from load import Server, copy_home, percentile

    from csbot.service.engine import Engine

    out = {}
    with tempfile.TemporaryDirectory(prefix="csbot-answer-latency-") as tmp:
        copy = Path(tmp) / "home"
        copy_home(home, copy)
        env = {**os.environ, "CSBOT_ANSWER_SEARCH": search}
        engine = Engine(load_settings(home=copy, environ=env))
        bot = engine.bot
        for text in texts[:20]:
            bot.respond(text)  # warm-up
        times, routes = [], {}
        for text in texts:
            started = time.perf_counter()
            reply = bot.respond(text)
            times.append(1000 * (time.perf_counter() - started))
            routes[reply.route] = routes.get(reply.route, 0) + 1
        engine.store.close()
        out["in_process_ms"] = {"p50": round(percentile(times, 50), 2), "p95": round(percentile(times, 95), 2)}
        out["routes"] = routes
        served = Path(tmp) / "served"
        copy_home(home, served)
        server = Server(served, env={**env, "CSBOT_CHAT_PER_MINUTE": "0", "CSBOT_CHAT_IP_PER_MINUTE": "0"},
                        log=Path(tmp) / "server.log")
        try:
            server.wait_ready(600)
            times = []
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for i, text in enumerate(texts[:20] + texts):
                    started = time.perf_counter()
                    client.post("/api/chat", json={"conversation_id": None, "message": text}).raise_for_status()
                    if i >= 20:
                        times.append(1000 * (time.perf_counter() - started))
        finally:
            server.stop()
        out["http_ms"] = {"p50": round(percentile(times, 50), 2), "p95": round(percentile(times, 95), 2)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banking77", default=str(SHARED / "banking77"))
    parser.add_argument("--smp", default=str(SHARED / "smp2017_ecdt"))
    parser.add_argument("--home", help="a trained home, for the latency of one message")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "answer_search.json"))
    args = parser.parse_args()

    english = load_settings(home=tempfile.gettempdir(), environ={})
    chinese = load_settings(home=tempfile.gettempdir(), environ={"CSBOT_LANGUAGE": "zh"})
    sets = []
    b77, smp = Path(args.banking77), Path(args.smp)
    if (b77 / "train.csv").is_file():
        sets.append(("BANKING77 test", english, faq_from(b77 / "train.csv", "text", "category"),
                     tests_from(b77 / "test.csv", "text", "category")))
    if (smp / "train.csv").is_file():
        sets.append(("SMP2017-ECDT validation", chinese, faq_from(smp / "train.csv", "text", "intent"),
                     tests_from(smp / "val.csv", "text", "intent")))
    sets.append(("demo shop (en)", english, *demo(ROOT / "data")))
    sets.append(("demo shop (zh)", chinese, *demo(ROOT / "data" / "zh")))

    results = {"faqs": []}
    print(f"{'FAQ':26s} {'search':11s} {'answers':>7s} {'tests':>6s} {'thresh':>6s} {'right':>6s} {'wrong':>6s} "
          f"{'declined unc.':>13s} {'top1':>6s}  best right at wrong <= 3% (on the test)")
    for name, settings, answers, tests in sets:
        for search in SEARCHES:
            figures = answer_benchmark.run(answers, tests, replace(settings, answer_search=search))
            best = best_at(figures["curve"])
            results["faqs"].append({"faq": name, "search": search, **figures, "best_at_3pct_wrong": best})
            unc = figures["declined_uncovered"]
            print(f"{name:26s} {search:11s} {figures['answers']:7d} {figures['tests']:6d} {figures['threshold']:6.2f} "
                  f"{figures['right']:6.1%} {figures['wrong']:6.1%} {'' if unc is None else f'{unc:.1%}':>13s} "
                  f"{figures['top1']:6.1%}  " + (f"{best['right']:.1%} (wrong {best['wrong']:.1%} at "
                                                 f"{best['threshold']})" if best else "none"), flush=True)
    if args.home:
        with open(ROOT / "data" / "support_log.csv", encoding="utf-8") as f:
            log = [row["text"] for row in csv.DictReader(f)]
        from serving import NOVEL

        texts = random.Random(3).sample(log, min(args.messages, len(log)) - len(NOVEL)) + NOVEL * 3
        random.Random(5).shuffle(texts)
        results["latency"] = {}
        for search in SEARCHES:
            results["latency"][search] = latency(Path(args.home), search, texts)
            print(f"latency ({search}): {results['latency'][search]}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"figures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Abuse benchmark of the running web app: what real customers see while strangers attack it.

    python benchmarks/abuse.py --home DIR [--clients 8] [--seconds 30] [--flooders 4] [--senders 4]
                               [--out benchmarks/results/abuse.json]

One server (`python app.py` on a copy of DIR, a home with a trained model), two phases of the
same length in one run:

1. **quiet**: `--clients` customers chat on POST /api/chat, each from its own address (the server
   believes X-Forwarded-For from 127.0.0.1, as behind the deploy recipe's proxy), each waiting a
   moment between messages as a person typing does;
2. **attacked**: the same customers, while one client floods "talk to a person" requests from one
   address (`--flooders` threads, each hand-off a new conversation, as fast as it can), and another
   sends large bodies (8 MB declared to /api/chat, /login and Gradio's queue, and 8 MB chunked to
   /api/chat) from `--senders` threads.

It reports the customers' p50/p95/p99 in both phases and their ratio, what the attackers got (how
many hand-offs reached the staff inbox, how the rest were refused), and the server's peak memory.
The shop's own limits stay on (hand-offs a client an hour, chat messages a client a minute), but
not the one per conversation, which these fast customers would meet before any attacker does.

A benchmark, not a test: it asserts nothing; the figures go to --out and a summary is printed.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from load import ROOT, Server, copy_home, load_arguments, log_problems, machine, peak_rss_mb, percentile, read_texts  # noqa: E402

FLOOD_TEXT = "I want a person not a chatbot!!!"  # the demo log's own wording of a hand-off
BIG = 8 * 1024 * 1024
THINK = (0.2, 0.6)  # seconds a customer waits between messages


def customer(url: str, address: str, *, texts: list[str], rng: random.Random, stop: threading.Event,
             records: list[dict]) -> None:
    cid, left = None, 0
    with httpx.Client(base_url=url, timeout=120, headers={"x-forwarded-for": address}) as client:
        while not stop.is_set():
            if left == 0:
                cid, left = None, rng.randint(3, 6)
            t0 = time.perf_counter()
            record = {"status": None}
            try:
                response = client.post("/api/chat", json={"conversation_id": cid, "message": rng.choice(texts)})
                record["status"] = response.status_code
                if response.status_code == 200:
                    cid, left = response.json()["conversation_id"], left - 1
            except httpx.HTTPError as exc:
                record["status"] = type(exc).__name__
            record["ms"] = (time.perf_counter() - t0) * 1000
            records.append(record)
            stop.wait(rng.uniform(*THINK))


def flooder(url: str, stop: threading.Event, outcomes: Counter) -> None:
    """Hand-off after hand-off from one address, each in a new conversation."""
    with httpx.Client(base_url=url, timeout=60, headers={"x-forwarded-for": "203.0.113.66"}) as client:
        while not stop.is_set():
            try:
                response = client.post("/api/chat", json={"conversation_id": None, "message": FLOOD_TEXT})
                outcomes[f"http_{response.status_code}"] += 1
            except httpx.HTTPError as exc:
                outcomes[type(exc).__name__] += 1


def big_sender(url: str, stop: threading.Event, outcomes: Counter, rng: random.Random) -> None:
    """Large bodies, declared or chunked, to the routes a stranger can reach."""
    body = b"x" * BIG

    def chunks():
        for _ in range(BIG // (256 * 1024)):
            yield body[:256 * 1024]
    targets = ["/api/chat", "/login", "/gradio_api/queue/join"]
    while not stop.is_set():
        path = rng.choice(targets)
        chunked = path == "/api/chat" and rng.random() < 0.5
        t0 = time.perf_counter()
        try:
            with httpx.Client(base_url=url, timeout=30, headers={"x-forwarded-for": "203.0.113.77"}) as client:
                response = client.post(path, content=chunks() if chunked else body,
                                       headers={"content-type": "application/octet-stream"})
                outcomes[f"{'chunked' if chunked else 'declared'} http_{response.status_code}"] += 1
        except httpx.HTTPError as exc:  # the server answered 413 and closed while the body was still going
            outcomes[f"{'chunked' if chunked else 'declared'} {type(exc).__name__}"] += 1
        outcomes["seconds"] += time.perf_counter() - t0


def phase(url: str, *, clients: int, seconds: float, texts: list[str], seed: int, flooders: int = 0,
          senders: int = 0) -> dict:
    stop, records, flood, big = threading.Event(), [], Counter(), Counter()
    threads = [threading.Thread(target=customer, args=(url, f"198.51.100.{i + 1}"), daemon=True,
                                kwargs=dict(texts=texts, rng=random.Random(seed * 100 + i), stop=stop, records=records))
               for i in range(clients)]
    threads += [threading.Thread(target=flooder, args=(url, stop, flood), daemon=True) for _ in range(flooders)]
    threads += [threading.Thread(target=big_sender, args=(url, stop, big, random.Random(seed + j)), daemon=True)
                for j in range(senders)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    ok = [r["ms"] for r in records if r["status"] == 200]
    figures = {"customers": clients, "seconds": seconds, "requests": len(records), "ok": len(ok),
               "not_ok": dict(Counter(str(r["status"]) for r in records if r["status"] != 200))}
    if ok:
        figures["latency_ms"] = {q: round(percentile(ok, int(q[1:])), 1) for q in ("p50", "p95", "p99")}
    if flooders:
        figures["handoff_flood"] = dict(flood)
    if senders:
        sent = sum(v for k, v in big.items() if k != "seconds")
        figures["large_bodies"] = {**{k: v for k, v in big.items() if k != "seconds"},
                                   "mean_seconds_to_refuse": round(big["seconds"] / max(1, sent), 3)}
    return figures


def inbox_by_sender(db: Path) -> dict:
    """Open inbox items per sender kind: the flooding client's against everyone else's."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT c.client, count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                            "WHERE m.inbox_status = 'open' GROUP BY c.client").fetchall()
    from csbot.store import client_key
    flood = client_key("203.0.113.66")
    return {"from_the_flooder": sum(n for c, n in rows if c == flood),
            "from_everyone_else": sum(n for c, n in rows if c != flood)}


def main() -> int:
    parser = load_arguments(__doc__, out="abuse.json")
    parser.set_defaults(clients=8, seconds=30)
    parser.add_argument("--flooders", type=int, default=4, help="threads of the client flooding hand-offs")
    parser.add_argument("--senders", type=int, default=4, help="threads of the client sending large bodies")
    args = parser.parse_args()
    home = Path(args.home).expanduser().resolve()
    if not (home / "csbot.db").is_file():
        print(f"error: {home} has no csbot.db; give --home a trained csbot home", file=sys.stderr)
        return 2
    texts = read_texts(ROOT / "data" / "support_log.csv")
    with tempfile.TemporaryDirectory(prefix="csbot-abuse-") as tmp:
        copy = Path(tmp) / "home"
        copy_home(home, copy)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CSBOT_")},
               "CSBOT_FORWARDED_ALLOW_IPS": "127.0.0.1", "CSBOT_CHAT_PER_MINUTE": "0",
               "CSBOT_ADMIN_PASSWORD": "abuse-benchmark-admin-pw"}
        server = Server(copy, env=env, log=Path(tmp) / "server.log")
        try:
            startup = server.wait_ready(600)
            phase(server.url, clients=args.clients, seconds=5, texts=texts, seed=args.seed)  # warm-up, not kept
            quiet = phase(server.url, clients=args.clients, seconds=args.seconds, texts=texts, seed=args.seed)
            attacked = phase(server.url, clients=args.clients, seconds=args.seconds, texts=texts, seed=args.seed,
                             flooders=args.flooders, senders=args.senders)
            inbox = inbox_by_sender(copy / "csbot.db")
            peak = peak_rss_mb(server.process.pid)
        finally:
            server.stop()
        problems = log_problems(Path(tmp) / "server.log")
    p95 = [f.get("latency_ms", {}).get("p95") for f in (quiet, attacked)]
    result = {"machine": machine(), "startup_seconds": round(startup, 1), "quiet": quiet, "attacked": attacked,
              "p95_ratio_attacked_to_quiet": round(p95[1] / p95[0], 2) if all(p95) else None,
              "open_inbox_items": inbox, "server_peak_rss_mb": peak, "server_log_problems": problems[:20]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, f in (("quiet", quiet), ("attacked", attacked)):
        print(f"{name}: {f['ok']}/{f['requests']} customer messages answered, latency {f.get('latency_ms')}")
    print(f"p95 attacked / quiet: {result['p95_ratio_attacked_to_quiet']}; hand-off flood: "
          f"{attacked.get('handoff_flood')}; large bodies: {attacked.get('large_bodies')}; "
          f"open inbox items: {inbox}; server peak {peak} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

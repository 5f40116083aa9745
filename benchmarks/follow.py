"""Benchmark of one store shared by every process: the chat under load while an admin promotes
and then rolls back a model version, and two server processes on one home under the same load.

    python benchmarks/follow.py --home DIR [--clients 16] [--seconds 60] [--seed 7]
                                [--out benchmarks/results/follow.json]

DIR must be a csbot home with a trained model; it is copied (load.py's helpers do the copying,
serving and load), and a second model version is added to the copy: the current version's
folder under a new name, so promoting it costs a real model load. Three phases, each N clients
in a closed loop on POST /api/chat for S seconds:

1. baseline: one server;
2. promote at S/3 and roll back at 2S/3, through the admin page's API, on the same server;
3. two `python app.py` processes on two ports with the one home, half the clients on each.

Each phase reports throughput, latency percentiles, errors, and whether every acknowledged
message was stored exactly once with one bot reply. Phase 2 also reports how long each admin
action took and the slowest chat request against twice the baseline's p99. A benchmark, not a
test: it asserts nothing. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from load import (  # noqa: E402
    Server,
    admin_client,
    admin_name,
    check_stored,
    copy_home,
    health,
    load_arguments,
    machine,
    max_message_id,
    read_texts,
    run_load,
    summary_line,
)

import csbot  # noqa: E402,F401  (the offline environment)


def add_copy_version(home: Path) -> tuple[str, str]:
    """Record a second version: the current one's folder under a new name. Returns (current, new)."""
    from csbot.store import Store

    store = Store.open(home / "csbot.db")
    try:
        current = store.current_model()
        new_id = current["id"] + "-bench"
        shutil.copytree(home / "models" / current["path"], home / "models" / new_id)
        meta_path = home / "models" / new_id / "meta.json"
        meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "version": new_id}))
        store.add_model_version({**{k: current[k] for k in ("base_model", "data_hash", "threshold", "device",
                                                            "train_seconds", "metrics")},
                                 "id": new_id, "path": new_id, "created_at": current["created_at"] + "-bench"})
        return current["id"], new_id
    finally:
        store.close()


def with_admin_actions(server: Server, *, user: str, password: str, new: str, load_args: dict) -> dict:
    """The load, with a promote at 1/3 and a rollback at 2/3 of it, timed from the admin's side."""
    admin = admin_client(server.url, user=user, password=password)
    seconds = load_args["seconds"]
    actions: list[dict] = []

    def act() -> None:
        for at, name, call in ((seconds / 3, "promote", lambda: admin.predict(new, api_name="/promote")),
                               (2 * seconds / 3, "rollback", lambda: admin.predict(api_name="/rollback"))):
            time.sleep(max(0.0, at - (time.perf_counter() - started)))
            t0 = time.perf_counter()
            try:
                call()
                error = None
            except Exception as exc:  # counted, not raised: a benchmark measures
                error = f"{type(exc).__name__}: {exc}"[:200]
            actions.append({"action": name, "at_s": round(t0 - started, 2), "took_s": round(time.perf_counter() - t0, 2),
                            "serving_after": health(server.url).get("model_version"), "error": error})
    started = time.perf_counter()
    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    figures, records = run_load(server.url, **load_args)
    thread.join(timeout=120)
    figures["admin_actions"] = actions
    return figures, records


def main() -> int:
    args = load_arguments(__doc__, out="follow.json").parse_args()
    home = Path(args.home).expanduser().resolve()
    texts = read_texts(ROOT / "data" / "support_log.csv")
    figures: dict = {"command": sys.argv, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": machine()}
    tmp = Path(tempfile.mkdtemp(prefix="csbot-follow-"))
    servers: list[Server] = []
    try:
        copy = tmp / "home"
        copy_home(home, copy)
        current, new = add_copy_version(copy)
        password = secrets.token_urlsafe(18)
        user, _ = admin_name(copy / "csbot.db", password)
        env = {**os.environ, "CSBOT_CHAT_PER_MINUTE": "0", "CSBOT_CHAT_IP_PER_MINUTE": "0",
               "CSBOT_ADMIN_PASSWORD": password}
        a = Server(copy, env=env, log=tmp / "server-a.log")
        servers.append(a)
        a.wait_ready(600)
        load_args = dict(clients=args.clients, seconds=args.seconds, texts=texts, seed=args.seed, timeout=args.timeout)
        run_load(a.url, **{**load_args, "seconds": 5, "seed": args.seed + 100})  # warm-up, not recorded

        after = max_message_id(copy / "csbot.db")
        base, records = run_load(a.url, **load_args)
        base["stored"] = check_stored(copy / "csbot.db", records, after_id=after)
        figures["baseline"] = base
        print(summary_line("baseline", base), flush=True)

        after = max_message_id(copy / "csbot.db")
        swap, records = with_admin_actions(a, user=user, password=password, new=new,
                                           load_args={**load_args, "seed": args.seed + 1})
        swap["stored"] = check_stored(copy / "csbot.db", records, after_id=after)
        p99 = base.get("latency_ms", {}).get("p99")
        slowest = swap.get("latency_ms", {}).get("max")
        swap["versus_baseline"] = {"p99_ratio": round(swap["latency_ms"]["p99"] / p99, 2) if p99 else None,
                                   "slowest_ms": slowest, "twice_baseline_p99_ms": round(2 * p99, 1) if p99 else None,
                                   "requests_over_twice_baseline_p99": sum(
                                       1 for r in records if r["status"] == 200 and p99 and r["ms"] > 2 * p99)}
        figures["promote_and_rollback"] = swap
        print(summary_line("promote+rollback", swap), flush=True)
        print(f"  actions: {swap['admin_actions']}; p99 x{swap['versus_baseline']['p99_ratio']}; "
              f"{swap['versus_baseline']['requests_over_twice_baseline_p99']} requests over 2x the baseline p99",
              flush=True)

        b = Server(copy, env=env, log=tmp / "server-b.log")
        servers.append(b)
        b.wait_ready(600)
        after = max_message_id(copy / "csbot.db")
        half = max(1, args.clients // 2)
        results: dict = {}

        def phase(name: str, server: Server, clients: int, seed: int) -> None:
            results[name] = run_load(server.url, **{**load_args, "clients": clients, "seed": seed})
        threads = [threading.Thread(target=phase, args=("a", a, half, args.seed + 2)),
                   threading.Thread(target=phase, args=("b", b, args.clients - half, args.seed + 3))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        combined = [*results["a"][1], *results["b"][1]]
        ok = sum(1 for r in combined if r["status"] == 200)
        seconds = max(results["a"][0]["seconds"], results["b"][0]["seconds"])
        two = {"per_server": {k: v[0] for k, v in results.items()}, "requests": len(combined), "ok": ok,
               "errors": len(combined) - ok, "requests_per_second": round(len(combined) / seconds, 2),
               "stored": check_stored(copy / "csbot.db", combined, after_id=after)}
        figures["two_servers"] = two
        print(f"two servers: {two['requests_per_second']} req/s, {two['errors']} errors, stored: {two['stored']}",
              flush=True)
    finally:
        for server in servers:
            server.stop()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2, default=str))
        print(f"follow: figures in {out}", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark of csbot beyond one machine's store: what a chat message costs the store on SQLite
and on PostgreSQL, /api/chat with one and with two replicas behind nginx, and a rolling restart
of both replicas under load.

    python benchmarks/replicas.py --home DIR [--clients 16] [--seconds 40] [--seed 7]
                                  [--messages 300] [--out benchmarks/results/replicas.json]

DIR must be a csbot home with a trained model (SQLite); it is not changed. The script starts a
throwaway PostgreSQL cluster (tests/pgcluster.py), copies the home's store into it with
`python -m csbot copy-store`, and the home's models into a shared artifacts folder. Phases:

1. store cost: in this process, the real bot answers `--messages` chat messages on a copy of the
   SQLite store, then on the PostgreSQL one; every Store method call is timed (outermost calls
   only), so the figure is the store's share of each message, the model's excluded.
2. scale: nginx with deploy/nginx.conf (its `server` lines pointed at local replicas, its chat
   rate limit raised: every client here is 127.0.0.1) in front of one replica, then of two, each
   with N clients on POST /api/chat for S seconds.
3. rolling restart: N clients through nginx to the two replicas while A gets SIGTERM, is started
   again and waits for /api/ready, then the same for B. Errors and the slowest request.

Every load phase checks that each acknowledged message was stored exactly once with one bot
reply. A benchmark, not a test: it asserts nothing. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from load import (  # noqa: E402
    Server,
    check_stored,
    copy_home,
    free_port,
    load_arguments,
    machine,
    max_message_id,
    percentile,
    read_texts,
    run_load,
    summary_line,
)
from pgcluster import Cluster  # noqa: E402

import csbot  # noqa: E402,F401  (the offline environment)

# --- 1. the store's cost per chat message ---------------------------------------------------
DRAIN = 5.0  # CSBOT_DRAIN_SECONDS of the replicas
SETTLE = 6.0  # after a restarted replica is ready, before the next restart: nginx.conf's fail_timeout + 1 s


def timed_store(store) -> dict:
    """Wrap every public Store method of this instance in a timer; returns the running totals.
    Calls made inside another Store method are not counted twice."""
    from csbot.store import Store

    totals, depth = {"seconds": 0.0, "calls": 0}, threading.local()
    for name in dir(Store):
        method = getattr(store, name)
        if name.startswith("_") or not callable(method) or name in ("open", "from_settings"):
            continue

        def wrapper(*args, _method=method, **kwargs):
            outer = getattr(depth, "n", 0) == 0
            depth.n = getattr(depth, "n", 0) + 1
            t0 = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                depth.n -= 1
                if outer:
                    totals["seconds"] += time.perf_counter() - t0
                    totals["calls"] += 1
        setattr(store, name, wrapper)
    return totals


def store_cost(where, *, home: Path, artifacts: Path, texts: list[str], messages: int) -> dict:
    from csbot.service.engine import Engine
    from csbot.settings import load_settings
    from csbot.store import Store

    settings = load_settings(home=home, environ={}, artifacts_dir=str(artifacts),
                             database_url=where if isinstance(where, str) else "")
    store = Store.from_settings(settings)
    engine = Engine(settings, store=store)
    bot = engine.bot
    bot.warm_up()
    totals = timed_store(store)
    per_message, wall, cid = [], [], None
    for i in range(messages):
        if i % 5 == 0:
            cid = None
        before, t0 = totals["seconds"], time.perf_counter()
        reply = bot.respond(texts[i % len(texts)], cid, channel="bench")
        wall.append((time.perf_counter() - t0) * 1000)
        per_message.append((totals["seconds"] - before) * 1000)
        cid = reply.conversation_id
    calls = totals["calls"] / messages
    engine.stop_following()
    store.close()
    return {"engine": store.db.dialect.name, "messages": messages, "store_calls_per_message": round(calls, 1),
            "store_ms_per_message": {"p50": round(percentile(per_message, 50), 2),
                                     "p95": round(percentile(per_message, 95), 2),
                                     "mean": round(sum(per_message) / messages, 2)},
            "reply_ms": {"p50": round(percentile(wall, 50), 1), "mean": round(sum(wall) / messages, 1)},
            "store_share_of_reply": round(sum(per_message) / sum(wall), 3)}


# --- nginx in front ------------------------------------------------------------------------------
def plain_http(conf: str, *, port: int) -> str:
    """deploy/nginx.conf on one local port without TLS: the redirect server goes, and the HTTPS
    server listens on `port` with plain http (the benchmark measures csbot, not TLS)."""
    conf = re.sub(r"\n    # --- plain http.*?\n    }\n", "\n", conf, count=1, flags=re.S)
    conf = "\n".join(line for line in conf.splitlines() if not line.strip().startswith(("ssl_", "add_header Strict")))
    return re.sub(r"listen 443 ssl http2;.*", f"listen 127.0.0.1:{port};", conf)


class Proxy:
    """nginx running deploy/nginx.conf with its upstream servers pointed at `ports`."""

    def __init__(self, folder: Path, ports: list[int]):
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        conf = (ROOT / "deploy" / "nginx.conf").read_text()
        for name in ("csbot-a", "csbot-b"):
            index = ("csbot-a", "csbot-b").index(name)
            if index < len(ports):
                conf = conf.replace(f"{name}:7860", f"127.0.0.1:{ports[index]}")
            else:
                conf = "\n".join(line for line in conf.splitlines() if f"{name}:7860" not in line)
        conf = plain_http(conf, port=self.port)
        conf = conf.replace("rate=5r/s", "rate=100000r/s")  # every benchmark client is 127.0.0.1
        conf = conf.replace("http {", f"http {{\n    access_log off;\n    client_body_temp_path {folder}/body;\n"
                                      f"    proxy_temp_path {folder}/proxy;", 1)
        (folder / "nginx.conf").write_text(conf)
        subprocess.run(["nginx", "-t", "-q", "-c", str(folder / "nginx.conf"), "-g", self._globals()], check=True)
        self.process = subprocess.Popen(["nginx", "-c", str(folder / "nginx.conf"), "-g", "daemon off; " + self._globals()])
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/api/health", timeout=5)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("nginx did not start")
                time.sleep(0.2)

    def _globals(self) -> str:
        return f"pid {self.folder}/nginx.pid; error_log {self.folder}/error.log;"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def wait_ready(server: Server, timeout: float = 300) -> float:
    """Seconds until /api/ready answers 200."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if server.process.poll() is not None:
            server.fail(f"the server exited with code {server.process.returncode}")
        try:
            if httpx.get(server.url + "/api/ready", timeout=5).status_code == 200:
                return time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.fail(f"not ready within {timeout:.0f} s")


def rolling_restart(servers: list[Server], env: dict, events: list) -> None:
    """Restart each replica in turn, as a deploy does: SIGTERM, wait for it to exit, start it again
    on the same port, wait until it is ready."""
    for i, server in enumerate(servers):
        t0 = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=60)
        stopped = time.perf_counter()
        again = Server(server.home, env=env, log=server.log, port=server.port)
        ready = wait_ready(again)
        servers[i] = again
        time.sleep(SETTLE)  # the proxy takes a replica back at its next try, up to fail_timeout later
        events.append({"replica": "AB"[i], "sigterm_at": t0, "exited_at": stopped, "ready_at": time.perf_counter(),
                       "stopped_after_s": round(stopped - t0, 2), "exit_code": code,
                       "ready_after_restart_s": round(ready, 2)})


def error_timeline(records: list[dict], events: list[dict]) -> list[dict]:
    """Each failed request's time, relative to the restart it fell in: which part of a deploy hurt."""
    out = []
    for r in records:
        if r["status"] == 200:
            continue
        near = min(events, key=lambda e: abs(r["at"] - e["sigterm_at"]))
        part = ("draining" if r["at"] < near["sigterm_at"] + DRAIN else "stopping" if r["at"] < near["exited_at"]
                else "starting" if r["at"] < near["ready_at"] else "after")
        out.append({"replica": near["replica"], "after_sigterm_s": round(r["at"] - near["sigterm_at"], 2),
                    "part": part, "error": r["error"]})
    return out


def main() -> int:
    parser = load_arguments(__doc__, out="replicas.json")
    parser.set_defaults(seconds=40)
    parser.add_argument("--messages", type=int, default=300, help="chat messages of the store-cost phase, per engine")
    parser.add_argument("--only-rolling", action="store_true", help="skip the store-cost and scale phases")
    args = parser.parse_args()
    home = Path(args.home).expanduser().resolve()
    if not (home / "csbot.db").is_file():
        print(f"error: {home} has no csbot.db; give --home a trained csbot home", file=sys.stderr)
        return 2
    if not shutil.which("nginx"):
        print("error: nginx is not installed (apt-get install nginx-light)", file=sys.stderr)
        return 2
    texts = read_texts(ROOT / "data" / "support_log.csv")
    figures: dict = {"command": sys.argv, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": machine(), "settings": {"clients": args.clients, "seconds": args.seconds,
                                                        "seed": args.seed, "store_cost_messages": args.messages}}
    tmp = Path(tempfile.mkdtemp(prefix="csbot-replicas-"))
    servers, proxy = [], None
    try:
        with Cluster.started(Path(tempfile.mkdtemp(prefix="csbot-pg-"))) as cluster:
            local = tmp / "sqlite-home"
            copy_home(home, local)
            shared = tmp / "shared"
            shutil.copytree(home / "models", shared / "models")
            url = cluster.create_database("bench")
            subprocess.run([sys.executable, "-m", "csbot", "copy-store", "--to", url, "--home", str(local)],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            figures["postgresql"] = {"server": str(cluster.bin), "settings": "fsync=off "
                                     "(a throwaway cluster; a production one syncs its WAL)"}

            print("replicas: the store's cost per chat message ...", flush=True)
            figures["store_cost"] = {} if args.only_rolling else {
                "sqlite": store_cost(local / "csbot.db", home=local, artifacts=local, texts=texts, messages=args.messages),
                "postgresql": store_cost(url, home=tmp / "pg-home", artifacts=shared, texts=texts,
                                         messages=args.messages)}
            for name, f in figures["store_cost"].items():
                print(f"  {name}: {f['store_ms_per_message']} ms of store per message "
                      f"({f['store_calls_per_message']} calls), reply p50 {f['reply_ms']['p50']} ms", flush=True)

            env = {**{k: v for k, v in os.environ.items() if not k.startswith("CSBOT_")},
                   "CSBOT_DATABASE_URL": url, "CSBOT_ARTIFACTS_DIR": str(shared), "CSBOT_TRAINING": "worker",
                   "CSBOT_CHAT_PER_MINUTE": "0", "CSBOT_CHAT_IP_PER_MINUTE": "0",
                   "CSBOT_FORWARDED_ALLOW_IPS": "127.0.0.1", "CSBOT_ADMIN_PASSWORD": "replicas-benchmark",
                   "CSBOT_DRAIN_SECONDS": str(DRAIN)}
            servers = [Server(tmp / f"machine-{n}", env=env, log=tmp / f"server-{n}.log") for n in "ab"]
            for server in servers:
                server.home.mkdir(exist_ok=True)
            for server in servers:
                wait_ready(server)
            load = dict(clients=args.clients, seconds=args.seconds, texts=texts, timeout=args.timeout)
            for n in () if args.only_rolling else (1, 2):
                proxy = Proxy(tmp / f"nginx-{n}", [s.port for s in servers[:n]])
                run_load(proxy.url, **{**load, "seconds": 5, "seed": args.seed + 50})  # warm-up
                after = max_message_id(url)
                phase, records = run_load(proxy.url, **load, seed=args.seed + n)
                phase["stored"] = check_stored(url, records, after_id=after)
                figures[f"replicas_{n}"] = phase
                print(summary_line(f"{n} replica(s) behind nginx", phase), flush=True)
                proxy.stop()
                proxy = None

            proxy = Proxy(tmp / "nginx-rolling", [s.port for s in servers])
            events: list = []
            after = max_message_id(url)
            stop = threading.Event()
            result: dict = {}

            def loaded() -> None:
                result["figures"], result["records"] = run_load(proxy.url, **{**load, "seconds": 3600},
                                                                seed=args.seed + 9, stop=stop)
            thread = threading.Thread(target=loaded)
            thread.start()
            time.sleep(5)
            t0 = time.perf_counter()
            rolling_restart(servers, env, events)
            took = time.perf_counter() - t0
            time.sleep(5)
            stop.set()
            thread.join()
            phase = result["figures"]
            phase["stored"] = check_stored(url, result["records"], after_id=after)
            timeline = error_timeline(result["records"], events)
            phase["errors_by_part"] = dict(Counter((e["replica"], e["part"]) for e in timeline).most_common())
            phase["errors_by_part"] = {f"{k[0]} {k[1]}": v for k, v in phase["errors_by_part"].items()}
            phase["error_examples"] = timeline[:20]
            phase["nginx_errors"] = dict(Counter(re.sub(r".*\] \d+#\d+: \*?\d* ?", "", line).split(",")[0]
                                                 for line in (proxy.folder / "error.log").read_text().splitlines()
                                                 ).most_common(10))
            for e in events:
                for key in ("sigterm_at", "exited_at", "ready_at"):
                    e.pop(key)
            phase["restarts"] = events
            phase["rolling_restart_seconds"] = round(took, 1)
            figures["rolling_restart"] = phase
            print(summary_line("rolling restart", phase), flush=True)
            print(f"  restarts: {events}", flush=True)
            proxy.stop()
            proxy = None
            for server in servers:
                server.stop()
            servers = []
    finally:
        if proxy:
            proxy.stop()
        for server in servers:
            server.stop()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2))
        print(f"replicas: figures in {out}", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Start csbot: `python app.py [--host H] [--port P] [--home DIR] [--data DIR]`.

On first start it creates the store from the shipped demo data and fine-tunes a model (with a
progress line), then serves the customer chat. Nothing here reaches the internet.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

import csbot  # noqa: F401  (sets the offline environment before gradio is imported)
from csbot.cli import progress_printer
from csbot.errors import CsbotError
from csbot.service.engine import Engine
from csbot.settings import load_settings


def prepare(engine: Engine) -> None:
    """Load the demo data into an empty store and train a first model if there is none."""
    if not engine.store.intents():
        summary = engine.load_defaults()
        print(f"csbot: loaded demo data: {summary['intents']} intents, {summary['examples']} messages, "
              f"{summary['answers']} curated answers", flush=True)
    if engine.store.current_model() is None and engine.settings.training == "worker":
        wait_for_first_model(engine)
    elif engine.store.current_model() is None:
        print("csbot: no model yet, fine-tuning one on the support log (a few minutes on a CPU)...", flush=True)
        summary = engine.train(report=progress_printer(sys.stdout))
        print(f"csbot: model {summary['version']} ready: held-out accuracy {summary['metrics']['accuracy']}", flush=True)
    engine.bot.warm_up()  # load the weights and warm the kernels before the first customer


def wait_for_first_model(engine: Engine, *, poll_seconds: float = 2.0) -> None:
    """With CSBOT_TRAINING=worker a replica never trains: the first model is queued for a training
    worker (once, whichever replica comes first) and the replica waits until one is promoted."""
    from csbot.errors import TrainingError
    from csbot.service.jobs import Retrainer

    retrainer = Retrainer(engine)
    while engine.store.current_model() is None:
        # none queued yet, or the last run ended without a model (looked at again: it may have just made one)
        if retrainer.running() is None and engine.store.current_model() is None:
            last = retrainer.status()
            if last:
                print(f"csbot: training run {last['id']} ended {last['status']} without a model "
                      f"({last.get('error') or 'no error recorded'})", flush=True)
            try:
                job = retrainer.start(user="first start", promote_if_better=True)
                print(f"csbot: no model yet; queued training run {job} for a training worker "
                      "(python -m csbot worker)", flush=True)
            except TrainingError as exc:  # another replica queued it first
                print(f"csbot: no model yet; {exc}", flush=True)
        time.sleep(poll_seconds)
    print(f"csbot: model {engine.store.current_model()['id']} is ready", flush=True)


def open_accounts(engine: Engine, environ=os.environ):
    """The accounts, with a first admin made when there is none (its password printed once)."""
    from csbot.service.auth import Accounts

    accounts = Accounts.from_settings(engine.store, engine.settings)
    password = accounts.ensure_first_admin(environ)
    if password is not None:
        name = next(u["name"] for u in accounts.list() if u["role"] == "admin")
        if environ.get("CSBOT_ADMIN_PASSWORD"):
            print(f"csbot: created the admin account {name!r} with the password from CSBOT_ADMIN_PASSWORD", flush=True)
        else:
            print(f"csbot: created the admin account {name!r} with the password {password}\n"
                  "       It is shown only this once: log in at /admin and keep it safe "
                  "(or reset it with `python -m csbot user reset`).", flush=True)
    return accounts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the csbot web app: chat at /, staff at /staff, admin at /admin.")
    parser.add_argument("--host", help="interface to listen on (default CSBOT_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default CSBOT_PORT or 7860)")
    parser.add_argument("--home", help="csbot home folder (default CSBOT_HOME or the project folder)")
    parser.add_argument("--data", help="the shop data a new home starts from (default CSBOT_DATA_DIR or data/; "
                                       "e.g. data/zh with CSBOT_LANGUAGE=zh for the Chinese demo shop)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="csbot: %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(home=args.home, host=args.host, port=args.port, data_dir=args.data)
        engine = Engine(settings)
        prepare(engine)
        accounts = open_accounts(engine)
    except CsbotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    import uvicorn

    from csbot.nlu import runtime as onnx_runtime
    from csbot.service.jobs import Retrainer
    from csbot.web.boundary import slow_client_protocol
    from csbot.web.server import create_app

    onnx_runtime.one_blas_thread()
    engine.follow()  # serve what any process changes in the store: answers, templates, the model
    app = create_app(engine, accounts=accounts, retrainer=Retrainer(engine))
    print(f"csbot: serving on http://{settings.host}:{settings.port}/ (staff: /staff, admin: /admin, "
          "API: POST /api/chat)", flush=True)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=10, proxy_headers=bool(settings.forwarded_allow_ips),
                            http=slow_client_protocol(settings.header_timeout_seconds),
                            forwarded_allow_ips=settings.forwarded_allow_ips or None)
    draining_server(config, app=app, drain_seconds=settings.drain_seconds).run()
    return 0


def draining_server(config, *, app, drain_seconds: float):
    """uvicorn's server with a drain before it stops: on SIGTERM, `/api/ready` answers 503 for
    `drain_seconds` while every request is still served (a load balancer that reads readiness moves
    traffic away; responses say `Connection: close`, so a proxy keeps no idle connection to it),
    then uvicorn stops accepting, lets requests in flight finish, and after 10 s closes what is
    still open (browsers keep a page's event stream open as long as it is shown). Ctrl-C (SIGINT)
    or a second SIGTERM skips the drain; a second Ctrl-C stops at once. uvicorn ends by re-raising
    the SIGTERM it handled, so the exit status is that of a process stopped by SIGTERM."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if sig != signal.SIGTERM or app.state.draining or not drain_seconds:
                return super().handle_exit(sig, frame)
            app.state.draining = True
            print(f"csbot: SIGTERM: draining for {drain_seconds:g} s, then stopping", flush=True)
            timer = threading.Timer(drain_seconds, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()

    return Server(config)


if __name__ == "__main__":
    raise SystemExit(main())

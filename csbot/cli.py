"""`python -m csbot ...`: the command line. Each command parses its arguments, calls one engine
operation and prints the result; a CsbotError becomes a one-line message and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from csbot.errors import CsbotError, DataError
from csbot.settings import load_settings


def _settings(args: argparse.Namespace, **extra):
    return load_settings(home=args.home, **extra)


def _engine(args: argparse.Namespace, **extra):
    from csbot.service.engine import Engine

    return Engine(_settings(args, **extra))


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str), flush=True)


def progress_printer(stream=sys.stderr):
    last = {"phase": None, "t": 0.0}

    def report(progress) -> None:
        now = time.monotonic()
        if progress.phase != last["phase"] or now - last["t"] > 2 or progress.step == progress.total:
            last.update(phase=progress.phase, t=now)
            step = f" step {progress.step}/{progress.total}" if progress.total else ""
            loss = f" loss {progress.loss:.3f}" if progress.loss is not None else ""
            print(f"[{progress.elapsed:6.1f}s] {progress.phase}{step}{loss}", file=stream, flush=True)
    return report


def cmd_init(args: argparse.Namespace) -> int:
    engine = _engine(args)
    summary = engine.load_defaults(Path(args.data) if args.data else None)
    print(f"csbot home {engine.settings.home}: {summary['intents']} intents, {summary['examples']} "
          f"log messages ({summary['new_examples']} new), {summary['answers']} curated answers.")
    if not engine.store.current_model():
        print("No model yet: run `python -m csbot train` to fine-tune one.")
    return 0


def cmd_import_logs(args: argparse.Namespace) -> int:
    summary = _engine(args).import_logs(Path(args.file))
    print(f"{summary['rows']} rows read, {summary['new']} new training examples stored.")
    return 0


def cmd_import_history(args: argparse.Namespace) -> int:
    summary = _engine(args).import_history(Path(args.file))
    scrubbed = ", ".join(f"{n} {kind}" for kind, n in summary["scrubbed"].items()) or "nothing"
    print(f"{summary['turns']} customer turns ({summary['new']} new) from {summary['conversations']} "
          f"conversations; personal data replaced: {scrubbed}; import {summary['import']}")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.keep:
        summary = engine.import_history(Path(args.file))
        result = engine.review.run(summary["import"], actor=engine.actor)
        print(f"{result['groups']} intents proposed ({result['new']} new) from {result['turns']} customer turns, "
              f"{result['outliers']} outliers; review them on the staff page's Discover tab")
        return 0
    found = engine.review.discover_file(Path(args.file))
    text = json.dumps(found, ensure_ascii=False, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
        print(f"{found['estimated_groups']} intents proposed from {len(found['assignments'])} customer turns, "
              f"{found['outliers']} outliers; written to {args.json}")
    else:
        print(text)
    return 0


def cmd_import_answers(args: argparse.Namespace) -> int:
    summary = _engine(args).import_answers(Path(args.file))
    print(f"{summary['rows']} answers read; {summary['answers']} curated answers in the store, index rebuilt.")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.background:  # started by the web app: the chat keeps its speed, training takes idle time
        import os

        try:
            # SCHED_IDLE, set before torch makes its threads so they inherit it: measured on 2 cores,
            # 16 chat clients kept 100% of their throughput, against 84% with `nice 10` alone.
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            os.nice(10)
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    engine = _engine(args)
    summary = engine.train(epochs=args.epochs, device=args.device, report=progress_printer(),
                           job=args.job, promote=not args.no_promote)
    _print_json(summary)
    return 0


def cmd_copy_store(args: argparse.Namespace) -> int:
    from csbot.store import Store
    from csbot.store.transfer import copy_store

    settings = _settings(args)
    source, target = Store.from_settings(settings), Store.open(args.to)
    copied = copy_store(source, target)
    print(f"copied {sum(copied.values()):,} rows ({copied['messages']:,} messages, {copied['answers']:,} answers, "
          f"{copied['model_versions']:,} model versions) into {target.db.redacted_url}. Serve from it with "
          f"CSBOT_DATABASE_URL; model files stay in {settings.artifacts}.")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from csbot.service.worker import Worker

    worker = Worker(_engine(args), poll_seconds=args.poll_seconds)
    worker.stop_on_signals()
    print(f"csbot worker {worker.name}: waiting for training runs on {worker.device()}", file=sys.stderr, flush=True)
    worker.run(once=args.once)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    bot = _engine(args).bot  # load the model before reading input: a broken model is one clear error
    messages = [args.message] if args.message is not None else (line.rstrip("\n") for line in sys.stdin)
    status = 0
    for message in messages:
        if args.message is None and not message.strip():
            continue
        try:
            reply = bot.respond(message, args.conversation, channel="cli")
        except CsbotError as exc:
            _print_json({"error": str(exc)})
            status = 1
            continue
        args.conversation = reply.conversation_id
        _print_json({"reply": reply.text, "conversation_id": reply.conversation_id, **reply.trace()})
    return status


def cmd_evaluate(args: argparse.Namespace) -> int:
    from csbot.importer import read_logs
    from csbot.nlu import benchmark
    from csbot.nlu.training import TrainArgs

    settings = _settings(args)
    train_rows, test_rows = read_logs(Path(args.train)), read_logs(Path(args.test))
    train_args = TrainArgs.from_settings(settings, epochs=args.epochs, device=args.device)
    figures = benchmark.run(train_rows, test_rows, train_args, report=progress_printer(),
                            compare_runtimes=args.compare_runtimes)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    _print_json({k: v for k, v in figures.items() if k not in ("per_intent", "operating_curve")})  # both in --json
    return 0


def cmd_evaluate_answers(args: argparse.Namespace, *, encoder=None) -> int:
    """The curated-answer search on a FAQ and its test questions, in a throwaway store (no home is
    touched). `encoder` replaces the settings' answer encoder (a test's fake)."""
    from csbot.importer import read_answers
    from csbot.service import answer_benchmark

    settings = _settings(args)
    answers = read_answers(Path(args.answers))
    tests = answer_benchmark.read_tests(Path(args.test), {a["key"] for a in answers})
    figures = answer_benchmark.run(answers, tests, settings, encoder=encoder)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    _print_json({k: v for k, v in figures.items() if k != "curve"})  # the curve is in --json
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    index = _engine(args).reindex()
    print(f"answer index rebuilt: {len(index)} question phrasings.")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for row in _engine(args).store.model_versions():
        metrics = row["metrics"]
        print(f"{'*' if row['is_current'] else ' '} {row['id']}  accuracy {metrics.get('accuracy')}  "
              f"macro-F1 {metrics.get('macro_f1')}  threshold {row['threshold']:.3f}  {row['device']}  "
              f"{row['train_seconds']}s")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    _engine(args).promote(args.version)
    print(f"{args.version} is now the current model.")
    return 0


def cmd_operating_point(args: argparse.Namespace) -> int:
    engine = _engine(args)
    version = args.version or (engine.store.current_model() or {}).get("id")
    if not version:
        raise DataError("no model is current; name a version (python -m csbot models lists them)")
    point = engine.set_operating_point(version, precision=args.precision, acceptance=args.acceptance,
                                       default=args.default)
    def share(key: str) -> str:
        return "?" if point.get(key) is None else f"{point[key]:.1%}"

    oos = "" if point.get("oos_accepted") is None else f", known out-of-scope accepted {share('oos_accepted')}"
    was = "" if point["before"] is None else f" (was {point['before']:.4f})"
    print(f"{version} serves at threshold {point['threshold']:.4f}{was}: on held-out messages it accepts "
          f"{share('accepted')} at precision {share('precision')}{oos}.")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    print(f"rolled back: {_engine(args).rollback()} is now the current model.")
    return 0


def cmd_scrub(args: argparse.Namespace) -> int:
    """Print each line of stdin with its personal data replaced (dialogue/scrub.py), to check the rules."""
    from csbot.dialogue.scrub import scrub

    for line in sys.stdin:
        print(scrub(line.rstrip("\n")), flush=True)
    return 0


def _password(args: argparse.Namespace) -> str:
    if sys.stdin.isatty():
        import getpass

        first, second = getpass.getpass("password: "), getpass.getpass("again: ")
        if first != second:
            raise DataError("the two passwords differ; nothing was changed")
        return first
    return sys.stdin.readline().rstrip("\n")  # scripts pipe it in, so it never shows in `ps`


def cmd_user(args: argparse.Namespace) -> int:
    """Accounts from the command line; a running server sees each change at once (it reads the
    store), so a reset or a disable here ends that account's open sessions there too."""
    from csbot.service.auth import Accounts
    from csbot.store import Store, local_actor

    settings = _settings(args)
    accounts = Accounts.from_settings(Store.from_settings(settings), settings)
    actor = local_actor()
    if args.action == "list":
        for user in accounts.list():
            state = ("disabled" if user.get("disabled") else "enabled") + (", two-factor" if user["two_factor"] else "")
            print(f"{user['name']}\t{user['role']}\t{state}\tcreated {user['created_at']}")
        return 0
    if not args.name:
        raise DataError(f"`user {args.action}` needs a user name")
    if args.action == "add":
        accounts.create(args.name, _password(args), role=args.role or "staff", actor=actor)
        print(f"created {args.role or 'staff'} account {args.name!r}")
    elif args.action == "reset":
        accounts.reset_password(args.name, _password(args), actor=actor)
        print(f"new password set for {args.name!r}; its open sessions are ended")
    elif args.action == "role":
        if not args.role:
            raise DataError("`user role NAME` needs --role staff or --role admin")
        accounts.set_role(args.name, args.role, actor=actor)
        print(f"{args.name!r} is {args.role} now; its open sessions are ended")
    elif args.action in ("disable", "enable"):
        accounts.set_disabled(args.name, args.action == "disable", actor=actor)
        print(f"{args.name!r} is {args.action}d")
    elif args.action == "reset-two-factor":
        accounts.two_factor.reset(args.name, actor=actor)
        print(f"two-factor sign-in is off for {args.name!r}; they log in with the password and can set it up again")
    else:
        accounts.delete(args.name, actor=actor)
        print(f"deleted {args.name!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS,
                        help="csbot home folder (database, indexes, models); default: CSBOT_HOME or the project folder")
    parser = argparse.ArgumentParser(prog="python -m csbot", parents=[common],
                                     description="csbot: a self-hosted customer-service bot.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "create the store and load the default data (shop, templates, log, answers)")
    p.add_argument("--data", help="data folder to load instead of the shipped data/")
    p = add("import-logs", cmd_import_logs, "import a labelled support log CSV (text,intent[,agent_reply,...])")
    p.add_argument("file")
    p = add("import-history", cmd_import_history, "import raw support history without labels (a CSV of turns, "
                                                   "JSON Lines of conversations, or a CSV of customer messages); "
                                                   "personal data is scrubbed before anything is stored")
    p.add_argument("file")
    p = add("discover", cmd_discover, "propose intents from raw history (any import-history format; an intent "
                                      "column is never read): groups, names, typical examples, draft replies")
    p.add_argument("file")
    p.add_argument("--json", help="write the proposals here (default: print them)")
    p.add_argument("--keep", action="store_true", help="import the history and keep the proposals for review "
                                                       "on the staff page instead")
    p = add("import-answers", cmd_import_answers, "import curated answers CSV (key,questions,answer)")
    p.add_argument("file")
    for name, func, text in (("train", cmd_train, "fine-tune a new model version from the store"),
                             ("evaluate", cmd_evaluate, "benchmark: train a throwaway model on --train, score on --test")):
        p = add(name, func, text)
        p.add_argument("--epochs", type=float, help="passes over the training data (default: setting epochs)")
        p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default: setting device)")
        if name == "train":
            p.add_argument("--job", help=argparse.SUPPRESS)  # report into this job row (the web app's runs)
            p.add_argument("--no-promote", action="store_true", help="save the version without promoting it")
            p.add_argument("--background", action="store_true",
                           help="run at idle CPU priority on one core fewer (how the web app starts it)")
    p.add_argument("--train", required=True, help="CSV with text and intent (or category)")
    p.add_argument("--test", required=True, help="CSV with text and intent (or category)")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--compare-runtimes", action="store_true",
                   help="also score the same run's PyTorch network (calibrated on its own outputs) and time both")
    p = add("evaluate-answers", cmd_evaluate_answers, "benchmark: the curated-answer search on a FAQ (--answers, "
                                                      "the curated-answers format) and test questions (--test: text, "
                                                      "key; an empty key for one no answer covers), in a throwaway "
                                                      "store that touches no home")
    p.add_argument("--answers", required=True, help="CSV with key, questions (separated by |) and answer")
    p.add_argument("--test", required=True, help="CSV with text and key (empty when no answer covers it)")
    p.add_argument("--json", help="write the figures, with the curve over thresholds, to this file")
    p = add("copy-store", cmd_copy_store, "copy this home's store (every row) into a new, empty database, "
                                          "e.g. from csbot.db to PostgreSQL")
    p.add_argument("--to", required=True, help="postgresql://user:password@host/db, or sqlite:///path/csbot.db")
    p = add("worker", cmd_worker, "claim queued training runs from the store and run them here "
                                  "(the web app queues them with CSBOT_TRAINING=worker)")
    p.add_argument("--poll-seconds", type=float, default=2.0, help="wait between looks for a queued run")
    p.add_argument("--once", action="store_true", help="exit after the first run")
    p = add("ask", cmd_ask, "answer a message (or one message per line on stdin); prints JSON lines")
    p.add_argument("message", nargs="?")
    p.add_argument("--conversation", help="continue this conversation id")
    add("reindex", cmd_reindex, "rebuild the answer index from the database")
    add("scrub", cmd_scrub, "print each line of stdin with its personal data replaced by placeholders "
                            "(<email>, <phone>, <card>, ... and {order_id}), to check the rules on your own data")
    add("models", cmd_models, "list model versions (* marks the current one)")
    p = add("promote", cmd_promote, "make a model version the current one")
    p.add_argument("version")
    add("rollback", cmd_rollback, "go back to the version before the current one")
    p = add("operating-point", cmd_operating_point, "move a version's threshold along its trade-off curve "
                                                    "(live in every process, no retraining)")
    p.add_argument("version", nargs="?", help="default: the current version")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--precision", type=float, help="accept as much as keeps this precision of the accepted")
    target.add_argument("--acceptance", type=float, help="accept at least this share of held-out messages")
    target.add_argument("--default", action="store_true", help="back to the threshold chosen at training")
    p = add("user", cmd_user, "web app accounts: list, add NAME --role staff|admin, reset NAME, role NAME "
                              "--role R, disable NAME, enable NAME, delete NAME, reset-two-factor NAME (a lost "
                              "phone; a password is asked for, "
                              "or read from one line of stdin)")
    p.add_argument("action", choices=["list", "add", "reset", "role", "disable", "enable", "delete", "reset-two-factor"])
    p.add_argument("name", nargs="?")
    p.add_argument("--role", choices=["staff", "admin"], help="for add (default staff) and role (required)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="csbot: %(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "home"):
        args.home = None
    try:
        return args.func(args)
    except CsbotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

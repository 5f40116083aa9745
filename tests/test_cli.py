"""The CLI end to end, as a user runs it: separate processes on a temporary home."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import DATA, csbot, logs_in


@pytest.fixture(scope="module")
def home(trained_home: Path, tmp_path_factory) -> Path:
    """This module's own copy of the trained home: its tests change it, one after another."""
    home = tmp_path_factory.mktemp("cli") / "home"
    shutil.copytree(trained_home, home)
    return home


def test_init_twice_duplicates_nothing(home):
    again = csbot("init", "--data", str(DATA), home=home)
    assert again.returncode == 0 and "(0 new)" in again.stdout


def test_ask_prints_the_reply_and_trace_as_json(home):
    result = csbot("ask", "do you offer gift wrapping?", home=home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert {"reply", "route", "intent", "confidence", "latency_ms", "hits", "model_version"} <= set(out)
    assert out["route"] == "answer" and "gift wrapping" in out["reply"]


def test_ask_reads_one_message_a_line_from_stdin(home):
    result = csbot("ask", home=home, stdin="hello\n\nwhere is my order BB-111222\n")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and all(line["route"] in ("template", "answer", "fallback") for line in lines)
    assert lines[0]["conversation_id"] == lines[1]["conversation_id"]


def test_ask_rejects_a_huge_message_without_a_traceback(home):
    result = csbot("ask", "x" * 100_000, home=home)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "limit is 2,000" in json.loads(result.stdout)["error"]


def test_models_promote_and_rollback(home):
    assert csbot("train", "--epochs", "1", home=home).returncode == 0
    listing = csbot("models", home=home).stdout.splitlines()
    assert len(listing) == 2 and sum(line.startswith("*") for line in listing) == 1
    older = listing[-1].split()[0].lstrip("*")
    assert csbot("promote", older, home=home).returncode == 0
    assert csbot("models", home=home).stdout.splitlines()[-1].startswith("*")
    rolled = csbot("rollback", home=home)
    assert rolled.returncode == 1 and "oldest version" in rolled.stderr
    bad = csbot("promote", "v-does-not-exist", home=home)
    assert bad.returncode == 1 and "no model version" in bad.stderr and "Traceback" not in bad.stderr


def test_a_broken_current_model_is_reported_loudly_and_the_bot_still_answers(home, tmp_path):
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    for head in (copy / "models").glob("*/head.safetensors"):
        head.unlink()
    result = csbot("ask", "hello", home=copy)
    # every version is damaged: no classifier, but curated answers and the fallback still answer
    assert result.returncode == 0 and "MODEL PROBLEM" in result.stderr
    assert "incomplete: missing head.safetensors" in result.stderr and "curated answers only" in result.stderr
    assert json.loads(result.stdout)["route"] in ("answer", "fallback")


def test_malformed_import_is_refused_whole(home, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,intent\nfine,greeting\n,greeting\nok," + "y" * 70 + "\n")
    result = csbot("import-logs", str(bad), home=home)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "line 3: text is empty" in result.stderr and "line 4: intent 'yyy" in result.stderr
    good = tmp_path / "good.csv"
    good.write_text("text,intent\nfine,greeting\n")
    assert "1 new" in csbot("import-logs", str(good), home=home).stdout


def test_import_answers_is_searchable_at_once(home, tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("key,questions,answer\npets,Are your candles safe for cats? | pet safe candles,"
                       "Our soy candles are pet-safe when used with care.\n")
    assert csbot("import-answers", str(answers), home=home).returncode == 0
    out = json.loads(csbot("ask", "are the candles safe for my cats", home=home).stdout)
    assert out["route"] == "answer" and "pet-safe" in out["reply"]


@pytest.mark.parametrize("args, fragment", [
    (["train", "--epochs", "lots"], "invalid float value"),
    (["train", "--device", "tpu"], "invalid choice"),
    (["evaluate", "--train", "x.csv"], "required: --test"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_non_zero_with_usage(args, fragment, tmp_path):
    result = csbot(*args, home=tmp_path)
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr


def test_every_command_has_help(tmp_path):
    from csbot.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        result = csbot(name, "--help", home=tmp_path)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_evaluate_reports_in_scope_and_out_of_scope_and_touches_no_home(tmp_path):
    out = tmp_path / "figures.json"
    home = tmp_path / "home"
    result = csbot("evaluate", "--train", str(DATA / "support_log.csv"), "--test", str(DATA / "tiny_test.csv"),
                   "--epochs", "1", "--json", str(out), "--compare-runtimes", home=home)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    # the same run's PyTorch network beside the export that serves, scored on the same rows
    assert figures["runtime"].startswith("onnxruntime ") and figures["pytorch"]["runtime"] == "pytorch cpu"
    assert 0 <= figures["pytorch"]["accuracy"] <= 1 and 0 <= figures["pytorch"]["oos_recall"] <= 1
    assert set(figures["latency_ms"]) == {"served", "pytorch"} and figures["latency_ms"]["served"]["p50"] > 0
    assert set(figures["export_choice"]["held_out_accuracy"]) == {"none", "int8-dynamic", "int8-feed-forward"}
    for key in ("accuracy", "macro_f1", "in_scope_accepted", "in_scope_accuracy", "oos_recall",
                "train_seconds", "n_train", "n_test"):
        assert key in figures
    assert (figures["n_train"], figures["n_test"], figures["n_in_scope"], figures["n_out_of_scope"]) == (24, 8, 6, 2)
    assert 0 <= figures["oos_recall"] <= 1 and figures["in_scope_accuracy"] <= figures["in_scope_accepted"]
    # the trade-off: the held-out curve, the default point with what it promised, and operating points tried on test
    assert figures["operating_curve"]["points"] and figures["operating_point"]["rule"]
    assert figures["promise_gap"] == pytest.approx(figures["in_scope_accepted"] - figures["operating_point"]["accepted"],
                                                   abs=1e-4)
    assert all(row["heldout_accepted"] >= share for row, share in zip(figures["curve_on_test"], (0.85, 0.9, 0.94, 0.96, 0.98)))
    thresholds = [row["threshold"] for row in figures["curve_on_test"]]
    assert len(thresholds) == 5 and thresholds == sorted(thresholds, reverse=True)
    assert all(0 <= row["oos_recall"] <= 1 for row in figures["curve_on_test"])
    assert not home.exists()


def test_commands_on_an_empty_home_explain_what_to_do(tmp_path):
    result = csbot("train", home=tmp_path)
    assert result.returncode == 1 and "at least 2 intents" in result.stderr and "import-logs" in result.stderr
    from csbot.store import Store

    [job] = Store.open(tmp_path / "csbot.db").jobs()
    assert job["status"] == "failed" and "at least 2 intents" in job["error"]


def test_training_runs_are_recorded_as_jobs(home):
    from csbot.store import Store

    jobs = Store.open(home / "csbot.db").jobs()
    assert jobs and all(job["status"] == "done" and job["model_version"] for job in jobs)
    assert all(job["step"] == job["total"] > 0 for job in jobs)


def test_user_accounts_from_the_command_line(tmp_path):
    from csbot.service.auth import Accounts
    from csbot.store import Store

    added = csbot("user", "add", "sam", "--role", "staff", home=tmp_path, stdin="sam-secret-pw-1\n")
    assert added.returncode == 0 and "created staff account 'sam'" in added.stdout
    weak = csbot("user", "add", "kim", home=tmp_path, stdin="short\n")
    assert weak.returncode == 1 and "password" in weak.stderr and "Traceback" not in weak.stderr
    reset = csbot("user", "reset", "sam", home=tmp_path, stdin="another-secret-2\n")
    assert reset.returncode == 0
    listed = csbot("user", "list", home=tmp_path)
    assert listed.stdout.startswith("sam\tstaff") and "kim" not in listed.stdout
    accounts = Accounts(Store.open(tmp_path / "csbot.db"))
    assert logs_in(accounts, "sam", "another-secret-2") and not logs_in(accounts, "sam", "sam-secret-pw-1")
    missing = csbot("user", "role", "sam", home=tmp_path)
    assert missing.returncode == 1 and "needs --role" in missing.stderr
    csbot("user", "add", "kim", "--role", "admin", home=tmp_path, stdin="kim-secret-pw-1\n")
    last = csbot("user", "disable", "kim", home=tmp_path)
    assert last.returncode == 1 and "last enabled admin" in last.stderr
    for args, shown in ((("role", "sam", "--role", "admin"), "sam\tadmin\tenabled"),
                        (("disable", "sam"), "sam\tadmin\tdisabled"), (("enable", "sam"), "sam\tadmin\tenabled")):
        assert csbot("user", *args, home=tmp_path).returncode == 0
        assert shown in csbot("user", "list", home=tmp_path).stdout.splitlines()[1]  # kim, then sam
    import pyotp  # sam turns two-factor on, loses the phone, and the CLI turns it off
    uri = accounts.two_factor.begin("sam")
    accounts.two_factor.confirm("sam", pyotp.parse_uri(uri).now())
    assert Accounts(Store.open(tmp_path / "csbot.db")).list()[1]["two_factor"]  # on, as `user list` would say
    assert csbot("user", "reset-two-factor", "sam", home=tmp_path).returncode == 0
    assert "two-factor" not in csbot("user", "list", home=tmp_path).stdout and logs_in(accounts, "sam", "another-secret-2")
    assert csbot("user", "delete", "kim", home=tmp_path).returncode == 0
    assert "kim" not in csbot("user", "list", home=tmp_path).stdout
    audit = [e for e in Store.open(tmp_path / "csbot.db").audit_log(actor=None) if e["action"].startswith("user_")]
    assert {"user_create", "user_password", "user_role", "user_disable", "user_enable", "user_delete"} <= {
        e["action"] for e in audit} and all(e["actor"].startswith("cli") for e in audit)


def test_the_operating_point_moves_from_the_command_line_and_back(home):
    from csbot.store import Store

    store = Store.open(home / "csbot.db")
    current = store.current_model()
    trained, curve = current["threshold"], current["metrics"]["operating_curve"]
    try:
        moved = csbot("operating-point", "--acceptance", "1.0", home=home)
        assert moved.returncode == 0, moved.stderr
        loosest = min(p["threshold"] for p in curve["points"])
        assert store.current_model()["threshold"] == loosest
        assert f"{current['id']} serves at threshold {loosest:.4f} (was {trained:.4f})" in moved.stdout
        assert "accepts 100.0% at precision" in moved.stdout
        refused = csbot("operating-point", current["id"], "--precision", "1.5", home=home)
        assert refused.returncode == 1 and "between 0.5 and 1" in refused.stderr and "Traceback" not in refused.stderr
        assert store.current_model()["threshold"] == loosest
        assert store.audit_log(action="operating_point")[0]["detail"]["by"] == "acceptance"
    finally:
        back = csbot("operating-point", "--default", home=home)
    assert back.returncode == 0 and store.current_model()["threshold"] == pytest.approx(trained)

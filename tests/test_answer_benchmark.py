"""`evaluate-answers`: the curated-answer search scored on a small FAQ through the serving code, in
a throwaway store (the encoder faked by conftest.HashingEncoder; the command's own run on real
data is a benchmark, docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import HashingEncoder

from csbot.cli import cmd_evaluate_answers
from csbot.errors import DataError
from csbot.service.answer_benchmark import read_tests, shares

ANSWERS = """key,questions,answer
gift_wrap,do you gift wrap orders|can you wrap my present,Yes: gift wrap is £4 at checkout.
delivery_abroad,do you ship abroad|international delivery to france,We ship to 30 countries.
opening_hours,what are your opening hours|when is the shop open,9 to 5 every day.
"""
TESTS = """text,key
can you gift wrap my orders,gift_wrap
delivery to france,delivery_abroad
when is the shop open today,opening_hours
do you ship bicycles,
"""


def test_the_shares_at_one_threshold():
    tops = [("a", 0.9), ("b", 0.7), ("a", 0.4), (None, float("-inf")), ("a", 0.65)]
    assert shares(tops, ["a", "a", "a", "", ""], 0.6) == {"threshold": 0.6, "right": 0.3333,
                                                           "wrong": 0.3333, "declined_uncovered": 0.5}


def test_a_faq_scored_through_the_serving_code_touches_no_home(tmp_path, capsys):
    (tmp_path / "answers.csv").write_text(ANSWERS)
    (tmp_path / "test.csv").write_text(TESTS)
    home = tmp_path / "home"  # as `--home` names it: the command must not make or change it
    args = argparse.Namespace(home=str(home), answers=str(tmp_path / "answers.csv"), test=str(tmp_path / "test.csv"),
                              json=str(tmp_path / "out.json"))
    assert cmd_evaluate_answers(args, encoder=HashingEncoder()) == 0
    figures = json.loads((tmp_path / "out.json").read_text())
    assert (figures["answers"], figures["phrasings"], figures["covered"], figures["uncovered"]) == (3, 6, 3, 1)
    assert figures["top1"] == 1.0 and figures["threshold"] == 0.6  # the English default, as served
    assert figures["right"] + figures["wrong"] <= 1 and figures["declined_uncovered"] in (0.0, 1.0)
    loosest, strictest = figures["curve"][0], figures["curve"][-1]
    assert loosest["right"] >= strictest["right"] and loosest["declined_uncovered"] <= strictest["declined_uncovered"]
    assert json.loads(capsys.readouterr().out)["tests"] == 4
    assert not home.exists()


def test_test_rows_must_name_an_answer_or_none(tmp_path):
    (tmp_path / "test.csv").write_text("text,key\nhello,gift_wrap\n,gift_wrap\nbye,no_such_key\n")
    with pytest.raises(DataError, match=r"2 problem\(s\): line 3: empty text; line 4: key 'no_such_key'"):
        read_tests(tmp_path / "test.csv", {"gift_wrap"})
    (tmp_path / "bad.csv").write_text("question,answer\nhi,x\n")
    with pytest.raises(DataError, match="needs the columns text and key"):
        read_tests(tmp_path / "bad.csv", {"gift_wrap"})

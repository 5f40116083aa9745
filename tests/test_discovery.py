"""Intent discovery (dialogue/discovery.py) on a small fixed set, with the real default encoder:
the groups match the intents the set was written with, come out the same every time and in any
input order, and are named from their own words; and `csbot discover` from the command line."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import csbot

from csbot.dialogue.discovery import cluster, discover, has_words, key_phrases, name_of, slotted, terms
from csbot.nlu.basemodels import resolve_model_path
from csbot.nlu.embedder import OnnxSentenceEncoder
from csbot.settings import DEFAULT_BASE_MODEL

DATA = Path(__file__).parent / "data" / "discovery.csv"


@pytest.fixture(scope="module")
def real_encoder(tmp_path_factory):
    return OnnxSentenceEncoder(DEFAULT_BASE_MODEL, path=resolve_model_path(DEFAULT_BASE_MODEL),
                               cache_dir=tmp_path_factory.mktemp("cache"))


def rows():
    with open(DATA, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def partition(labels) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, set()).add(i)
    return {frozenset(g) for g in groups.values()}


def test_the_groups_are_the_intents_the_set_was_written_with(real_encoder):
    texts, truth = zip(*[(r["text"], r["intent"]) for r in rows()])
    found = discover(list(texts), real_encoder)
    assert len(found.groups) == 4
    for group in found.groups:  # each group is one intent, nearly whole
        intents = [truth[i] for i in group.members]
        top = max(set(intents), key=intents.count)
        assert intents.count(top) >= 0.9 * len(intents) and intents.count(top) >= 8, (group.name, intents)
    assert sum(label < 0 for label in found.labels) <= 2


def test_the_same_messages_give_the_same_groups_in_any_order(real_encoder):
    texts = [r["text"] for r in rows()]
    first, again = discover(texts, real_encoder), discover(texts, real_encoder)
    assert first.labels == again.labels
    assert [g.name for g in first.groups] == [g.name for g in again.groups]
    order = list(reversed(range(len(texts))))
    backwards = discover([texts[i] for i in order], real_encoder)
    as_given = [backwards.labels[order.index(i)] for i in range(len(texts))]
    assert partition(as_given) == partition(first.labels)


def test_each_group_is_named_from_its_own_words_with_its_typical_examples_first(real_encoder):
    texts = [r["text"] for r in rows()]
    found = discover(texts, real_encoder)
    names = {g.name for g in found.groups}
    assert any("refund" in n for n in names) and any("wrap" in n or "gift" in n for n in names), names
    for group in found.groups:
        assert group.typical and set(group.typical) <= set(group.members)
        assert 0 < group.tightness <= 1
        centre = real_encoder([texts[i] for i in group.members]).mean(0)
        near = real_encoder([texts[group.typical[0]]])[0] @ centre
        assert near >= max(real_encoder([texts[i]])[0] @ centre for i in group.members) - 1e-5


def test_draft_replies_come_from_agent_answers_with_personal_data_as_slots(encoder):
    texts = ["do you gift wrap"] * 3 + ["can you gift wrap it"] * 3
    replies = ["Hi <name>, yes: gift wrap is £3, add it at checkout for {order_id}.",
               "Yes, we gift wrap for £3; tick the box at checkout.",
               "Your card <card> was charged.",  # personal data no slot stands for: never a draft
               None, "Yes, we gift wrap for £3; tick the box at checkout.", "Write to <email> for wrapping."]
    found = discover(texts, encoder, replies=replies)
    (group,) = found.groups
    assert "Hi {customer_name}, yes: gift wrap is £3, add it at checkout for {order_id}." in group.drafts
    assert "Write to {email} for wrapping." in group.drafts
    assert not any("<" in d for d in group.drafts)
    assert len(group.drafts) == len(set(group.drafts)) <= 3


def test_messages_with_no_words_of_their_own_are_outliers(encoder):
    texts = ["{order_id}", "<email>", "where is my parcel", "where is my parcel please", "my parcel is where"]
    found = discover(texts, encoder)
    assert found.labels[:2] == [-1, -1]
    assert found.labels[2:] == [0, 0, 0]


def test_a_group_smaller_than_the_minimum_size_is_outliers_and_the_largest_is_numbered_first(real_encoder):
    texts = [r["text"] for r in rows()][:25]  # 10 about orders, 10 about refunds, 5 about payment
    x = real_encoder(texts)
    labels, k = cluster(x, min_size=1)
    sizes = np.bincount(labels)
    assert k == 5 and (labels >= 0).all() and list(sizes) == sorted(sizes, reverse=True)
    smallest = sizes.min()
    fewer, _ = cluster(x, min_size=smallest + 1)
    assert smallest < sizes.max()
    assert (fewer[labels == len(sizes) - 1] == -1).all() and (fewer >= 0).sum() == len(texts) - smallest


def test_words_for_names():
    assert has_words("ok") and has_words("在吗") and not has_words("{order_id}, <phone>")
    assert terms("Where is my PARCEL?") == ["parcel"]
    assert terms("退款到账") == ["退款", "款到", "到账", "退款到", "款到账"]
    assert name_of(["card", "arrived"], 3) == "card_arrived" and name_of([], 3) == "topic_3"
    assert slotted("Hi <name>, sent to <email>") == "Hi {customer_name}, sent to {email}"
    assert slotted("card <card> refunded") is None
    everyone = {"refund": 3, "card": 40, "lamp": 2}
    assert key_phrases(["refund the lamp", "refund please", "my card"], everyone, 100)[0] == "refund"


def test_discover_from_the_command_line_writes_every_turn_in_order_and_never_reads_an_intent_column(tmp_path):
    home = tmp_path / "home"
    assert csbot("init", home=home).returncode == 0
    labelled, plain = tmp_path / "labelled.csv", tmp_path / "plain.csv"
    labelled.write_text(DATA.read_text(encoding="utf-8"), encoding="utf-8")
    plain.write_text("text\n" + "".join(f'"{r["text"]}"\n' for r in rows()), encoding="utf-8")
    out = tmp_path / "out.json"
    done = csbot("discover", str(labelled), "--json", str(out), home=home)
    assert done.returncode == 0, done.stderr
    found = json.loads(out.read_text(encoding="utf-8"))
    assert len(found["assignments"]) == len(rows())
    assert found["estimated_groups"] == len(found["groups"]) >= 3
    for group in found["groups"]:
        assert {"id", "name", "key_phrases", "size", "tightness", "typical", "drafts", "closest_intent"} <= set(group)
        assert group["size"] == found["assignments"].count(group["id"])
    refund = next(g for g in found["groups"] if "refund" in g["name"])
    assert refund["closest_intent"]["intent"] == "refund_status"  # the demo shop's own intent
    done = csbot("discover", str(plain), "--json", str(tmp_path / "plain.json"), home=home)
    assert json.loads((tmp_path / "plain.json").read_text())["assignments"] == found["assignments"]

"""From imported history to intents, and the gaps answered (service/review.py, store/proposals.py), on
both engines: proposals kept in the store and never duplicated, each review action audited and one
transaction, accepting making an intent with its examples and templates (or adding to an existing
one), a discovery run in the background with a lease, and a gap topic answered once serving all its
phrasings at once. The encoder is the hashing fake: texts that share words are alike."""

import json
import time

import pytest
from conftest import HashingEncoder

from csbot.errors import DataError, TemplateError
from csbot.service.engine import Engine
from csbot.store import Store

TOPICS = {  # customer wordings per topic, and the agent's reply to them
    "wrap": (["can you gift wrap my order", "is gift wrap available", "gift wrap for a present please",
              "do you gift wrap the vase", "how much is gift wrap", "gift wrap option at checkout",
              "I want gift wrap on it", "add gift wrap to the order"],
             "Hi <name>, yes, gift wrap is £3.50: tick it at checkout for {order_id}."),
    "collect": (["can I collect in store", "click and collect in store today", "collect from the store",
                 "is store collect free", "collect my order at the store", "store collect opening times",
                 "where do I collect in store", "store collect for my order"],
                "You can collect from our Manchester store, free, from the next working day."),
    "assembly": (["assembly instructions for the table", "the table assembly instructions are missing",
                  "lost assembly instructions table", "need table assembly instructions",
                  "assembly instructions pdf for the table", "where are the table assembly instructions",
                  "table assembly instructions please", "assembly instructions of the oak table"],
                 "The assembly instructions are at bramblebirch.example/help; mail <email> if not."),
}


@pytest.fixture
def engine(store, settings):
    engine = Engine(settings, store=store, encoder=HashingEncoder())
    engine.load_defaults()
    return engine


@pytest.fixture
def history(tmp_path):
    lines = []
    for topic, (asked, reply) in TOPICS.items():
        for n, text in enumerate(asked):
            lines.append({"id": f"{topic}-{n}", "turns": [{"role": "customer", "text": text},
                                                          {"role": "agent", "text": reply.replace("<name>", "Sam")
                                                           .replace("{order_id}", "BB-482913")
                                                           .replace("<email>", "help@shop.example")}]})
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def imported(engine, history) -> str:
    return engine.import_history(history, actor="sam")["import"]


def by_topic(proposals: list[dict], engine) -> dict[str, dict]:
    out = {}
    for p in proposals:
        texts = {t["text"] for t in engine.store.proposal(p["id"])["turns"]}
        topic = next(name for name, (asked, _) in TOPICS.items() if texts & set(asked))
        out[topic] = engine.store.proposal(p["id"])
    return out


def test_discovery_keeps_one_proposal_per_topic_and_a_second_run_adds_nothing(engine, history, settings):
    import_id = imported(engine, history)
    first = engine.review.run(import_id, actor="sam")
    assert first == {"groups": 3, "new": 3, "outliers": 0, "turns": 24}
    proposals = by_topic(engine.store.proposals(), engine)
    assert {k: v["size"] for k, v in proposals.items()} == {"wrap": 8, "collect": 8, "assembly": 8}
    for topic, proposal in proposals.items():  # each wording in one proposal, its own topic's
        assert {t["text"] for t in proposal["turns"]} == set(TOPICS[topic][0])
    assert "gift" in proposals["wrap"]["name"] or "wrap" in proposals["wrap"]["name"]
    assert proposals["wrap"]["drafts"] == ["Hi {customer_name}, yes, gift wrap is £3.50: tick it at checkout "
                                           "for {order_id}."]  # the agent's reply, its name and order as slots
    again = engine.review.run(import_id, actor="sam")
    assert again["new"] == 0 and len(engine.store.proposals()) == 3
    restarted = Engine(settings, store=Store(engine.store.db), encoder=HashingEncoder())  # a second process
    assert [p["id"] for p in restarted.store.proposals()] == [p["id"] for p in engine.store.proposals()]
    assert engine.store.audit_log(action="discover")[0]["actor"] == "sam"


def test_rename_merge_move_and_accept_make_an_intent_with_its_examples_and_templates(engine, history):
    engine.review.run(imported(engine, history), actor="sam")
    p = by_topic(engine.store.proposals(), engine)
    wrap, collect, assembly = p["wrap"]["id"], p["collect"]["id"], p["assembly"]["id"]
    engine.review.rename(wrap, "gift wrapping", actor="sam")
    assert engine.store.proposal(wrap)["name"] == "gift_wrapping"
    with pytest.raises(DataError, match="printable"):
        engine.review.rename(wrap, "\n", actor="sam")
    moved = engine.store.proposal(assembly)["turns"][0]["key"]
    engine.review.move(moved, collect, actor="sam")
    assert engine.store.proposal(assembly)["size"] == 7 and engine.store.proposal(collect)["size"] == 9
    engine.review.merge(wrap, collect, actor="sam")
    assert engine.store.proposal(wrap)["size"] == 17 and engine.store.proposal(collect)["status"] == "merged"
    with pytest.raises(DataError, match="not open"):
        engine.review.rename(collect, "x", actor="sam")
    with pytest.raises(TemplateError):
        engine.review.accept(wrap, actor="sam", templates=["Hello {no_such_slot}"])
    assert engine.store.proposal(wrap)["status"] == "open"  # a refused accept changes nothing
    done = engine.review.accept(wrap, actor="sam", templates=["Yes, gift wrap is £3.50 at checkout."])
    assert done == {"intent": "gift_wrapping", "examples": 17, "new_examples": 17}
    assert engine.store.templates()["gift_wrapping"] == ["Yes, gift wrap is £3.50 at checkout."]
    trained_on = [text for text, intent in engine.store.examples() if intent == "gift_wrapping"]
    assert set(trained_on) == set(TOPICS["wrap"][0]) | set(TOPICS["collect"][0]) | {
        t["text"] for t in engine.store.proposal(wrap)["turns"]}
    assert engine.store.proposal(wrap)["status"] == "accepted"
    with pytest.raises(DataError, match="not open"):
        engine.review.accept(wrap, actor="sam")
    actions = [a["action"] for a in engine.store.audit_log(actor="sam")]
    for action in ("proposal_rename", "proposal_move", "proposal_merge", "proposal_accept"):
        assert action in actions
    assert engine.review.run(engine.store.history_imports()[0]["id"], actor="sam")["new"] == 0


def test_a_proposal_is_added_to_an_existing_intent_or_rejected(engine, history):
    engine.review.run(imported(engine, history), actor="sam")
    p = by_topic(engine.store.proposals(), engine)
    before = engine.store.templates()["order_status"]
    engine.review.accept(p["collect"]["id"], actor="sam", intent="order_status")
    assert engine.store.templates()["order_status"] == before  # its templates stay
    assert set(TOPICS["collect"][0]) <= {t for t, i in engine.store.examples() if i == "order_status"}
    with pytest.raises(DataError, match="no intent"):
        engine.review.accept(p["wrap"]["id"], actor="sam", intent="no_such_intent")
    engine.review.reject(p["assembly"]["id"], actor="sam")
    assert engine.store.proposal(p["assembly"]["id"])["status"] == "rejected"
    assert [x["id"] for x in engine.store.proposals()] == [p["wrap"]["id"]]


def test_a_split_keeps_every_example_in_one_of_its_parts(engine, history):
    engine.review.run(imported(engine, history), actor="sam")
    p = by_topic(engine.store.proposals(), engine)
    engine.review.merge(p["wrap"]["id"], p["assembly"]["id"], actor="sam")
    keys = {t["key"] for t in engine.store.proposal(p["wrap"]["id"])["turns"]}
    parts = engine.review.split(p["wrap"]["id"], actor="sam")
    assert len(parts) >= 2 and engine.store.proposal(p["wrap"]["id"])["status"] == "split"
    held = [{t["key"] for t in engine.store.proposal(part)["turns"]} for part in parts]
    assert set().union(*held) == keys and sum(map(len, held)) == len(keys)
    wrapping = {t["key"] for t in p["wrap"]["turns"]}
    assert all(part <= wrapping or not part & wrapping for part in held)  # no part mixes the two topics


def test_discovery_runs_in_the_background_and_a_dead_run_never_blocks_the_next(settings, history):
    engine = Engine(settings, encoder=HashingEncoder())  # the home's SQLite file: threads share it, as in a server
    engine.load_defaults()
    import_id = imported(engine, history)
    engine.review.start(import_id, user="sam")
    deadline = time.monotonic() + 120
    while (run := engine.review.status())["status"] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    assert run["status"] == "done" and run["step"] == 100 and len(engine.store.proposals()) == 3
    dead = engine.store.create_job(kind="discover", device="cpu", at=time.time() - 3600)  # its process died
    assert engine.review.status()["id"] == dead and engine.review.status()["status"] == "interrupted"
    engine.review.start(import_id, user="sam")  # not blocked by the dead one


def test_a_gap_topic_answered_once_serves_its_phrasings_at_once(engine):
    asked = ["do you sell garden furniture", "any garden furniture for sale", "garden furniture in stock?",
             "my cat ate the invoice"]
    for text in asked:
        assert engine.bot.respond(text).route == "fallback"
    topics = engine.review.gaps(days=7)
    garden = next(t for t in topics if t["messages"] == 3)
    assert "garden" in garden["name"] and garden["open"] == 3
    assert any(t["messages"] == 1 and t["examples"] == ["my cat ate the invoice"] for t in topics)
    engine.review.answer_topic(garden["ids"], key="garden_furniture", answer="We don't sell garden furniture yet.",
                               actor="sam")
    for text in asked[:3]:
        reply = engine.bot.respond(text)
        assert reply.route == "answer" and "garden furniture yet" in reply.text
    assert all(engine.store.message(i)["inbox_status"] == "answered" for i in garden["ids"])
    assert [t["messages"] for t in engine.review.gaps(days=7)] == [3, 1]  # answered, still counted in the window


def test_live_wordings_are_scrubbed_before_they_become_phrasings_or_examples(engine):
    reply = engine.bot.respond("my name is Sam Lee, is order BB-482913 gift wrapped? mail sam@example.com")
    message = reply.message_id - 1
    intent = next(iter(engine.store.intents()))
    engine.label(message, intent, author="sam")
    kept = [t for t, i in engine.store.examples() if i == intent and "gift wrapped" in t]
    assert kept == ["my name is <name>, is order {order_id} gift wrapped? mail <email>"]
    engine.attach_question(engine.store.answers()[0]["id"], "call me on 07700 900123 about it", actor="sam")
    phrasings = [q["question"] for q in engine.store.questions(engine.store.answers()[0]["id"])]
    assert "call me on <phone> about it" in phrasings

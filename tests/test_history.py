"""Raw support history in, without labels: the three forms, bad files refused whole with their line
numbers, each customer turn kept with the agent reply that answered it, personal data scrubbed
before anything is stored (the raw text is nowhere in the store), and a second import of the same
history adding nothing. On both engines; the command line once."""

import json

import pytest
from conftest import HashingEncoder, csbot

from csbot.errors import DataError
from csbot.importer import read_history
from csbot.service.engine import Engine

TURNS = """conversation_id,role,text,created_at
c1,system,[customer joined the chat],2026-01-02T10:00
c1,customer,hi there,2026-01-02T10:00
c1,customer,"my name is Priya Patel, where is order BB-482913?",2026-01-02T10:01
c1,agent,"Hi Priya, it left our warehouse today.",2026-01-02T10:02
c1,agent,Anything else I can help with?,2026-01-02T10:02
c1,bot,How did we do? Rate us 1-5,2026-01-02T10:03
c2,customer,do you gift wrap? card 4539 1488 0343 6467 was charged twice,
c2,agent,"Yes, gift wrap is £3.50; I've refunded the second charge.",
"""
CONVERSATIONS = [
    {"id": "z1", "turns": [{"role": "customer", "text": "我叫王小明，手机13800138000，订单号：202411230017到哪了"},
                           {"role": "agent", "text": "王小明您好，已经发货了", "at": "2026-01-03T09:00"}]},
    {"id": 7, "turns": [{"role": "bot", "text": "您好，请问有什么可以帮您？"}, {"role": "customer", "text": "能开发票吗"}]},
]


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_of_turns_keeps_customer_turns_with_the_reply_that_answered_each(tmp_path):
    turns = read_history(write(tmp_path, "turns.csv", TURNS))
    assert [(t["conversation"], t["position"], t["text"][:12]) for t in turns] == [
        ("c1", 0, "hi there"), ("c1", 1, "my name is P"), ("c2", 0, "do you gift ")]
    assert turns[0]["agent_reply"] is None  # the greeting was not what the agent answered
    assert turns[1]["agent_reply"] == "Hi Priya, it left our warehouse today. Anything else I can help with?"
    assert turns[1]["created_at"] == "2026-01-02T10:01"


def test_json_lines_and_a_plain_csv_of_messages_read_the_same_way(tmp_path):
    lines = "\n".join(json.dumps(c, ensure_ascii=False) for c in CONVERSATIONS) + "\n"
    turns = read_history(write(tmp_path, "history.jsonl", lines))
    assert [(t["conversation"], t["agent_reply"]) for t in turns] == [("z1", "王小明您好，已经发货了"), ("7", None)]
    plain = read_history(write(tmp_path, "questions.csv", "text\nwhere is my order?\ndo you ship to Ireland?\n"))
    assert [(t["conversation"], t["text"], t["agent_reply"]) for t in plain] == [
        ("line-2", "where is my order?", None), ("line-3", "do you ship to Ireland?", None)]


@pytest.mark.parametrize("name, text, problems", [
    ("turns.csv", "conversation_id,role,text\nc1,customer,hello\nc1,robot,hi\n,customer,x\nc2,agent,\n",
     ["line 3: role 'robot' is not one of", "line 4: conversation_id is empty", "line 5: text is empty"]),
    ("turns.csv", "role,text\ncustomer,hi\n", ["needs the columns conversation_id, role and text"]),
    ("h.jsonl", '{"id": "a", "turns": [{"role": "customer", "text": "hi"}]}\n{not json\n{"id": "b"}\n'
                '{"id": "c", "turns": [{"role": "customer", "text": ""}, "x"]}\n',
     ["line 2: not JSON", 'line 3: expected {"id"', "line 4: turn 1's text is empty", "line 4: turn 2 must be"]),
    ("empty.csv", "conversation_id,role,text\nc1,agent,hello\n", ["no customer turns"]),
])
def test_a_bad_history_file_is_refused_whole_with_its_line_numbers(tmp_path, name, text, problems):
    with pytest.raises(DataError) as refused:
        read_history(write(tmp_path, name, text))
    for problem in problems:
        assert problem in str(refused.value)


def test_history_is_stored_scrubbed_and_a_second_import_adds_nothing(store, settings, tmp_path):
    engine = Engine(settings, store=store, encoder=HashingEncoder())
    path = write(tmp_path, "turns.csv", TURNS)
    summary = engine.import_history(path, actor="sam")
    assert (summary["turns"], summary["new"], summary["conversations"]) == (3, 3, 2)
    assert summary["scrubbed"] == {"card": 1, "name": 2, "order_id": 1}  # "Priya Patel", and "Priya" in the reply
    turns = store.history_turns()
    assert turns[1]["text"] == "my name is <name>, where is order {order_id}?"
    assert turns[1]["agent_reply"].startswith("Hi <name>, it left")
    assert turns[2]["text"] == "do you gift wrap? card <card> was charged twice"
    stored = json.dumps(store.history_turns() + store.history_imports() + store.audit_log(actor=None), default=str)
    for secret in ("Priya", "Patel", "4539", "482913"):
        assert secret not in stored
    again = engine.import_history(path, actor="sam")
    assert (again["import"], again["new"]) == (summary["import"], 0) and len(store.history_turns()) == 3
    assert len(store.history_imports()) == 1
    assert [e["action"] for e in store.audit_log(actor="sam")].count("import_history") == 2


def test_import_history_from_the_command_line(tmp_path):
    lines = "\n".join(json.dumps(c, ensure_ascii=False) for c in CONVERSATIONS) + "\n"
    result = csbot("import-history", str(write(tmp_path, "history.jsonl", lines)), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 customer turns (2 new) from 2 conversations; personal data replaced: ")
    assert "1 phone" in result.stdout and "1 order_id" in result.stdout and "name" in result.stdout
    bad = csbot("import-history", str(write(tmp_path, "bad.jsonl", "{oops\n")), home=tmp_path / "home")
    assert bad.returncode == 1 and "line 1: not JSON" in bad.stderr and "Traceback" not in bad.stderr


def test_the_import_scrubs_in_batches_of_whole_conversations_and_reports_progress(tmp_path, settings):
    from csbot.service.engine import _conversation_batches

    turns = [{"conversation": c, "text": "x"} for c in ["a"] * 3 + ["b"] * 4 + ["c"]]
    batches = list(_conversation_batches(turns, size=2))
    assert [(start, [t["conversation"] for t in batch]) for start, batch in batches] == [
        (0, ["a", "a", "a"]), (3, ["b", "b", "b", "b"]), (7, ["c"])]
    engine = Engine(settings, encoder=HashingEncoder())
    said = []
    engine.import_history(write(tmp_path, "turns.csv", TURNS), actor="sam", progress=lambda share, what: said.append(
        (share, what)))
    assert said == [(0.0, "scrubbing")]

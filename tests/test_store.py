import pytest
from sqlite_utils import Database

from csbot.errors import DataError
from csbot.store import MIGRATIONS, Store, example_id


def test_migrations_apply_once(tmp_path):
    path = tmp_path / "csbot.db"
    Store.open(path)
    store = Store.open(path)  # reopening applies nothing twice
    assert MIGRATIONS.pending(store.db) == []
    assert {"messages", "answers", "model_versions", "jobs", "examples"} <= set(store.db.table_names())
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_example_ids_ignore_case_and_spacing():
    assert example_id("Where is my order?", "x") == example_id("  where is  my order? ", "x")
    assert example_id("hi", "x") != example_id("hi", "y")


def test_answers_upsert_by_key(store):
    first = store.upsert_answer(key="wrap", questions=["Do you wrap?", "Do you wrap?"], answer="Yes")
    again = store.upsert_answer(key="wrap", questions=["Gift wrap?"], answer="Yes, £4")
    assert first == again
    [row] = store.answers()
    assert row["answer"] == "Yes, £4" and row["questions"] == ["Gift wrap?"]
    store.delete_answer(first)
    assert store.answers() == [] and store.questions() == []


def test_intent_templates_replace_in_one_go(store):
    store.set_intent("greeting", description="hi", templates=["Hello", "Hi"])
    store.set_intent("greeting", description="hi", templates=["Hey"])
    assert store.templates() == {"greeting": ["Hey"]}
    assert store.intents() == {"greeting": "hi"}


def test_conversations_keep_slots_and_messages(store):
    conversation = store.conversation(None, channel="web")
    store.update_conversation(conversation["id"], slots={"order_id": "BB-1"}, pending_intent="x")
    again = store.conversation(conversation["id"])
    assert again["slots"] == {"order_id": "BB-1"} and again["pending_intent"] == "x"
    mid = store.add_message(again["id"], role="customer", text="hi")
    store.flag_for_inbox(mid, reason="fallback")
    assert [m["text"] for m in store.inbox()] == ["hi"]


def test_only_one_model_is_current(store):
    for version, created in (("v1", "2026-01-01"), ("v2", "2026-01-02")):
        store.add_model_version({"id": version, "path": "/x", "created_at": created, "metrics": {"accuracy": 1}})
    store.set_current_model("v1")
    store.set_current_model("v2")
    assert store.current_model()["id"] == "v2"
    assert sum(r["is_current"] for r in store.model_versions()) == 1
    with pytest.raises(DataError, match="no model version 'v9'"):
        store.set_current_model("v9")


def test_memory_store_is_independent():
    a, b = Store(Database(memory=True)), Store(Database(memory=True))
    a.set_shop({"shop_name": "A"})
    assert b.shop() == {}


def test_a_rating_is_stored_only_on_a_bot_reply_of_that_conversation_and_a_dislike_fills_the_inbox(store):
    cid = store.conversation(None)["id"]
    asked = store.add_message(cid, role="customer", text="where is my order")
    reply = store.add_message(cid, role="bot", text="On its way", route="template")
    other = store.conversation(None)["id"]
    with pytest.raises(DataError, match="not a bot reply in this conversation"):
        store.rate(other, reply, 1)
    with pytest.raises(DataError, match="not a bot reply"):
        store.rate(cid, asked, 1)
    with pytest.raises(DataError, match="rating is 1"):
        store.rate(cid, reply, 5)
    store.rate(cid, reply, -1)
    assert store.message(reply)["rating"] == -1
    [item] = store.inbox()
    assert item["id"] == asked and item["inbox"] == "disliked" and item["reply_id"] == reply


def test_inbox_items_close_with_a_known_status(store):
    cid = store.conversation(None)["id"]
    message = store.add_message(cid, role="customer", text="??")
    store.flag_for_inbox(message, reason="fallback")
    with pytest.raises(DataError, match="inbox status must be"):
        store.set_inbox_status(message, "gone")
    store.set_inbox_status(message, "dismissed")
    assert store.inbox() == [] and store.inbox(status="dismissed")[0]["id"] == message


def test_a_missing_answer_is_a_clear_error(store):
    with pytest.raises(DataError, match="no curated answer 99"):
        store.answer(99)


def test_users_are_listed_without_password_hashes(store):
    store.add_user("sam", role="staff", password_hash="scrypt$x")
    with pytest.raises(DataError, match="already a user named 'sam'"):
        store.add_user("sam", role="admin", password_hash="scrypt$y")
    assert store.users()[0]["name"] == "sam" and "password_hash" not in store.users()[0]
    assert store.user("sam")["password_hash"] == "scrypt$x" and store.user("kim") is None


def test_a_commit_that_fails_rolls_back_and_leaves_no_transaction_open():
    """A failing COMMIT, for real: a deferred foreign key is only checked when the transaction commits."""
    import sqlite3

    from csbot.store import write

    db = Database(memory=True)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                     "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) "
                     "DEFERRABLE INITIALLY DEFERRED);")
    with pytest.raises(sqlite3.IntegrityError):
        with write(db):
            db.execute("INSERT INTO child (id, parent) VALUES (1, 99)")
    assert not db.conn.in_transaction and db.execute("SELECT count(*) FROM child").fetchone()[0] == 0
    db.execute("INSERT INTO parent (id) VALUES (1)")  # later writes commit as usual
    assert db.execute("SELECT count(*) FROM parent").fetchone()[0] == 1

import json

import pytest

from csbot.errors import DataError
from csbot.store import Store, client_key, example_id, migrations, open_database, write
from csbot.store.sqlite import SqliteDatabase

ENGINES = ["sqlite", "postgresql"]


def target(engine: str, request, tmp_path):
    """Where a store of this engine lives: a SQLite file, or a new PostgreSQL database."""
    return tmp_path / "csbot.db" if engine == "sqlite" else request.getfixturevalue("database_url")


@pytest.mark.parametrize("engine", ENGINES)
def test_migrations_apply_once(engine, request, tmp_path):
    where = target(engine, request, tmp_path)
    Store.open(where).close()
    store = Store.open(where)  # reopening applies nothing twice
    assert migrations.pending(store.db) == [] and migrations.apply(store.db) == []
    assert {"messages", "answers", "model_versions", "jobs", "examples"} <= store.db.tables()
    if engine == "sqlite":
        assert store.db.value("PRAGMA journal_mode") == "wal"
    else:  # PostgreSQL's own types where they matter
        types = dict(store.db.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = 'messages'").fetchall())
        assert types["trace"] == "jsonb" and types["created_at"] == "timestamp with time zone"
    store.close()


def test_a_store_migrated_by_sqlite_utils_is_recognised(tmp_path):
    """Stores made before the schema was portable recorded their migrations in sqlite-utils' table."""
    path = tmp_path / "csbot.db"
    store = Store.open(path)
    store.set_shop({"shop_name": "Old shop"})
    store.db.execute("CREATE TABLE _sqlite_migrations (migration_set TEXT, name TEXT, applied_at TEXT)")
    store.db.execute("INSERT INTO _sqlite_migrations SELECT 'csbot', name, applied_at FROM schema_migrations")
    store.db.execute("DROP TABLE schema_migrations")
    store.close()
    again = Store.open(path)  # would fail creating tables that exist if the old record were ignored
    assert again.shop() == {"shop_name": "Old shop"} and migrations.pending(again.db) == []
    assert again.db.value("SELECT count(*) FROM schema_migrations") == len(migrations.MIGRATIONS)


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


def test_two_staff_editing_one_answer_the_second_is_told_and_nothing_is_lost(store):
    from csbot.errors import StaleEdit
    answer_id = store.upsert_answer(key="wrap", questions=["Do you wrap?"], answer="Yes")
    opened_by_sam = opened_by_kim = store.answer(answer_id)["revision"]
    store.upsert_answer(key="wrap", questions=["Do you wrap?", "gift wrap?"], answer="Yes", revision=opened_by_sam)
    with pytest.raises(StaleEdit, match="someone changed the answer 'wrap' after you opened it .it now has 2 "
                                        "phrasings.; nothing was saved"):
        store.upsert_answer(key="wrap", questions=["Do you wrap?", "wrapping?"], answer="Yes!", revision=opened_by_kim)
    assert store.answers()[0]["questions"] == ["Do you wrap?", "gift wrap?"] and store.answers()[0]["answer"] == "Yes"
    reopened = store.answer(answer_id)["revision"]  # kim opens it again and adds hers beside sam's
    store.upsert_answer(key="wrap", questions=["Do you wrap?", "gift wrap?", "wrapping?"], answer="Yes!",
                        revision=reopened)
    store.add_question(answer_id, "can you wrap it")  # an attach from the inbox is a change too
    with pytest.raises(StaleEdit):
        store.upsert_answer(key="wrap", questions=["x"], answer="y", revision=reopened + 1)  # her copy from before the attach
    assert len(store.answers()[0]["questions"]) == 4


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
    a, b = Store(SqliteDatabase(":memory:")), Store(SqliteDatabase(":memory:"))
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
    store.set_inbox_status(asked, "dismissed")
    store.rate(cid, reply, 0)
    store.rate(cid, reply, -1)  # disliked again: staff dismissed it, and it stays so
    assert store.inbox() == [] and store.message(asked)["inbox_status"] == "dismissed"


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


@pytest.mark.parametrize("engine", ENGINES)
def test_a_commit_that_fails_rolls_back_and_leaves_no_transaction_open(engine, request, tmp_path):
    """A failing COMMIT, for real: a deferred foreign key is only checked when the transaction commits."""
    db = open_database(target(engine, request, tmp_path))
    if engine == "sqlite":
        db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) "
               "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(Exception, match="(?i)foreign key"):
        with write(db):
            db.execute("INSERT INTO child (id, parent) VALUES (1, 99)")
    assert not db.in_transaction and db.value("SELECT count(*) FROM child") == 0
    db.execute("INSERT INTO parent (id) VALUES (1)")  # later writes commit as usual
    assert db.value("SELECT count(*) FROM parent") == 1
    db.close()


def test_a_whole_store_copies_from_sqlite_to_postgresql_and_back(tmp_path, database_url):
    from csbot.store.transfer import TABLES, copy_store

    source = Store.open(tmp_path / "csbot.db")
    source.set_shop({"shop_name": "Copy shop"})
    source.set_intent("greeting", description="hi", templates=["Hello", "Hi there"])
    wrap = source.upsert_answer(key="wrap", questions=["Do you wrap?", "Gift wrap?"], answer="Yes, £4")
    source.add_negative(wrap, "do you wrap sandwiches", actor="ada")
    source.set_answer_tuning(precision=0.9, actor="ada")
    cid = source.conversation(None, channel="web")["id"]
    asked = source.add_message(cid, role="customer", text="wrap?")
    source.add_message(cid, role="bot", text="Yes", route="answer", trace={"threshold": float("-inf"), "score": 0.9})
    source.flag_for_inbox(asked, reason="low_confidence")
    source.add_user("ada", role="admin", password_hash="scrypt$x")
    source.audit("ada", "login", detail={"ok": True})
    source.add_history(name="h.csv", turns=[{"conversation": "c1", "position": 0, "text": "mail <email>",
                                             "agent_reply": "Done", "created_at": None}],
                       scrubbed={"email": 1}, actor="ada")

    target = Store.open(database_url)
    copied = copy_store(source, target)
    assert set(TABLES) == source.db.tables() - {"schema_migrations"}  # every table of the schema is copied
    assert copied["messages"] == 2 and copied["answer_questions"] == 2
    assert target.answers()[0]["negatives"] == ["do you wrap sandwiches"]
    assert target.answer_tuning() == {"threshold": None, "precision": 0.9}
    assert target.answers()[0]["questions"] == ["Do you wrap?", "Gift wrap?"] and target.shop() == source.shop()
    assert target.templates() == source.templates() and target.generations() == source.generations()
    assert [m["text"] for m in target.inbox()] == ["wrap?"]
    assert json.loads(target.messages(cid)[1]["trace"]) == {"threshold": None, "score": 0.9}  # jsonb has no -inf
    assert target.user("ada")["password_hash"] == "scrypt$x" and target.audit_log()[0]["detail"] == {"ok": True}
    assert target.history_turns() == source.history_turns() and target.history_imports() == source.history_imports()
    # new rows continue after the copied ids
    assert target.add_message(cid, role="customer", text="thanks") > max(m["id"] for m in source.messages(cid))
    assert target.upsert_answer(key="returns", questions=["Returns?"], answer="30 days") > source.answers()[0]["id"]

    with pytest.raises(DataError, match="the target store is not empty"):
        copy_store(source, target)  # nothing is mixed into a store in use
    back = Store.open(tmp_path / "back.db")
    copy_store(target, back)
    assert back.messages(cid)[-1]["text"] == "thanks" and back.answers() == target.answers()


def test_a_postgresql_crash_loses_no_committed_row_and_the_store_reconnects(postgres, database_url):
    """The server is stopped at once (immediate mode: like a crash, recovered from its WAL) and
    started again under an open store: what was committed is there, and the pool makes new
    connections by itself (a call that had a cut connection fails once, with the driver's error)."""
    store = Store.open(database_url)
    cid = store.conversation(None, channel="web")["id"]
    ids = [store.add_message(cid, role="customer", text=f"message {i}") for i in range(20)]
    postgres.restart()
    failures = 0
    for _ in range(20):  # at most one failure per pooled connection that was cut
        try:
            found = store.messages(cid)
            break
        except Exception:
            failures += 1
    assert [m["id"] for m in found] == ids and failures <= 10
    assert store.add_message(cid, role="customer", text="after the restart") > ids[-1]
    store.close()


def test_copying_a_store_whose_rows_lost_their_parents_is_refused_with_the_counts(tmp_path, database_url):
    """SQLite never enforced the foreign keys PostgreSQL does: say which rows would break them."""
    from csbot.store.transfer import copy_store

    source = Store.open(tmp_path / "csbot.db")
    cid = source.conversation(None)["id"]
    source.add_message(cid, role="customer", text="hello")
    source.db.execute("DELETE FROM conversations")
    target = Store.open(database_url)
    with pytest.raises(DataError, match="1 messages of a missing conversation"):
        copy_store(source, target)
    assert target.db.value("SELECT count(*) FROM messages") == 0


def test_a_flood_from_one_sender_sinks_below_a_real_customers_request(store):
    flooder = client_key("203.0.113.9")
    for i in range(1000):
        cid = store.conversation(None, channel="web", client=flooder)["id"]
        store.flag_for_inbox(store.add_message(cid, role="customer", text=f"a person please {i}"),
                             reason="asked_for_person")
    real = store.conversation(None, channel="web", client=client_key("198.51.100.4"))["id"]
    asked = store.add_message(real, role="customer", text="my sofa arrived broken, can someone call me")
    store.flag_for_inbox(asked, reason="asked_for_person")
    first = store.inbox(limit=25)
    assert first[0]["id"] == asked and first[0]["sender_items"] == 1
    assert len(first) == 25 and {i["sender_items"] for i in first[1:]} == {1000}
    assert [i["id"] for i in first[1:3]] == sorted((i["id"] for i in first[1:3]), reverse=True)  # then newest
    assert len(store.inbox(limit=25, offset=1000)) == 1 and store.inbox(item=asked)[0]["id"] == asked
    assert store.inbox(reason="fallback") == [] and len(store.inbox(reason="asked_for_person", limit=2000)) == 1001
    assert client_key("203.0.113.9") == flooder and "203.0.113.9" not in flooder  # the address is not kept
    assert store.dismiss_sender(first[1]["id"]) == 1000
    assert [i["id"] for i in store.inbox()] == [asked]


def test_a_read_does_not_wait_behind_another_threads_write_on_sqlite(tmp_path):
    import threading
    import time


    store = Store.open(tmp_path / "csbot.db")
    store.upsert_answer(key="wrap", questions=["Do you wrap?"], answer="Yes")
    holding, done = threading.Event(), threading.Event()

    def slow_writer():  # a write transaction that takes 3 s (a big import, a slow disk)
        with write(store.db):
            store.db.execute("UPDATE answers SET answer = 'Yes, £4'")
            holding.set()
            done.wait(3)
    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert holding.wait(10)
    started = time.monotonic()
    assert store.answers()[0]["answer"] == "Yes"  # the last committed state, at once
    assert time.monotonic() - started < 0.5
    done.set()
    writer.join()
    assert store.answers()[0]["answer"] == "Yes, £4"
    store.close()


def test_the_live_list_is_paged_with_each_conversations_last_message_in_one_query(store):
    ids = []
    for n in range(30):
        cid = store.conversation(None, channel="web")["id"]
        store.add_message(cid, role="customer", text=f"please, a person {n}")
        store.claim_for_person(cid)  # asked for a person
        if n % 2:  # ...and a staff member answered
            store.add_message(cid, role="staff", text="on it", author="sam")
        ids.append(cid)
    first, second = store.live_conversations(limit=25), store.live_conversations(limit=25, offset=25)
    assert len(first) == 25 and len(second) == 5 and not {c["id"] for c in first} & {c["id"] for c in second}
    row = next(c for c in first + second if c["id"] == ids[1])
    assert (row["owner"], row["staff"], row["last_role"], row["last_text"]) == ("human", "sam", "staff", "on it")
    row = next(c for c in first + second if c["id"] == ids[0])
    assert (row["owner"], row["staff"], row["last_role"], row["last_text"]) == ("human", None, "customer",
                                                                                 "please, a person 0")


def test_a_page_reads_only_the_newest_messages_of_a_long_conversation(store):
    cid = store.conversation(None, channel="web")["id"]
    ids = [store.add_message(cid, role="customer", text=f"message {n}") for n in range(10)]
    assert [m["id"] for m in store.messages(cid, last=3)] == ids[-3:]  # the newest, oldest first
    assert [m["id"] for m in store.messages(cid)] == ids

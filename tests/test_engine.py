"""The engine in-process, on the tiny data, with the hashing fake of the sentence encoder."""

import pytest
from conftest import HashingEncoder

from csbot.errors import DataError, TemplateError
from csbot.service.engine import Engine


@pytest.fixture
def engine(settings):
    return Engine(settings, encoder=HashingEncoder())


def test_load_defaults_fills_the_store_and_the_index(engine, data_dir):
    summary = engine.load_defaults(data_dir)
    assert summary == {"intents": 3, "examples": 24, "new_examples": 24, "answers": 3}
    assert engine.store.shop()["shop_name"] == "Test Shop"
    assert engine.index.search("can you wrap my present")[0].answer_id == engine.store.answers()[1]["id"]
    assert (engine.settings.indexes_dir / "answers" / "CURRENT").is_file()


@pytest.mark.parametrize("breakage, error, message", [
    (("templates.yaml", "greeting:\n  description: hi\n  templates: ['Hi {nme}']\n"), TemplateError, "unknown slot"),
    (("support_log.csv", "text,intent\nhello,greeting\n,greeting\n"), DataError, "line 3: text is empty"),
    (("support_log.csv", "text,intent\nhello,greeting\nbye,farewell\n"), TemplateError,
     "intents farewell appear in the support log but have no templates"),
    (("answers.csv", "key,questions,answer\nBad Key,q,a\n"), DataError, "key 'Bad Key'"),
    (("shop.yaml", "- a list\n- not pairs\n"), TemplateError, "flat 'slot: value' pairs"),
])
def test_a_broken_data_file_loads_nothing(engine, data_dir, breakage, error, message):
    name, content = breakage
    (data_dir / name).write_text(content)
    with pytest.raises(error, match=message):
        engine.load_defaults(data_dir)
    assert engine.store.intents() == {} and engine.store.examples() == [] and engine.store.answers() == []


def test_import_answers_replaces_by_key_and_reindexes(engine, data_dir, tmp_path):
    engine.load_defaults(data_dir)
    update = tmp_path / "answers.csv"
    update.write_text("key,questions,answer\ngift_wrapping,Do you wrap gifts?,No longer.\n")
    assert engine.import_answers(update) == {"rows": 1, "answers": 3}
    hit = engine.index.search("do you wrap gifts")[0]
    assert engine.store.answer(hit.answer_id)["answer"] == "No longer."


def test_a_missing_or_damaged_index_is_rebuilt_from_the_database(engine, data_dir, settings):
    engine.load_defaults(data_dir)
    (settings.indexes_dir / "answers" / "CURRENT").unlink()
    fresh = Engine(settings, encoder=HashingEncoder())
    assert len(fresh.index) == len(engine.index) > 0


def test_curation_is_live_at_once_and_refuses_bad_input(engine, data_dir):
    engine.load_defaults(data_dir)
    with pytest.raises(DataError) as refused:
        engine.save_answer(key="Bad Key!", questions=[], answer="")
    assert len(refused.value.problems) == 3 and engine.store.answers()[0]["key"] != "Bad Key!"
    answer_id = engine.save_answer(key="gift_cards", questions=["do you sell gift cards"], answer="Yes, from £10.")
    assert engine.index.search("do you sell gift cards")[0].answer_id == answer_id
    engine.attach_question(answer_id, "voucher for a birthday present")
    assert engine.index.search("voucher for a birthday present")[0].answer_id == answer_id
    engine.delete_answer(answer_id)
    assert all(hit.answer_id != answer_id for hit in engine.index.search("do you sell gift cards"))
    with pytest.raises(DataError, match="no curated answer"):
        engine.attach_question(answer_id, "anything")


def test_a_broken_template_is_refused_and_the_old_ones_stay(engine, data_dir):
    engine.load_defaults(data_dir)
    before = engine.store.templates()["greeting"]
    with pytest.raises(TemplateError, match="unknown slot"):
        engine.set_templates("greeting", ["Hello {nobody}"])
    assert engine.store.templates()["greeting"] == before
    engine.set_templates("greeting", ["Welcome to {shop_name}!"])
    assert engine.store.templates()["greeting"] == ["Welcome to {shop_name}!"]


def test_a_labelled_message_becomes_a_staff_training_example(engine, data_dir):
    engine.load_defaults(data_dir)
    cid = engine.store.conversation(None)["id"]
    message = engine.store.add_message(cid, role="customer", text="parcel went to my neighbour")
    engine.store.flag_for_inbox(message, reason="fallback")
    with pytest.raises(DataError, match="no intent 'nope'"):
        engine.label(message, "nope", author="sam")
    engine.label(message, "order_status", author="sam")
    assert ("parcel went to my neighbour", "order_status") in engine.store.examples()
    assert engine.store.inbox() == [] and engine.store.message(message)["inbox_status"] == "labelled"


def test_compare_counts_recent_messages_whose_intent_or_route_would_change(engine, data_dir, tiny_training):
    import copy

    engine.load_defaults(data_dir)
    current = tiny_training.classifier
    cid = engine.store.conversation(None)["id"]
    for text in ("where is my order BB-100200", "i want to return the mugs", "hello", "Do you offer gift wrapping?"):
        engine.store.add_message(cid, role="customer", text=text)
    assert engine.compare(current, current) | {"examples": []} == {
        "messages": 4, "intent_changed": 0, "route_changed": 0, "against": current.version, "examples": []}
    declines = copy.copy(current)
    declines.threshold = float("inf")  # accepts nothing: every template route becomes another route
    templated = sum(p.accepted for p in current.predict(engine.store.recent_customer_messages()))
    changed = engine.compare(declines, current)
    assert changed["intent_changed"] == 0 and changed["route_changed"] == templated > 0
    assert len(changed["examples"]) == templated


def test_a_server_on_onnx_runtime_never_loads_torch(trained_home, tmp_path):
    """Both encoders serve from their exports: the process answers without importing torch,
    transformers or sentence-transformers (about 250 MB and seconds at start)."""
    import shutil
    import subprocess
    import sys

    from conftest import clean_environment

    home = tmp_path / "home"
    shutil.copytree(trained_home, home)
    code = ("import sys; from csbot.service.engine import Engine; from csbot.settings import load_settings; "
            f"engine = Engine(load_settings(home={str(home)!r})); "
            "reply = engine.bot.respond('where is my parcel BB-123456'); "
            "print(reply.route, engine.bot.classifier.runtime_name.split(',')[0], "
            "sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_environment(),
                          timeout=300)
    assert done.returncode == 0, done.stderr
    route, runtime, quantization, loaded = done.stdout.split(" ", 3)
    assert route == "template" and runtime == "onnxruntime" and loaded.strip() == "[]"


def test_known_out_of_scope_questions_are_the_answers_phrasings_and_dismissed_fallbacks(engine, data_dir):
    engine.load_defaults(data_dir)
    phrasings = [q["question"] for q in engine.store.questions()]
    assert engine.store.known_out_of_scope() == phrasings
    fallback = engine.bot.respond("my cat ate the invoice")
    person = engine.bot.respond("zebra crossing tickets")
    ids = {m["text"]: m["id"] for m in engine.store.inbox()}
    engine.dismiss(ids["my cat ate the invoice"], actor="sam")
    assert fallback.inbox == "fallback" and person.inbox == "fallback"
    assert engine.store.known_out_of_scope() == phrasings + ["my cat ate the invoice"]  # the open one is not known yet

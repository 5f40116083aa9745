"""The engine in-process, on the tiny data, with the hashing fake of the sentence encoder."""

import pytest

from csbot.engine import Engine
from csbot.errors import DataError, TemplateError
from conftest import HashingEncoder


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

import json

import numpy as np
import pytest

from csbot.dialogue.answers import AnswerIndex
from csbot.errors import AnswerIndexError

ANSWERS = [
    {"id": 10, "questions": ["Do you offer gift wrapping?", "Can you wrap my present"],
     "answer": "Yes, wrapping costs £4.50."},
    {"id": 20, "questions": ["Where is your showroom"], "answer": "We are online only."},
]


def build(encoder, answers=ANSWERS):
    return AnswerIndex.build(answers, encoder, encoder=encoder.name, dim=encoder.dim)


def test_search_returns_the_best_text_per_answer(encoder):
    hits = build(encoder).search("can you wrap a present for me", k=3)
    assert [h.answer_id for h in hits] == [10, 20]
    assert hits[0].text == "Can you wrap my present" and hits[0].score > hits[1].score


def test_the_answer_text_itself_is_searchable(encoder):
    assert build(encoder).search("are you online only")[0].answer_id == 20


def test_added_answer_is_found_at_once_and_removal_too(encoder):
    index = build(encoder)
    assert index.search("are you hiring")[0].answer_id != 30
    index.put(30, ["Are you hiring new staff", "See our careers page."])
    assert index.search("are you hiring")[0].answer_id == 30
    index.put(30, ["Do you have job vacancies"])  # replacing the texts drops the old ones
    assert index.search("job vacancies")[0].text == "Do you have job vacancies"
    assert all(h.text != "Are you hiring new staff" for h in index.search("are you hiring", k=5))
    index.remove_answer(30)
    assert all(h.answer_id != 30 for h in index.search("job vacancies"))
    assert len(index) == 5


def test_empty_index_finds_nothing(encoder):
    assert AnswerIndex(encoder, encoder=encoder.name, dim=encoder.dim).search("hi") == []


def test_save_then_load_gives_the_same_hits_and_keeps_adding(encoder, tmp_path):
    index = build(encoder)
    index.save(tmp_path / "answers")
    loaded = AnswerIndex.load(tmp_path / "answers", encoder, encoder=encoder.name, dim=encoder.dim)
    assert loaded.search("gift wrapping please") == index.search("gift wrapping please")
    meta = json.loads(next((tmp_path / "answers").glob("gen-*/meta.json")).read_text())
    assert (meta["encoder"], meta["dim"], meta["count"]) == (encoder.name, encoder.dim, 5)
    loaded.put(30, ["careers"])  # ids continue after the loaded ones: nothing is overwritten
    assert len(loaded) == 6 and loaded.search("gift wrapping please")[0] == index.search("gift wrapping please")[0]
    assert loaded.search("careers")[0].answer_id == 30


def test_a_crash_while_saving_leaves_the_old_index_loadable(encoder, tmp_path, monkeypatch):
    folder = tmp_path / "answers"
    build(encoder).save(folder)
    bigger = build(encoder, ANSWERS + [{"id": 90, "questions": ["careers"], "answer": "See the careers page."}])
    import csbot.dialogue.answers as retrieval

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(retrieval.os, "replace", crash)  # dies before CURRENT moves
    with pytest.raises(AnswerIndexError, match="disk full.*previous index is untouched"):
        bigger.save(folder)
    monkeypatch.undo()
    assert len(AnswerIndex.load(folder, encoder, encoder=encoder.name, dim=encoder.dim)) == 5
    assert len(list(folder.glob("gen-*"))) == 1  # the half-written generation was removed


def test_load_refuses_another_encoder_or_a_damaged_file(encoder, tmp_path):
    folder = tmp_path / "answers"
    generation = build(encoder).save(folder)
    with pytest.raises(AnswerIndexError, match="was built with encoder 'hashing-fake'"):
        AnswerIndex.load(folder, encoder, encoder="other-model", dim=encoder.dim)
    (generation / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(AnswerIndexError, match="damaged"):
        AnswerIndex.load(folder, encoder, encoder=encoder.name, dim=encoder.dim)
    with pytest.raises(AnswerIndexError, match="reindex"):
        AnswerIndex.load(tmp_path / "missing", encoder, encoder=encoder.name, dim=encoder.dim)


def test_encoder_with_wrong_shape_is_reported(encoder):
    index = AnswerIndex(lambda texts: np.zeros((len(texts), 3), np.float32), encoder="bad", dim=8)
    with pytest.raises(AnswerIndexError, match="expected"):
        index.put(1, ["hello"])


def test_rebuild_from_the_database(store, encoder):
    store.upsert_answer(key="wrap", questions=["Do you offer gift wrapping?"], answer="Yes")
    store.upsert_answer(key="shop", questions=["Where is your showroom"], answer="Online only")
    index = AnswerIndex.build(store.answers(), encoder, encoder=encoder.name, dim=encoder.dim)
    best = index.search("showroom")[0]
    assert store.answer(best.answer_id)["answer"] == "Online only"


def test_a_match_across_scripts_gets_the_encoders_allowance(encoder):
    answers = [{"id": 1, "questions": ["礼品 包装 gift wrap"], "answer": "¥10"},
               {"id": 2, "questions": ["gift wrap price"], "answer": "£4.50"}]
    plain = AnswerIndex.build(answers, encoder, encoder=encoder.name, dim=encoder.dim)
    lifted = AnswerIndex.build(answers, encoder, encoder=encoder.name, dim=encoder.dim, across=0.1)

    def scores(index, text):
        return {h.answer_id: (h.text, h.score) for h in index.search(text)}

    before, after = scores(plain, "gift wrap price"), scores(lifted, "gift wrap price")
    assert after[2] == before[2]  # English to English: as it was
    assert after[1][0] == "礼品 包装 gift wrap" and after[1][1] == pytest.approx(before[1][1] + 0.1, abs=1e-3)
    before, after = scores(plain, "礼品包装 gift wrap 多少钱"), scores(lifted, "礼品包装 gift wrap 多少钱")
    assert after[1] == before[1]  # Chinese to Chinese: as it was
    assert after[2][1] == pytest.approx(before[2][1] + 0.1, abs=1e-3)

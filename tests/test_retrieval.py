import json

import numpy as np
import pytest

from csbot.errors import AnswerIndexError
from csbot.retrieval import AnswerIndex

ROWS = [
    {"id": 1, "answer_id": 10, "question": "Do you offer gift wrapping?"},
    {"id": 2, "answer_id": 10, "question": "Can you wrap my present"},
    {"id": 3, "answer_id": 20, "question": "Where is your showroom"},
]


def build(encoder, rows=ROWS):
    return AnswerIndex.build(rows, encoder, encoder=encoder.name, dim=encoder.dim)


def test_search_returns_best_phrasing_per_answer(encoder):
    hits = build(encoder).search("can you wrap a present for me", k=3)
    assert [h.answer_id for h in hits] == [10, 20]
    assert hits[0].question == "Can you wrap my present" and hits[0].score > hits[1].score


def test_added_answer_is_found_at_once_and_removal_too(encoder):
    index = build(encoder)
    assert index.search("are you hiring")[0].answer_id != 30
    index.add([{"id": 4, "answer_id": 30, "question": "Are you hiring new staff"}])
    assert index.search("are you hiring")[0].answer_id == 30
    index.remove_answer(30)
    assert all(h.answer_id != 30 for h in index.search("are you hiring"))
    assert len(index) == 3


def test_empty_index_finds_nothing(encoder):
    assert AnswerIndex(encoder, encoder=encoder.name, dim=encoder.dim).search("hi") == []


def test_save_then_load_gives_the_same_hits(encoder, tmp_path):
    index = build(encoder)
    index.save(tmp_path / "answers")
    loaded = AnswerIndex.load(tmp_path / "answers", encoder, encoder=encoder.name, dim=encoder.dim)
    assert loaded.search("gift wrapping please") == index.search("gift wrapping please")
    meta = json.loads(next((tmp_path / "answers").glob("gen-*/meta.json")).read_text())
    assert (meta["encoder"], meta["dim"], meta["count"]) == (encoder.name, encoder.dim, 3)


def test_a_crash_while_saving_leaves_the_old_index_loadable(encoder, tmp_path, monkeypatch):
    folder = tmp_path / "answers"
    build(encoder).save(folder)
    bigger = build(encoder, ROWS + [{"id": 9, "answer_id": 90, "question": "careers"}])
    import csbot.retrieval as retrieval

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(retrieval.os, "replace", crash)  # dies before CURRENT moves
    with pytest.raises(OSError):
        bigger.save(folder)
    monkeypatch.undo()
    assert len(AnswerIndex.load(folder, encoder, encoder=encoder.name, dim=encoder.dim)) == 3


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
        index.add(ROWS)


def test_rebuild_from_the_database(store, encoder):
    store.upsert_answer(key="wrap", questions=["Do you offer gift wrapping?"], answer="Yes")
    store.upsert_answer(key="shop", questions=["Where is your showroom"], answer="Online only")
    index = AnswerIndex.build(store.questions(), encoder, encoder=encoder.name, dim=encoder.dim)
    best = index.search("showroom")[0]
    assert store.answer(best.answer_id)["answer"] == "Online only"

"""Nothing lives only in one process: two engines on one home (as two servers, or a server and the
CLI, would be) each follow the store. Answers, templates and the serving model changed through
one are served by the other after its next `sync`; the answer index repairs itself from the
store at start; a damaged current model is replaced by the newest good one, said loudly; a save
of the index never deletes a generation another process may still be loading."""

from __future__ import annotations

import os
import time

import pytest
from conftest import FakeClock, HashingEncoder, save_version

from csbot.dialogue.answers import AnswerIndex
from csbot.service.engine import Engine
from csbot.store import Store


@pytest.fixture
def pair(settings, data_dir, tiny_training):
    """Engines A and B on one home, each with its own connection; A loaded the data, v1 serves."""
    a = Engine(settings, encoder=HashingEncoder())
    a.load_defaults(data_dir)
    v1 = save_version(a, tiny_training, "2026-01-01T00:00:00.000+00:00")
    v2 = save_version(a, tiny_training, "2026-02-01T00:00:00.000+00:00")
    a.promote(v1)
    b = Engine(settings, store=Store.open(settings.database), encoder=HashingEncoder())
    assert a.bot.classifier.version == b.bot.classifier.version == v1
    return a, b, v1, v2


def test_an_answer_saved_on_one_is_found_by_the_other_after_a_sync(pair):
    a, b, *_ = pair
    assert not b.index.search("do you sell gift cards for birthdays") or \
        b.index.search("do you sell gift cards for birthdays")[0].score < 0.9
    answer_id = a.save_answer(key="gift_cards", questions=["do you sell gift cards for birthdays"],
                              answer="Yes, from £10.", actor="sam")
    assert a.index.search("do you sell gift cards for birthdays")[0].answer_id == answer_id  # at once here
    assert b.sync()["answers"]["changed"] == 1
    assert b.index.search("do you sell gift cards for birthdays")[0].answer_id == answer_id
    assert b.bot.respond("do you sell gift cards for birthdays").answer_id == answer_id
    a.delete_answer(answer_id, actor="sam")
    assert b.sync()["answers"]["removed"] == 1
    assert all(h.answer_id != answer_id for h in b.index.search("do you sell gift cards for birthdays"))
    assert b.sync() == {}  # nothing new: nothing done


def test_templates_changed_on_one_are_served_by_the_other(pair):
    a, b, *_ = pair
    a.set_templates("greeting", ["Hello from the new template!"], actor="sam")
    b.sync()
    assert b.bot.replies.templates["greeting"] == ["Hello from the new template!"]


def test_a_promote_on_one_is_served_by_the_other_without_a_restart(pair):
    a, b, v1, v2 = pair
    a.promote(v2, actor="ada")
    assert a.bot.classifier.version == v2 and b.bot.classifier.version == v1
    assert b.sync()["model"] == v2
    assert b.bot.classifier.version == v2
    assert b.rollback(actor="ada") == v1
    assert a.sync()["model"] == v1 and a.bot.classifier.version == v1
    assert [e["action"] for e in a.store.audit_log(actor="ada")] == ["rollback", "promote"]


def test_a_promote_of_a_version_that_does_not_load_elsewhere_keeps_serving(pair):
    a, b, v1, v2 = pair
    a.promote(v2)
    (b.settings.models_dir / v2 / "head.safetensors").unlink()  # as if B's copy of the folder broke
    b.follower.bad_versions.clear()
    b.sync()
    assert b.bot.classifier.version == v1 and "does not load" in b.model_problem
    b.sync()  # not retried every poll
    assert b.bot.classifier.version == v1


def test_a_model_folder_briefly_unreadable_is_served_once_it_reads_and_not_ready_meanwhile(pair):
    a, b, v1, v2 = pair
    clock = FakeClock()
    b.follower.clock = clock
    weights = b.settings.models_dir / v2 / "head.safetensors"
    aside = weights.with_name("copying")
    a.promote(v2)
    weights.rename(aside)  # B's copy of the folder is still being copied to its share
    b.sync()
    assert b.bot.classifier.version == v1 and "trying again in 1 s" in b.model_problem
    assert b.readiness() == [b.model_problem]  # not ready: send customers to a replica serving v2
    clock.now += 1
    b.sync()  # tried again, still missing: the wait doubles
    assert "trying again in 2 s" in b.model_problem
    aside.rename(weights)  # the copy finished
    clock.now += 1
    b.sync()
    assert b.bot.classifier.version == v1  # not before its time
    clock.now += 1
    assert b.sync()["model"] == v2 and b.bot.classifier.version == v2
    assert b.model_problem is None and b.readiness() == []


def test_the_index_repairs_itself_at_start_when_the_store_moved_on(settings, data_dir):
    a = Engine(settings, encoder=HashingEncoder())
    a.load_defaults(data_dir)
    # what a crash between the answer's commit and the index save leaves: the row, not the vectors
    a.store.upsert_answer(key="gift_cards", questions=["do you sell gift cards"], answer="Yes, from £10.")
    first = a.store.answers()[0]
    a.store.delete_answer(first["id"])
    fresh = Engine(settings, encoder=HashingEncoder())
    hits = fresh.index.search("do you sell gift cards")
    assert hits[0].answer_id == next(r["id"] for r in fresh.store.answers() if r["key"] == "gift_cards")
    assert all(h.answer_id != first["id"] for h in fresh.index.search(first["questions"][0]))
    saved = AnswerIndex.load(settings.indexes_dir / "answers", HashingEncoder(), encoder="hashing-fake", dim=256)
    assert saved.generation == fresh.store.generations()["answers"]  # and saved what it repaired


def test_a_damaged_current_model_serves_the_newest_good_one_and_says_so(settings, data_dir, tiny_training):
    a = Engine(settings, encoder=HashingEncoder())
    a.load_defaults(data_dir)
    v1 = save_version(a, tiny_training, "2026-01-01T00:00:00.000+00:00")
    v2 = save_version(a, tiny_training, "2026-02-01T00:00:00.000+00:00")
    v3 = save_version(a, tiny_training, "2026-03-01T00:00:00.000+00:00")
    a.promote(v3)
    (settings.models_dir / v3 / "meta.json").write_text("{ not json")
    fresh = Engine(settings, encoder=HashingEncoder())
    assert fresh.bot.classifier.version == v2  # the newest older version that loads
    assert v3 in fresh.model_problem and f"serving {v2} instead" in fresh.model_problem
    assert fresh.store.current_model()["id"] == v3  # the admin decides; nothing was rewritten
    assert fresh.bot.respond("hello there").route in ("template", "answer", "fallback")
    a.promote(v2)  # an admin elsewhere makes the fallback the current version: no longer degraded
    fresh.sync()
    assert fresh.bot.classifier.version == v2 and fresh.model_problem is None
    assert v1


def test_a_save_keeps_a_replaced_generation_that_another_process_may_still_load(settings, data_dir):
    a = Engine(settings, encoder=HashingEncoder())
    a.load_defaults(data_dir)
    folder = settings.indexes_dir / "answers"
    before = (folder / "CURRENT").read_text().strip()
    old = time.time() - 3600
    os.utime(folder / before, (old, old))  # current for an hour...
    a.index.save(folder)
    assert (folder / before).is_dir()  # ...but replaced just now: a reader that read CURRENT a moment ago finds it
    os.utime(folder / before, (old, old))
    a.index.save(folder)
    assert not (folder / before).exists()  # replaced long ago: cleaned up
    assert len(list(folder.glob("gen-*"))) == 2


def test_following_in_the_background_catches_up_within_seconds(pair):
    a, b, *_ = pair
    b.follow(interval=0.2)
    try:
        answer_id = a.save_answer(key="gift_cards", questions=["do you sell gift cards for birthdays"],
                                  answer="Yes, from £10.")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            hits = b.index.search("do you sell gift cards for birthdays")
            if hits and hits[0].answer_id == answer_id:
                break
            time.sleep(0.05)
        assert hits and hits[0].answer_id == answer_id
    finally:
        b.stop_following()


def test_an_operating_point_moved_on_one_serves_at_once_there_and_on_the_other_after_a_sync(pair):
    a, b, v1, v2 = pair
    trained = a.bot.classifier.threshold
    curve = a.store.current_model()["metrics"]["operating_curve"]
    assert curve["points"] and curve["n"] == a.store.current_model()["metrics"]["n"]  # over the held-out messages
    point = a.set_operating_point(v1, acceptance=1.0, actor="ada")  # accept every held-out message
    loosest = min(p["threshold"] for p in curve["points"])
    assert point["threshold"] == loosest and point["before"] == trained and point["accepted"] == 1.0
    assert a.bot.classifier.threshold == loosest  # here at once, no load
    served = b.bot.classifier
    assert b.sync() == {"threshold": loosest} and b.bot.classifier is served  # there: the same object, moved
    assert served.threshold == loosest
    entry = a.store.audit_log(action="operating_point")[0]
    assert (entry["actor"], entry["target"]) == ("ada", v1)
    assert entry["detail"]["by"] == "acceptance" and entry["detail"]["before"] == trained
    a.promote(v2)
    a.promote(v1)  # a reload of v1 keeps the point an admin chose
    assert a.bot.classifier.threshold == loosest
    assert a.set_operating_point(v1, default=True)["threshold"] == pytest.approx(trained, abs=1e-4)
    b.sync()
    assert b.bot.classifier.threshold == pytest.approx(trained, abs=1e-4)
    assert a.store.current_model()["operating_point"] is None


def test_an_operating_point_out_of_reach_is_refused_and_nothing_moves(pair):
    from csbot.errors import DataError

    a, b, v1, _ = pair
    before = a.bot.classifier.threshold
    with pytest.raises(DataError, match="between 0.5 and 1"):
        a.set_operating_point(v1, precision=1.2)
    with pytest.raises(DataError, match="no model version"):
        a.set_operating_point("v-nope", acceptance=0.9)
    assert a.bot.classifier.threshold == before and b.sync() == {}

"""The calibrated curated-answer search (dialogue/ranker.py inside dialogue/answers.py): the shop's
own head ranks the answers, the judge's threshold is chosen on held-out phrasings for the target
precision, the index falls back to cosine until there is enough to calibrate, a wording staff
confirmed wrong is never answered with that answer again, and an admin's operating point reaches
every process. The encoder is conftest's HashingEncoder (texts sharing words are similar)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import HashingEncoder

from csbot.dialogue import ranker
from csbot.dialogue.answers import AnswerIndex
from csbot.errors import DataError
from csbot.service.engine import Engine
from csbot.store import Store

TOPICS = {  # ten answers, four phrasings each, sharing words as a shop's FAQ does
    "gift_wrap": ["do you gift wrap orders", "can you wrap my present", "gift wrapping for a birthday present",
                  "is wrapping paper available"],
    "delivery_abroad": ["do you ship abroad", "international delivery to france", "can you deliver to spain",
                        "shipping outside the uk"],
    "opening_hours": ["what are your opening hours", "when is the shop open", "are you open on sunday",
                      "what time do you close today"],
    "returns": ["how do i return an item", "can i send this back", "return a parcel for a refund",
                "what is your returns policy"],
    "refund_time": ["how long does a refund take", "when will my refund arrive", "refund still not in my bank",
                    "my money back is late"],
    "order_status": ["where is my order", "track my parcel", "my order has not arrived yet",
                     "has my order shipped"],
    "payment_methods": ["can i pay with paypal", "do you take credit cards", "which payment methods work",
                        "pay by bank transfer"],
    "discounts": ["do you have a discount code", "student discount please", "any coupons for new customers",
                  "is there a sale on"],
    "sizes": ["what size should i buy", "do the shoes run small", "size guide for jackets", "measurements of the dress"],
    "careers": ["are you hiring", "do you have job vacancies", "how do i apply for a job", "work for your company"],
}


def faq() -> list[dict]:
    return [{"id": i + 1, "key": key, "questions": qs, "answer": f"About {key.replace('_', ' ')}."}
            for i, (key, qs) in enumerate(TOPICS.items())]


def build(answers=None, **options) -> AnswerIndex:
    encoder = HashingEncoder()
    options.setdefault("calibrated", True)
    return AnswerIndex.build(faq() if answers is None else answers, encoder, encoder=encoder.name, dim=encoder.dim,
                             **options)


def test_the_judge_is_calibrated_on_held_out_phrasings_and_its_threshold_meets_the_target():
    index = build()
    judge = index.judge
    assert judge is not None and judge.covered == 40 and judge.uncovered == 40  # every phrasing, both ways
    assert judge.wp > 0  # the more sure the head, the more likely right
    loose, strict = judge.curve[0], judge.curve[-1]
    assert loose["right"] >= strict["right"] and loose["answered_uncovered"] >= strict["answered_uncovered"]
    threshold = index.confidence_threshold
    assert threshold == judge.threshold_for(0.97)
    reached = [c for c in judge.curve if c["precision"] is not None and c["precision"] >= 0.97]
    assert threshold == (reached[0]["threshold"] if reached else judge.curve[-1]["threshold"])
    hits = index.search("can you gift wrap my present", k=3)
    assert hits[0].answer_id == 1 and hits[0].confidence >= threshold  # a near copy is confidently right
    assert index.search("zebra quantum")[0].confidence < threshold  # nothing alike: no answer


def test_all_phrasings_of_an_answer_vote_where_cosine_listens_to_the_closest_one():
    answers = [{"id": 1, "questions": ["is my refund late", "refund not arrived", "where is my refund",
                                       "refund missing from my account"], "answer": "Refunds take 5 days."},
               {"id": 2, "questions": ["my parcel is late and missing"], "answer": "Let us look into it."},
               *({"id": 10 + i, "questions": qs, "answer": "x"} for i, qs in enumerate(TOPICS.values()))]
    calibrated, by_cosine = build(answers), build(answers, calibrated=False)
    query = "my refund is late and missing"
    assert by_cosine.search(query)[0].answer_id == 2  # one phrasing shares five of its six words
    assert calibrated.search(query)[0].answer_id == 1  # four phrasings say "refund"


def test_too_few_answers_to_hold_out_fall_back_to_the_cosine():
    index = build(faq()[:2])
    assert index.judge is None and index.confidence_threshold is None
    hit = index.search("do you ship abroad")[0]
    assert hit.answer_id == 2 and hit.confidence is None and hit.score == pytest.approx(1.0)


def test_a_wording_confirmed_wrong_is_never_answered_with_that_answer_again(tmp_path):
    answers = faq()
    index = build(answers)
    wording = "can you wrap a sandwich for lunch"
    assert index.search(wording)[0].answer_id == 1
    answers[0] = {**answers[0], "negatives": [wording]}
    assert index.catch_up(answers, 2)["changed"] == 1
    assert all(h.answer_id != 1 for h in index.search(wording, k=5))
    assert index.search("can you wrap my present")[0].answer_id == 1  # its own phrasings still find it
    index.calibrate()
    index.save(tmp_path / "answers")
    encoder = HashingEncoder()
    loaded = AnswerIndex.load(tmp_path / "answers", encoder, encoder=encoder.name, dim=encoder.dim, calibrated=True)
    assert loaded.search(wording, k=5) == index.search(wording, k=5)  # head, judge and wrong wordings saved
    assert loaded.judge == index.judge and not loaded.needs_calibration
    meta = json.loads(next((tmp_path / "answers").glob("gen-*/meta.json")).read_text())
    assert meta["format_version"] == 3 and meta["negatives"] == {"1": [wording]}


def test_a_change_refits_the_head_at_once_and_the_judge_when_asked():
    index = build()
    before = index.judge
    index.put(11, ["do you sell gift cards", "gift vouchers for christmas"], answer_text="Yes, from £10.")
    index.fit_head()
    assert index.search("gift cards for christmas")[0].answer_id == 11  # served before any recalibration
    assert index.needs_calibration and index.judge is before  # the old judge serves meanwhile
    assert index.calibrate().covered == 42 and not index.needs_calibration


def test_the_curve_counts_right_wrong_and_uncovered_answers():
    points = ranker.curve(np.array([0.9, 0.6, 0.3, 0.8]), np.array([True, False, True, False]),
                          np.array([True, True, True, False]))
    at = {p["threshold"]: p for p in points}
    assert at[0.05] == {"threshold": 0.05, "right": 0.6667, "wrong": 0.3333, "precision": 0.6667,
                        "answered_uncovered": 1.0}
    assert at[0.7] == {"threshold": 0.7, "right": 0.3333, "wrong": 0.0, "precision": 1.0, "answered_uncovered": 1.0}
    assert at[0.95]["precision"] is None and at[0.95]["answered_uncovered"] == 0.0


@pytest.fixture
def shop(settings):
    """Two engines on one home (as two servers) over the ten-answer FAQ."""
    a = Engine(settings, encoder=HashingEncoder())
    a.store.upsert_answers([{k: v for k, v in x.items() if k != "id"} for x in faq()])
    a.reindex()
    b = Engine(settings, store=Store.open(settings.database), encoder=HashingEncoder())
    return a, b


def test_staff_confirm_a_thumbs_down_and_no_process_gives_that_answer_for_it_again(shop):
    a, b = shop
    wording = "can you wrap a sandwich for lunch"
    reply = b.bot.respond(wording)
    assert reply.route == "answer" and a.store.answer(reply.answer_id)["key"] == "gift_wrap"
    replied = next(m for m in a.store.messages(reply.conversation_id) if m["role"] == "bot")
    b.store.rate(reply.conversation_id, replied["id"], -1)
    item = next(i for i in a.store.inbox() if i["text"] == wording)
    assert a.reject_answer(item["id"], actor="sam") == {"id": reply.answer_id, "key": "gift_wrap"}
    wrapped = next(x for x in a.store.answers() if x["key"] == "gift_wrap")
    assert wrapped["negatives"] == [wording] and a.store.inbox(item=item["id"])  # still open
    assert all(h.answer_id != reply.answer_id for h in a.index.search(wording, k=5))
    b.sync()
    assert b.bot.respond(wording).answer_id != reply.answer_id
    assert b.bot.respond("can you wrap my present").answer_id == reply.answer_id
    with pytest.raises(DataError, match="gave no curated answer"):
        a.reject_answer(_fallback_item(a), actor="sam")


def _fallback_item(engine) -> int:
    reply = engine.bot.respond("zebra quantum")  # nothing alike: a fallback, in the inbox
    assert reply.route == "fallback"
    return next(m["id"] for m in engine.store.messages(reply.conversation_id) if m["role"] == "customer")


def test_an_admins_operating_point_reaches_every_process(shop):
    a, b = shop
    question = "can you wrap my present"
    assert b.bot.respond(question).route == "answer"
    shown = a.set_answer_tuning(threshold=0.99, actor="ada")
    assert (shown["threshold"], shown["chosen_by"]) == (0.99, "threshold")
    b.sync()
    assert b.index.confidence_threshold == 0.99 and b.bot.respond("shop open sunday").route == "fallback"
    a.set_answer_tuning(precision=0.5, actor="ada")
    b.sync()
    assert b.index.confidence_threshold == b.index.judge.threshold_for(0.5)
    assert a.set_answer_tuning(actor="ada")["target"] == 0.97  # back to the settings'
    with pytest.raises(DataError, match="between 0.01 and 0.99"):
        a.set_answer_tuning(threshold=1.5, actor="ada")
    assert [e["action"] for e in a.store.audit_log()][:3] == ["answer_tuning"] * 3

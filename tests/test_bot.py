"""Routing on each branch, with a real (tiny) classifier and the hashing fake of the encoder."""

import copy

import pytest
from conftest import DATA

from csbot.dialogue.answers import AnswerIndex, Hit
from csbot.dialogue.bot import Bot, clean_message
from csbot.dialogue.replies import ReplyBook, load_shop_file, load_templates_file
from csbot.errors import DataError

ACCEPT_ALL, ACCEPT_NONE = float("-inf"), float("inf")  # thresholds on the acceptance score


@pytest.fixture
def make_bot(store, encoder, tiny_training):
    shop = load_shop_file(DATA / "shop.yaml")
    _, templates = load_templates_file(DATA / "templates.yaml")
    store.upsert_answer(key="wrap", questions=["Do you offer gift wrapping?", "Can you wrap my present"],
                        answer="Yes, gift wrapping is £4.50.")
    store.upsert_answer(key="careers", questions=["Are you hiring new staff?"], answer="See our careers page.")
    index = AnswerIndex.build(store.answers(), encoder, encoder=encoder.name, dim=encoder.dim)

    def make(threshold: float | None = None, **kwargs) -> Bot:
        classifier = copy.copy(tiny_training.classifier)
        classifier.meta = {**classifier.meta, "version": "v-test"}
        if threshold is not None:
            classifier.threshold = threshold
        return Bot(store=store, replies=ReplyBook(templates, shop), classifier=classifier, index=index,
                   answer_threshold=kwargs.get("answer_threshold", 0.5), answer_override=0.95)
    return make


def test_confident_intent_gets_a_template_reply_with_slots(make_bot):
    reply = make_bot(threshold=ACCEPT_ALL).respond("where is my order BB-123456")
    assert reply.route == "template" and reply.intent == "order_status"
    assert "BB-123456" in reply.text and reply.model_version == "v-test"
    assert reply.confidence is not None and reply.latency_ms > 0


def test_missing_order_number_is_asked_for_then_used(make_bot, store):
    bot = make_bot(threshold=ACCEPT_ALL)
    first = bot.respond("where is my order?")
    assert first.route == "template" and first.missing_slot == "order_id" and "order number" in first.text
    second = bot.respond("it's bb 654321", first.conversation_id)
    assert second.intent == "order_status" and "BB-654321" in second.text and second.missing_slot is None
    assert store.conversation(first.conversation_id)["pending_intent"] is None


def test_unsure_intent_falls_to_a_curated_answer(make_bot):
    reply = make_bot(threshold=ACCEPT_NONE).respond("can you gift wrap my present")
    assert reply.route == "answer" and reply.text == "Yes, gift wrapping is £4.50."
    assert reply.hits[0]["text"] == "Can you wrap my present" and not reply.accepted


def test_nothing_confident_falls_back_offers_a_person_and_fills_the_inbox(make_bot, store):
    reply = make_bot(threshold=ACCEPT_NONE).respond("my cat ate the invoice, what now")
    assert reply.route == "fallback" and reply.inbox == "fallback"
    assert "person" in reply.text and "9 to 5" in reply.text
    [flagged] = store.inbox()
    assert flagged["text"] == "my cat ate the invoice, what now" and flagged["role"] == "customer"


def test_every_reply_is_stored_with_its_trace(make_bot, store):
    import json

    reply = make_bot(threshold=ACCEPT_ALL).respond("hello")
    customer, bot = store.messages(reply.conversation_id)
    assert (customer["role"], bot["role"]) == ("customer", "bot")
    trace = json.loads(bot["trace"])
    assert {"intent", "confidence", "hits", "route", "model_version", "latency_ms"} <= set(trace)


def test_consecutive_replies_in_a_conversation_differ(make_bot):
    bot = make_bot(threshold=ACCEPT_ALL)
    first = bot.respond("hello")
    second = bot.respond("hello", first.conversation_id)
    assert first.route == second.route == "template" and first.text != second.text


def test_no_model_yet_still_answers_from_curated_answers(make_bot):
    bot = make_bot()
    bot.set_classifier(None)
    assert bot.respond("are you hiring new staff").route == "answer"
    assert bot.respond("where is my order").route == "fallback"


def test_human_owned_conversation_keeps_the_bot_quiet(make_bot, store):
    bot = make_bot(threshold=ACCEPT_ALL)
    first = bot.respond("hello")
    store.update_conversation(first.conversation_id, owner="human")
    reply = bot.respond("still there?", first.conversation_id)
    assert reply.route == "human" and reply.text is None
    assert [m["role"] for m in store.messages(first.conversation_id)] == ["customer", "bot", "customer"]


@pytest.mark.parametrize("message, fragment", [
    ("", "empty"), ("   \n\t ", "empty"), ("\x00\x01\x02", "empty"), ("x" * 3000, "limit is 2,000"),
    (b"\xff\xfe\x00", "not UTF-8"), (None, "expected the message as text"),
])
def test_bad_messages_get_a_clear_error_and_store_nothing(make_bot, store, message, fragment):
    with pytest.raises(DataError, match=fragment):
        make_bot().respond(message)
    assert store.db.value("SELECT count(*) FROM messages") == 0


def test_clean_message_strips_control_characters():
    assert clean_message("  where\x00 is\u200b my\torder? ", max_chars=100) == "where is my order?"
    assert clean_message("where is my order".encode(), max_chars=100) == "where is my order"


def test_a_template_that_cannot_render_falls_back_instead_of_failing(store, encoder, tiny_training):
    # Every greeting variant needs the customer's name, which is never asked for.
    bot = Bot(store=store, replies=ReplyBook({"greeting": ["Hi {customer_name}!"], "order_status": ["{order_id}"],
                                              "return_item": ["ok"]}, {"opening_hours": "9 to 5"}),
              classifier=copy.copy(tiny_training.classifier), index=None)
    bot.classifier.threshold = ACCEPT_ALL
    reply = bot.respond("hello")
    assert reply.intent == "greeting" and reply.route == "fallback" and reply.inbox == "template_error"


def test_asking_for_a_person_hands_the_chat_over_and_the_bot_stays_quiet(make_bot, store):
    bot = make_bot(threshold=ACCEPT_ALL)
    first = bot.respond("where is my order BB-123456")
    handed = bot.hand_off(first.conversation_id)
    assert handed.route == "handoff" and handed.handoff and "team" in handed.text
    assert store.conversation(first.conversation_id)["owner"] == "human"
    [item] = store.inbox()
    assert item["inbox"] == "asked_for_person" and item["text"] == "where is my order BB-123456"
    quiet = bot.respond("hello? anyone?", first.conversation_id)
    assert quiet.route == "human" and quiet.text is None and quiet.message_id is None
    assert [m["role"] for m in store.messages(first.conversation_id)][-1] == "customer"


def test_a_hand_off_before_any_message_is_a_system_note_in_the_inbox(make_bot, store):
    handed = make_bot().hand_off(None)
    [note] = [m for m in store.messages(handed.conversation_id) if m["role"] == "system"]
    assert note["inbox"] == "asked_for_person" and store.inbox()[0]["id"] == note["id"]


def test_staff_reply_takes_over_and_hand_back_returns_the_chat_to_the_bot(make_bot, store):
    bot = make_bot(threshold=ACCEPT_ALL)
    cid = bot.respond("hello").conversation_id
    bot.staff_reply(cid, "Hi, Sam here", author="sam")
    assert store.conversation(cid)["owner"] == "human"
    assert [(m["role"], m["author"]) for m in store.messages(cid)][-2:] == [("system", "sam"), ("staff", "sam")]
    assert bot.respond("thanks Sam", cid).route == "human"
    [item] = store.inbox()
    assert item["text"] == "thanks Sam" and item["reply_id"] is None  # no bot reply while a person had it
    bot.hand_back(cid, author="sam")
    assert store.conversation(cid)["owner"] == "bot" and bot.respond("where is my order BB-123456", cid).route == "template"
    with pytest.raises(DataError, match="no conversation"):
        bot.staff_reply("nosuchconversation", "hello", author="sam")


def test_the_hand_off_intent_hands_over_by_itself(make_bot, store):
    bot = make_bot(threshold=ACCEPT_ALL)
    bot.handoff_intent = "greeting"  # the tiny data has no human_agent intent
    reply = bot.respond("hello")
    assert reply.route == "template" and reply.handoff and reply.inbox == "asked_for_person"
    assert store.conversation(reply.conversation_id)["owner"] == "human"


def test_confident_enough_to_answer_but_not_sure_goes_to_the_inbox_too(make_bot, store):
    bot = make_bot(threshold=ACCEPT_ALL)
    bot.review_confidence = 1.01  # every template reply counts as unsure
    reply = bot.respond("where is my order BB-123456")
    assert reply.route == "template" and reply.text and reply.inbox == "low_confidence"
    assert store.inbox()[0]["inbox"] == "low_confidence" and store.inbox()[0]["reply_route"] == "template"


def test_route_for_mirrors_the_routing_order():
    from csbot.dialogue.bot import route_for
    from csbot.nlu.intents import Prediction

    sure = Prediction(intent="greeting", confidence=0.9, score=5.0, accepted=True)
    unsure = Prediction(intent="greeting", confidence=0.3, score=1.0, accepted=False)
    common = dict(templates={"greeting": ["Hi"]}, answer_threshold=0.6, answer_override=0.75)
    assert route_for(sure, Hit(1, "hi", 0.8), **common) == "answer"
    assert route_for(sure, Hit(1, "hi", 0.7), **common) == "template"
    assert route_for(unsure, Hit(1, "hi", 0.7), **common) == "answer"
    assert route_for(unsure, Hit(1, "hi", 0.5), **common) == "fallback"
    assert route_for(None, None, **common) == "fallback"
    # where the hit carries the judge's confidence and the index a threshold for it, that decides
    calibrated = dict(common, answer_confidence=0.7)
    assert route_for(unsure, Hit(1, "hi", 0.5, confidence=0.75), **calibrated) == "answer"
    assert route_for(unsure, Hit(1, "hi", 0.7, confidence=0.65), **calibrated) == "fallback"
    assert route_for(unsure, Hit(1, "hi", 0.7, confidence=0.65), **common) == "answer"  # no threshold: the cosine
    assert route_for(sure, Hit(1, "hi", 0.8, confidence=0.1), **calibrated) == "answer"  # a near-copy still wins


def test_a_double_click_hands_over_once(make_bot, store):
    bot = make_bot(threshold=ACCEPT_ALL)
    cid = bot.respond("hello").conversation_id
    assert bot.hand_off(cid).route == "handoff" and bot.hand_off(cid).route == "human"
    bot.take_over(cid, author="sam")
    bot.take_over(cid, author="sam")
    roles = [m["role"] for m in store.messages(cid)]
    assert roles.count("system") == 1 and [m["route"] for m in store.messages(cid)].count("handoff") == 1


class GatedEncoder:
    """The hashing fake of the encoder, held at a gate while `hold` is set: a reply in flight."""

    def __init__(self, inner):
        import threading

        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.hold, self.entered, self.release = False, threading.Event(), threading.Event()

    def __call__(self, texts):
        if self.hold:
            self.entered.set()
            self.release.wait(timeout=30)
        return self.inner(texts)


def test_a_take_over_while_a_reply_is_in_flight_keeps_the_bot_quiet(tmp_path, encoder):
    import threading

    from csbot.store import Store

    store = Store.open(tmp_path / "csbot.db")  # used from two threads, as the web server does
    gated = GatedEncoder(encoder)
    store.upsert_answer(key="wrap", questions=["Do you offer gift wrapping?"], answer="Yes, £4.50.")
    index = AnswerIndex.build(store.answers(), gated, encoder=gated.name, dim=gated.dim)
    shop = load_shop_file(DATA / "shop.yaml")
    _, templates = load_templates_file(DATA / "templates.yaml")
    bot = Bot(store=store, replies=ReplyBook(templates, shop), classifier=None, index=index, answer_threshold=0.5)
    cid = bot.respond("hello").conversation_id
    gated.hold, replies = True, []
    thread = threading.Thread(target=lambda: replies.append(bot.respond("Do you offer gift wrapping?", cid)))
    thread.start()
    assert gated.entered.wait(timeout=30)  # the bot is working out its reply...
    bot.take_over(cid, author="sam")  # ...when a person takes the chat
    gated.release.set()
    thread.join(timeout=30)
    [reply] = replies
    assert reply.route == "human" and reply.text is None and reply.message_id is None
    messages = store.messages(cid)
    assert [m["role"] for m in messages][-2:] == ["customer", "system"]  # and no bot reply after them
    assert messages[-2]["inbox"] == "human" and messages[-2]["inbox_status"] == "open"


class BrokenEncoder:
    """An encoder that fails the way a real one can (out of memory, a bad kernel)."""

    name, dim = "hashing-fake", 256

    def __call__(self, texts):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_an_unexpected_error_keeps_the_message_and_sends_it_to_the_inbox(store, encoder, caplog):
    from csbot.errors import ReplyFailed

    store.upsert_answer(key="wrap", questions=["Do you offer gift wrapping?"], answer="Yes, £4.50.")
    index = AnswerIndex.build(store.answers(), encoder, encoder=encoder.name, dim=encoder.dim)
    shop = load_shop_file(DATA / "shop.yaml")
    _, templates = load_templates_file(DATA / "templates.yaml")
    bot = Bot(store=store, replies=ReplyBook(templates, shop), classifier=None, index=index, answer_threshold=0.5)
    index.encode = BrokenEncoder()
    with pytest.raises(ReplyFailed) as failed:
        bot.respond("Do you offer gift wrapping?")
    [message] = store.messages(failed.value.conversation_id)
    assert message["text"] == "Do you offer gift wrapping?" and message["inbox"] == "error"
    assert failed.value.error_id in caplog.text and "illegal memory access" in caplog.text
    index.encode = encoder  # the fault passes: the same bot serves again
    assert bot.respond("Do you offer gift wrapping?").route == "answer"


def test_a_declined_message_records_what_staff_need_to_read_why(make_bot):
    from csbot.web.staff.inbox import why

    bot = make_bot()
    text = "my cat ate the invoice, what now"
    probe = bot.classifier.predict([text])[0]
    bot.classifier.threshold = probe.score + 1.0  # declined, by a margin of 1
    trace = bot.respond(text).trace()
    assert trace["accepted"] is False and trace["score"] == pytest.approx(probe.score, abs=1e-4)
    assert trace["similarity"] == pytest.approx(probe.similarity, abs=1e-4) and trace["answer_threshold"] == 0.5
    words = why(trace)
    assert words.startswith(f"The intent model declined: its best guess {trace['intent']} scored {probe.score:.2f}")
    assert f"below the threshold {probe.score + 1:.2f}" in words and f" {probe.similarity:.2f}" in words
    assert f"probability {probe.confidence:.2f}" in words
    bot.classifier.threshold = probe.score - 1.0
    accepted = why(bot.respond(text).trace())
    assert f"acceptance score {probe.score:.2f} reached the threshold {probe.score - 1:.2f}" in accepted

"""Routing: one message in, one reply with its trace out. The CLI, the web app and the HTTP API
all call `Bot.respond`.

The order of the routes:
1. a person owns the conversation -> the bot stays quiet (route "human");
2. the message supplies the slot the bot just asked for -> finish that intent's reply;
3. a curated answer matches almost exactly (answer_override) -> that answer;
4. the classifier accepts an intent (its acceptance score >= the model's threshold) -> a template reply;
5. a curated answer is good enough -> that answer: its confidence (the shop's judge, ranker.py)
   reaches the index's confidence threshold, or, where hits carry no confidence (search by
   similarity, or too few answers to calibrate), its cosine reaches answer_threshold;
6. otherwise an honest fallback that offers a person, and the message goes to the staff inbox.

Replies the bot sends with little confidence (a template below `review_confidence`, a curated
answer whose confidence is in the lower half above its threshold, or without one, whose cosine is
below `review_answer_score`) still go out, and the message also lands in the inbox. The
hand-off intent (`human_agent` in the demo data), the "talk to a person" button and a staff
member taking over all give the conversation to a person; staff hand it back.

This module does not load anything from disk: it is handed its classifier, index, reply book
and store (engine.py wires the real ones).
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from csbot.dialogue import entities
from csbot.dialogue.answers import AnswerIndex, Hit
from csbot.dialogue.batching import MicroBatcher
from csbot.dialogue.replies import ReplyBook
from csbot.errors import DataError, ReplyFailed, TemplateError
from csbot.nlu.intents import IntentClassifier, Prediction
from csbot.store import Store, now
from csbot.text import word_count

log = logging.getLogger("csbot.dialogue.bot")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


@dataclass
class Reply:
    conversation_id: str
    text: str | None
    route: str
    intent: str | None = None
    confidence: float | None = None
    score: float | None = None
    accepted: bool = False
    threshold: float | None = None
    similarity: float | None = None  # the message's closeness to the model's training messages
    answer_threshold: float | None = None  # what a curated answer's match had to reach
    answer_confidence: float | None = None  # what its confidence had to reach, where hits carry one
    answer_id: int | None = None
    hits: list[dict] = field(default_factory=list)
    model_version: str | None = None
    missing_slot: str | None = None
    slots: dict = field(default_factory=dict)
    inbox: str | None = None
    latency_ms: float = 0.0
    message_id: int | None = None  # the stored bot reply (what a customer rates)
    handoff: bool = False  # a person now owns the conversation

    def trace(self) -> dict:
        """Everything about how the reply was chosen (stored with the message, shown to staff)."""
        return {k: v for k, v in asdict(self).items() if k not in ("conversation_id", "text", "message_id")}


def clean_message(text: object, *, max_chars: int) -> str:
    """Refuse what is not a message; strip control characters; keep the words.

    Example: clean_message("  where is\\x00 my order? ", max_chars=100) -> "where is my order?"
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError("the message is not UTF-8 text; send plain text") from None
    if not isinstance(text, str):
        raise DataError(f"expected the message as text, found {type(text).__name__}")
    if len(text) > max_chars * 4:  # don't normalise megabytes just to refuse them
        raise DataError(f"the message has {len(text):,} characters; the limit is {max_chars:,}. "
                        "Please send a shorter message.")
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", text))
    text = " ".join(text.split())
    if not text:
        raise DataError("the message is empty; type a question")
    if len(text) > max_chars:
        raise DataError(f"the message has {len(text):,} characters; the limit is {max_chars:,}. "
                        "Please send a shorter message.")
    return text


def good_enough(top: Hit | None, *, answer_threshold: float, answer_confidence: float | None) -> bool:
    """Whether the best curated answer may be given (step 5): by its confidence where it has one and
    the index has a threshold for it, else by its cosine.

    Example: good_enough(Hit(1, "Gift wrap?", 0.55, 0.9), answer_threshold=0.6, answer_confidence=0.7) -> True
    """
    if top is None:
        return False
    if top.confidence is not None and answer_confidence is not None:
        return top.confidence >= answer_confidence
    return top.score >= answer_threshold


def routes(prediction: Prediction | None, top: Hit | None, *, templates: dict, answer_threshold: float,
           answer_override: float, answer_confidence: float | None = None) -> list[str]:
    """The routing order, written once: the routes that apply to a message, best first, always
    ending in "fallback" (steps 3-6 of the module docstring). Bot._route tries them in turn (a
    template that fails to render gives way to the next); the model comparison takes the first.

    Example: routes(None, Hit(1, "Gift wrap?", 0.8), templates={}, answer_threshold=0.6, answer_override=0.75)
             -> ["answer", "answer", "fallback"]
    """
    out = []
    if top is not None and top.score >= answer_override:
        out.append("answer")
    if prediction and prediction.accepted and prediction.intent in templates:
        out.append("template")
    if good_enough(top, answer_threshold=answer_threshold, answer_confidence=answer_confidence):
        out.append("answer")
    return out + ["fallback"]


def route_for(prediction: Prediction | None, top: Hit | None, **thresholds) -> str:
    """The route a fresh conversation's message takes (the model comparison asks it of recent messages).

    Example: route_for(None, Hit(1, "Gift wrap?", 0.8), templates={}, answer_threshold=0.6, answer_override=0.75)
             -> "answer"
    """
    return routes(prediction, top, **thresholds)[0]


def route_changes(texts: list[str], tops: list[Hit | None], old: list[Prediction], new: list[Prediction], *,
                  templates: dict, answer_threshold: float, answer_override: float,
                  answer_confidence: float | None = None, shown: int = 20) -> dict:
    """How a new classifier would change these messages' intents and routes against the current one,
    given each message's best curated-answer hit (`tops`), with up to `shown` of the changes.

    Example: -> {"messages": 300, "intent_changed": 12, "route_changed": 5,
                 "examples": [{"message": "...", "current": "returns / template", "new": "returns / answer"}]}
    """
    thresholds = dict(templates=templates, answer_threshold=answer_threshold, answer_override=answer_override,
                      answer_confidence=answer_confidence)
    examples, intent_changed, route_changed = [], 0, 0
    for text, top, a, b in zip(texts, tops, old, new):
        route_a, route_b = route_for(a, top, **thresholds), route_for(b, top, **thresholds)
        intent_changed += a.intent != b.intent
        route_changed += route_a != route_b
        if (a.intent != b.intent or route_a != route_b) and len(examples) < shown:
            examples.append({"message": text, "current": f"{a.intent} / {route_a}", "new": f"{b.intent} / {route_b}"})
    return {"messages": len(texts), "intent_changed": intent_changed, "route_changed": route_changed,
            "examples": examples}


class Bot:
    """Chooses and records replies. Swap the classifier or index at any time: each batch of
    messages (batching.py) is understood by the pair in place when its pass starts."""

    def __init__(self, *, store: Store, replies: ReplyBook, classifier: IntentClassifier | None,
                 index: AnswerIndex | None, answer_threshold: float = 0.6, answer_override: float = 0.75,
                 max_message_chars: int = 2000, review_confidence: float = 0.5,
                 review_answer_score: float = 0.65, handoff_intent: str | None = "human_agent",
                 handoff_refusal: Callable[[str | None], str | None] | None = None,
                 notify: Callable[[str, str, Callable[[], dict]], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.store = store
        self.replies = replies
        self.classifier = classifier
        self.index = index
        self.answer_threshold = answer_threshold
        self.answer_override = answer_override
        self.max_message_chars = max_message_chars
        self.review_confidence = review_confidence
        self.review_answer_score = review_answer_score
        self.handoff_intent = handoff_intent
        # the shop's limit on requests for a person per client: (client) -> None to go ahead, or the
        # polite words that say the request is already with the team (web/server.py ChatLimits)
        self.handoff_refusal = handoff_refusal
        # (event, msg_id, data) for the shop's webhooks (service/webhooks.py): the same msg_id for the
        # same event, so recording it twice sends it once; failing to record one never fails a reply
        self.notify = notify
        self.clock = clock
        # Concurrent messages share encoder passes (batching.py); a lone message goes straight through.
        self._understand = MicroBatcher(self._understand_batch, name="bot-understand")
        self._answers = ThreadPoolExecutor(1, thread_name_prefix="bot-answers")  # the answer pass, beside it

    def set_classifier(self, classifier: IntentClassifier | None) -> None:
        """Serve another model from the next message on (a plain reference swap: no request waits)."""
        self.classifier = classifier

    def warm_up(self) -> None:
        """Run both encoders once, storing nothing, so the first customer does not pay for it."""
        if self.classifier:
            self.classifier.predict(["hello"])
        if self.index is not None:
            self.index.search("hello")

    def _understand_batch(self, texts: list[str]) -> list[tuple]:
        """The classifier's prediction and the answer hits for each text, from the models in place now."""
        classifier, index = self.classifier, self.index
        # The two encoders' passes run at once, each on its own threads (runtime.py's budget):
        # on a 2-core machine one core each beats both cores for one pass, then the other.
        search = self._answers.submit(index.search_many, texts, k=3) if index is not None and len(index) else None
        predictions = classifier.predict(texts) if classifier else [None] * len(texts)
        hits = search.result() if search is not None else [[] for _ in texts]
        needed = index.confidence_threshold if index is not None else None
        return [(p, h, classifier, needed) for p, h in zip(predictions, hits)]

    def respond(self, message: object, conversation_id: str | None = None, *,
                channel: str = "cli", client: str | None = None) -> Reply:
        """Store the customer's message, choose the reply, store it, and return it.

        Bad input raises DataError and stores nothing. Once the message is stored it is never lost:
        any error after that (a bug, a failing model, index or disk) flags it to the inbox as
        'error' and raises ReplyFailed."""
        started = self.clock()
        text = clean_message(message, max_chars=self.max_message_chars)
        conversation = self.store.conversation(conversation_id, channel=channel, client=client)
        cid = conversation["id"]
        message_id = self.store.add_message(cid, role="customer", text=text)
        try:
            return self._reply(text, conversation, message_id, started, client=client)
        except Exception as exc:
            error_id = uuid.uuid4().hex[:10]
            log.exception("error %s while answering message %s of conversation %s", error_id, message_id, cid)
            try:
                self.store.flag_for_inbox(message_id, reason="error")
            except Exception:  # the store itself is failing: the message row is there, the log says why
                log.exception("error %s: could not flag message %s for the inbox", error_id, message_id)
            raise ReplyFailed(error_id, conversation_id=cid, message_id=message_id) from exc

    def _reply(self, text: str, conversation: dict, message_id: int, started: float, *,
               client: str | None = None) -> Reply:
        cid = conversation["id"]
        found = entities.extract(text)
        slots = {**conversation["slots"], **found}
        if conversation["owner"] == "human":
            reply = Reply(cid, None, "human", slots=slots, inbox="human", handoff=True)
        else:
            reply = self._route(text, cid, conversation, slots, found, *self._understand(text))
            self._review(reply, client)
        reply.latency_ms = round((self.clock() - started) * 1000, 2)
        self._record(reply, message_id)
        return reply

    def _route(self, text: str, cid: str, conversation: dict, slots: dict, found: dict,
               prediction: Prediction | None, hits: list[Hit], classifier: IntentClassifier | None,
               answer_confidence: float | None = None) -> Reply:
        base = dict(conversation_id=cid, text=None, route="fallback", slots=slots,
                    hits=[asdict(h) for h in hits],
                    model_version=classifier.version if classifier else None,
                    threshold=classifier.threshold if classifier else None, answer_threshold=self.answer_threshold,
                    answer_confidence=answer_confidence)
        if prediction:
            base.update(intent=prediction.intent, confidence=round(prediction.confidence, 4),
                        score=round(prediction.score, 4), accepted=prediction.accepted,
                        similarity=None if prediction.similarity is None else round(prediction.similarity, 4))
        pending, pending_slot = conversation["pending_intent"], conversation["pending_slot"]
        if pending and pending_slot in found and (
                prediction is None or not prediction.accepted or prediction.intent == pending
                or word_count(text) <= 6):
            try:
                return self._template(Reply(**{**base, "intent": pending, "accepted": True}), cid)
            except TemplateError:  # its template was broken since the question: route the message afresh
                base["inbox"] = "template_error"
        for route in routes(prediction, hits[0] if hits else None, templates=self.replies.templates,
                            answer_threshold=self.answer_threshold, answer_override=self.answer_override,
                            answer_confidence=answer_confidence):
            if route == "answer":
                return self._answer(Reply(**base), hits[0])
            if route == "template":
                try:
                    return self._template(Reply(**base), cid)
                except TemplateError:  # a template staff broke must not break the chat: fall through
                    base["inbox"] = "template_error"
        base.update(text=self.replies.say("bot.fallback", slots), inbox=base.get("inbox") or "fallback")
        return Reply(**base)

    def _template(self, reply: Reply, cid: str) -> Reply:
        previous = self.store.last_bot_message(cid)
        rendered = self.replies.render(reply.intent, reply.slots,
                                       turn=self.store.count_intent_replies(cid, reply.intent),
                                       previous=previous["text"] if previous else None)
        reply.route, reply.text, reply.missing_slot = "template", rendered.text, rendered.missing_slot
        return reply

    def _answer(self, reply: Reply, hit: Hit) -> Reply:
        try:
            text = self.store.answer(hit.answer_id)["answer"]
        except DataError:  # deleted by staff a moment ago: fall back honestly
            reply.text, reply.inbox = self.replies.say("bot.fallback", reply.slots), "fallback"
            return reply
        reply.route, reply.answer_id, reply.text = "answer", hit.answer_id, text
        return reply

    def _review(self, reply: Reply, client: str | None = None) -> None:
        """Mark what staff should look at, and hand the chat over when the customer asks for a person
        (unless this client asked too often: then it is told so, and nothing more reaches the inbox)."""
        if reply.route == "template" and reply.intent == self.handoff_intent:
            refusal = self.handoff_refusal(client) if self.handoff_refusal else None
            if refusal:
                reply.text = refusal
            else:
                reply.handoff, reply.inbox = True, "asked_for_person"
        elif reply.inbox:
            pass
        elif reply.route == "template" and (reply.confidence or 0) < self.review_confidence:
            reply.inbox = "low_confidence"
        elif reply.route == "answer" and reply.hits and self._doubtful(reply.hits[0], reply.answer_confidence):
            reply.inbox = "low_confidence"

    def _doubtful(self, hit: dict, needed: float | None) -> bool:
        """A curated answer given with little to spare: a confidence in the lower half of the range
        above its threshold, or, without one, a cosine below review_answer_score."""
        if hit.get("confidence") is not None and needed is not None:
            return hit["confidence"] < (needed + 1.0) / 2
        return hit["score"] < self.review_answer_score

    def _record(self, reply: Reply, message_id: int) -> None:
        cid = reply.conversation_id
        if reply.route == "human":  # a person owns the chat: keep what the customer told, flag it for them
            self.store.update_conversation(cid, slots=reply.slots)
            self.store.flag_for_inbox(message_id, reason="human")
            return
        changes = {"slots": reply.slots, "pending_intent": reply.intent if reply.missing_slot else None,
                   "pending_slot": reply.missing_slot}
        if reply.handoff:
            changes.update(owner="human", handoff_at=now())
        fields = None if reply.text is None else dict(
            text=reply.text, route=reply.route, intent=reply.intent, confidence=reply.confidence,
            answer_id=reply.answer_id, model_version=reply.model_version, latency_ms=reply.latency_ms,
            trace=reply.trace())
        reply.message_id = self.store.record_reply(cid, message_id=message_id, changes=changes, inbox=reply.inbox,
                                                   reply=fields)
        if fields is not None and reply.message_id is None:
            # A person took the chat while this reply was being worked out: it is not sent.
            reply.text, reply.route, reply.inbox, reply.handoff = None, "human", "human", True
        elif reply.inbox == "asked_for_person":
            self._event("conversation.handoff", f"msg_handoff_{message_id}", cid, message_id)
        elif reply.route == "fallback":
            self._event("message.fallback", f"msg_fallback_{message_id}", cid, message_id)

    def _event(self, event: str, msg_id: str, cid: str, message_id: int, **data) -> None:
        if self.notify is None:
            return
        def payload() -> dict:  # read only when some endpoint listens for the event
            asked = self.store.message(message_id)
            return {"type": event, "timestamp": now(), "data": {
                "conversation_id": cid, "message_id": message_id, "role": asked["role"] if asked else None,
                "text": asked["text"] if asked else None, "customer": self.store.verified_customer(cid), **data}}
        try:
            self.notify(event, msg_id, payload)
        except Exception:  # the reply is stored and sent; a webhook is not worth failing it
            log.exception("could not record the %s event of message %s for the webhooks", event, message_id)

    def rate(self, conversation_id: str, message_id: int, rating: int) -> None:
        """A customer's like (1), dislike (-1) or none (0) of a bot reply in their conversation
        (store.rate), heard by the shop's webhooks as message.rated."""
        self.store.rate(conversation_id, message_id, rating)
        if rating:
            self._event("message.rated", f"msg_rated_{message_id}_{rating}", conversation_id, message_id,
                        rating=rating)

    # --- people -----------------------------------------------------------------------------
    def hand_off(self, conversation_id: str, *, client: str | None = None) -> Reply:
        """The customer asked for a person: a person owns the chat from now on, and it shows in
        the staff inbox (its last customer message, or the hand-off itself when there is none).
        `client` is the store's key of who asked (store.client_key), for a conversation it starts."""
        conversation = self.store.conversation(conversation_id, channel="web", client=client)
        cid = conversation["id"]
        if not self.store.claim_for_person(cid):
            return Reply(cid, None, "human", handoff=True)
        asked = [m for m in self.store.messages(cid) if m["role"] == "customer"]
        if asked:
            self.store.flag_for_inbox(asked[-1]["id"], reason="asked_for_person")
        else:  # a system note, so the dashboard does not count it as something the customer wrote
            self.store.flag_for_inbox(self.store.add_message(cid, role="system", text="the customer asked for a "
                                                             "person before writing anything"),
                                      reason="asked_for_person")
        text = self.replies.say("bot.handoff", conversation["slots"])
        message_id = self.store.add_message(cid, role="bot", text=text, route="handoff")
        self._event("conversation.handoff", f"msg_handoff_{message_id}", cid, asked[-1]["id"] if asked else message_id)
        return Reply(cid, text, "handoff", handoff=True, message_id=message_id)

    def take_over(self, conversation_id: str, *, author: str) -> None:
        """A staff member takes the conversation: the bot stays quiet until it is handed back."""
        self._existing(conversation_id)
        claimed = self.store.claim_for_person(conversation_id)  # one step: two clicks hand it over once
        joined = any(m["author"] == author for m in self.store.messages(conversation_id))
        if claimed or not joined:
            joined_note = self.replies.say("bot.joined", {"author": author})
            self.store.add_message(conversation_id, role="system", text=joined_note, author=author)
            self.store.audit(author, "take_over", conversation_id)

    def staff_reply(self, conversation_id: str, text: object, *, author: str) -> int:
        """A staff member's message to the customer; taking part in a chat takes it over."""
        text = clean_message(text, max_chars=self.max_message_chars)
        conversation = self._existing(conversation_id)
        if conversation["owner"] != "human":
            self.take_over(conversation_id, author=author)
        return self.store.add_message(conversation_id, role="staff", text=text, author=author)

    def hand_back(self, conversation_id: str, *, author: str) -> None:
        """Give the conversation back to the bot; the customer is told."""
        self._existing(conversation_id)
        self.store.update_conversation(conversation_id, owner="bot", handoff_at=None)
        message_id = self.store.add_message(conversation_id, role="bot", text=self.replies.say("bot.handed_back"),
                                            route="handback", author=author)
        self.store.audit(author, "hand_back", conversation_id)
        # the person's part of the conversation is closed: a helpdesk ticket opened at the hand-off can close too
        self._event("conversation.closed", f"msg_closed_{message_id}", conversation_id, message_id, author=author)

    def _existing(self, conversation_id: str) -> dict:
        if not conversation_id or not self.store.has_messages(conversation_id):
            raise DataError(f"no conversation {conversation_id!r}; pick one from the list")
        return self.store.conversation(conversation_id)

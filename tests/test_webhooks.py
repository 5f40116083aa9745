"""Signed outgoing webhooks (service/webhooks.py, store/webhooks.py): events the bot records reach a
local receiver signed the Standard Webhooks way, a 500 is tried again and a 404 is not, every
attempt is logged, an event recorded twice is sent once, and of two processes sending at once
only one sends each delivery, and an endpoint on a private network is refused unless the shop
allows it. The encoder is conftest's HashingEncoder; the receiver is a real HTTP server on this
machine (so the engine here allows private endpoints, as a shop with its helpdesk inside does)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
from dataclasses import replace

import pytest
from conftest import HashingEncoder

from csbot.errors import DataError
from csbot.service.engine import Engine
from csbot.service.webhooks import Sender, new_secret, private_address, signature
from csbot.store import Store

EVENTS = ["conversation.handoff", "conversation.closed", "message.fallback", "message.rated"]


@pytest.fixture
def receiver():
    """A local endpoint: records every request, answers with the next queued status (200 after)."""
    got, answers = [], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks", got, answers
    server.shutdown()


@pytest.fixture
def engine(settings, data_dir):
    engine = Engine(replace(settings, webhook_private=True), encoder=HashingEncoder())
    engine.load_defaults(data_dir)
    return engine


def verified(request: dict, secret: str) -> dict:
    """The body, once its signature checks out as the Standard Webhooks spec says (computed here,
    independently of csbot's own signer)."""
    h = request["headers"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + request["body"]
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert h["webhook-signature"] == f"v1,{expected}"
    return json.loads(request["body"])


def test_the_signature_matches_the_standard_webhooks_test_vector():
    assert signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                     b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_fallback_is_delivered_signed_retried_after_a_500_and_logged(engine, receiver):
    url, got, answers = receiver
    secret = engine.add_webhook(url=url, events=EVENTS, actor="ada")["secret"]
    assert engine.bot.respond("zebra quantum").route == "fallback"
    sender = Sender(engine.store)
    answers.append(500)
    assert sender.run_once() == 1
    first = engine.store.deliveries()[0]
    assert (first["status"], first["attempts"], first["last_status"]) == ("pending", 1, 500)
    due = engine.store.db.value("SELECT next_at FROM webhook_deliveries") - engine.store.clock()
    assert 3 < due <= 5  # tried again after 5 s, not before
    assert sender.run_once() == 0
    engine.store.db.execute("UPDATE webhook_deliveries SET next_at = 0")  # the 5 s have passed
    assert sender.run_once() == 1
    done = engine.store.deliveries()[0]
    assert (done["status"], done["attempts"], done["last_status"]) == ("delivered", 2, 200) and done["delivered_at"]
    assert len(got) == 2 and got[0]["headers"]["webhook-id"] == got[1]["headers"]["webhook-id"]  # one event
    event = verified(got[1], secret)
    assert event["type"] == "message.fallback" and event["data"]["text"] == "zebra quantum"
    assert event["data"]["customer"] is None  # nobody vouched for this customer
    assert engine.store.audit_log()[0]["action"] == "webhook_add"


def test_a_handoff_its_close_and_a_rating_are_heard_and_an_event_recorded_twice_is_sent_once(engine, receiver):
    url, got, _ = receiver
    secret = engine.add_webhook(url=url, events=["conversation.handoff", "conversation.closed", "message.rated"],
                                actor="ada")["secret"]
    reply = engine.bot.respond("zebra quantum")  # a fallback: not listened for here
    engine.store.bind_identity(reply.conversation_id, user_id="u-7", name="Ada Lovelace", email="ada@example.com")
    engine.bot.rate(reply.conversation_id, reply.message_id, -1)
    engine.bot.hand_off(reply.conversation_id)
    engine.bot.take_over(reply.conversation_id, author="sam")
    engine.bot.hand_back(reply.conversation_id, author="sam")  # the person's part is closed
    assert engine.store.record_event("message.rated", f"msg_rated_{reply.message_id}_-1", {"again": True}) == 0
    Sender(engine.store).run_once()
    events = {e["type"]: e for e in (verified(r, secret) for r in got)}
    assert sorted(events) == ["conversation.closed", "conversation.handoff", "message.rated"]
    assert events["conversation.closed"]["data"]["author"] == "sam" and events["message.rated"]["data"]["rating"] == -1
    ada = {"id": "u-7", "name": "Ada Lovelace", "email": "ada@example.com"}  # the customer the shop vouched for
    assert all(e["data"]["customer"] == ada for e in events.values())


def test_a_404_is_given_up_at_once_and_send_again_sends_it(engine, receiver):
    url, got, answers = receiver
    engine.add_webhook(url=url, events=EVENTS, actor="ada")
    engine.bot.respond("zebra quantum")
    answers.append(404)
    sender = Sender(engine.store)
    sender.run_once()
    failed = engine.store.deliveries()[0]
    assert (failed["status"], failed["last_status"]) == ("failed", 404) and sender.run_once() == 0
    engine.store.resend(failed["id"])
    assert sender.run_once() == 1 and engine.store.deliveries()[0]["status"] == "delivered" and len(got) == 2
    with pytest.raises(DataError, match="no delivery 999"):
        engine.store.resend(999)
    with pytest.raises(DataError, match="pick one or more events"):
        engine.add_webhook(url=url, events=["message.deleted"], actor="ada")


def test_two_processes_sending_at_once_send_each_delivery_once(engine, settings, receiver):
    url, got, _ = receiver
    engine.add_webhook(url=url, events=EVENTS, actor="ada")
    for i in range(20):
        engine.bot.respond(f"zebra quantum {i}")
    senders = [Sender(engine.store), Sender(Store.open(settings.database))]
    threads = [threading.Thread(target=s.run_once) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [r["headers"]["webhook-id"] for r in got]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert {d["status"] for d in engine.store.deliveries()} == {"delivered"}


def test_an_endpoint_on_this_machine_or_a_private_network_is_refused_unless_the_shop_allows_it(settings, data_dir,
                                                                                               receiver):
    url, got, _ = receiver
    shop = Engine(settings, encoder=HashingEncoder())  # the default: webhooks go to the public internet only
    shop.load_defaults(data_dir)
    for private in (url, "http://localhost:9/x", "http://10.1.2.3/hooks", "http://[::1]:9/x",
                    "http://169.254.169.254/latest/meta-data", "https://192.168.0.7/hooks"):
        with pytest.raises(DataError, match="private network or this machine.*CSBOT_WEBHOOK_PRIVATE"):
            shop.add_webhook(url=private, events=EVENTS, actor="ada")
    assert shop.store.webhooks() == []
    assert private_address("https://93.184.216.34/hooks") is None  # a public address is fine
    # A name that resolved elsewhere when it was added resolves here when sent: given up, never posted
    shop.store.add_webhook(url=url, secret=new_secret(), events=EVENTS, actor="ada")
    assert shop.bot.respond("zebra quantum").route == "fallback"
    assert shop.webhooks.run_once() == 1
    delivery = shop.store.deliveries()[0]
    assert delivery["status"] == "failed" and "not a public address" in delivery["last_error"] and got == []

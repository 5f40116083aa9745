"""The HTTP edge: POST /api/chat (good and bad input), the chat limits, and that the staff and
admin apps refuse anonymous callers (logins and sessions: test_login.py). In-process through FastAPI's TestClient, on a
copy of the CLI-trained tiny home, with the real encoder and model."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from fastapi.testclient import TestClient

from csbot.errors import RateLimited
from csbot.service.auth import Accounts
from csbot.service.engine import Engine
from csbot.service.jobs import Retrainer
from csbot.settings import load_settings
from csbot.web.server import ChatLimits, create_app

ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture(scope="module")
def engine(trained_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("api") / "home"
    shutil.copytree(trained_home, home)
    engine = Engine(load_settings(home=home, environ={}))
    Accounts(engine.store).ensure_first_admin({"CSBOT_ADMIN_PASSWORD": ADMIN_PASSWORD})
    return engine


def make_client(engine, **limits) -> TestClient:
    limits = ChatLimits(per_conversation=limits.get("per_conversation", 1000), per_client=limits.get("per_client", 1000))
    app = create_app(engine, accounts=Accounts(engine.store), retrainer=Retrainer(engine), limits=limits)
    return TestClient(app)


@pytest.fixture(scope="module")
def client(engine):
    with make_client(engine) as client:
        yield client


def stored(engine) -> int:
    return engine.store.db.rows("SELECT count(*) AS n FROM messages")[0]["n"]


def test_a_conversation_over_the_api(client, engine):
    first = client.post("/api/chat", json={"message": "Do you offer gift wrapping?"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["route"] == "answer" and "gift wrapping" in body["reply"] and body["conversation_id"]
    second = client.post("/api/chat", json={"conversation_id": body["conversation_id"], "message": "thanks, bye"})
    assert second.status_code == 200 and second.json()["conversation_id"] == body["conversation_id"]
    roles = [m["role"] for m in engine.store.messages(body["conversation_id"])]
    assert roles == ["customer", "bot", "customer", "bot"]
    assert engine.store.messages(body["conversation_id"])[1]["id"] == body["message_id"]


@pytest.mark.parametrize("body, fragment", [
    (json.dumps({"message": ""}), "empty"),
    (json.dumps({"message": "   \n\t "}), "empty"),
    (json.dumps({"message": "x" * 100_000}), "limit is 2,000"),
    (json.dumps({"message": "\x00\x01\x02\x7f"}), "empty"),
    ("{not json", "did not parse"),
    (b"\xff\xfe\x00binary\x80junk", "UTF-8"),
    (json.dumps(["where is my order"]), "JSON object"),
    (json.dumps({"text": "hello"}), "unknown fields"),
    (json.dumps({}), "message must be a string"),
    (json.dumps({"message": 42}), "message must be a string"),
    (json.dumps({"message": "hi", "conversation_id": "<script>"}), "conversation_id"),
    ("x" * 300_000, "limit of 262,144 bytes"),
])
def test_bad_input_gets_a_clear_4xx_json_error_and_stores_nothing(client, engine, body, fragment):
    before = stored(engine)
    response = client.post("/api/chat", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert fragment in response.json()["error"]
    assert stored(engine) == before


def test_an_unknown_conversation_is_a_404_not_a_new_one(client, engine):
    before = stored(engine)
    response = client.post("/api/chat", json={"conversation_id": "nosuchconversation", "message": "hi"})
    assert response.status_code == 404 and "null to start" in response.json()["error"]
    assert stored(engine) == before


def test_control_characters_inside_a_message_are_stripped_and_it_is_answered(client, engine):
    response = client.post("/api/chat", json={"message": "do you offer\x00 gift\u200b wrapping?\x07"})
    assert response.status_code == 200
    [customer, _] = engine.store.messages(response.json()["conversation_id"])
    assert customer["text"] == "do you offer gift wrapping?"


def test_messages_beyond_the_conversation_limit_get_a_polite_429(engine):
    with make_client(engine, per_conversation=2) as client:
        cid = client.post("/api/chat", json={"message": "hello"}).json()["conversation_id"]
        assert client.post("/api/chat", json={"conversation_id": cid, "message": "hello again"}).status_code == 200
        before = stored(engine)
        limited = client.post("/api/chat", json={"conversation_id": cid, "message": "and again"})
        assert limited.status_code == 429 and "please wait" in limited.json()["error"].lower()
        assert int(limited.headers["retry-after"]) >= 1 and stored(engine) == before
        # another conversation from the same client is not held back by this one's limit
        assert client.post("/api/chat", json={"message": "hi"}).status_code == 200


@pytest.mark.parametrize("path", ["/staff", "/admin"])
def test_staff_and_admin_apps_refuse_anonymous_callers(client, path):
    config = client.get(f"{path}/config")
    assert config.status_code == 401
    info = client.get(f"{path}/gradio_api/info")
    assert info.status_code == 401
    call = client.post(f"{path}/gradio_api/call/inbox", json={"data": []})
    assert call.status_code in (401, 403, 404) and "inbox" not in call.text.lower().replace("/inbox", "")


def test_health_names_the_serving_model_and_shows_details_only_to_the_machine_itself(client, engine):
    health = client.get("/api/health").json()  # the TestClient's address is "testclient": from outside
    assert health == {"status": "ok", "model_version": engine.store.current_model()["id"]}
    app = client.app
    with TestClient(app, client=("127.0.0.1", 50000)) as local:  # a monitor on the host
        detail = local.get("/api/health").json()
    assert detail["model_version"] == health["model_version"] and {"problem", "runtime", "training"} <= set(detail)


def test_the_chat_app_takes_no_uploads(client):
    response = client.post("/gradio_api/upload", files={"files": ("x.txt", b"hello")})
    assert response.status_code == 403 and "no file uploads" in response.json()["error"]


def test_a_streamed_body_over_the_limit_is_refused_without_a_content_length(client, engine):
    before = stored(engine)

    def chunks():
        for _ in range(40):
            yield b"x" * 10_000
    response = client.post("/api/chat", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and stored(engine) == before


def test_an_unexpected_error_is_a_json_500_with_an_error_id_and_the_message_reaches_the_inbox(client, engine):
    index = engine.bot.index
    real = index.encode

    def broken(texts):
        raise RuntimeError("the encoder fell over")
    index.encode = broken
    try:
        response = client.post("/api/chat", json={"message": "is my parcel insured?"})
    finally:
        index.encode = real
    body = response.json()
    assert response.status_code == 500 and body["error_id"] and "passed to our team" in body["error"]
    [message] = engine.store.messages(body["conversation_id"])
    assert message["text"] == "is my parcel insured?" and message["inbox"] == "error"
    assert any(item["id"] == message["id"] for item in engine.store.inbox())
    again = client.post("/api/chat", json={"conversation_id": body["conversation_id"], "message": "hello?"})
    assert again.status_code == 200 and again.json()["reply"]  # the server keeps serving


def test_requests_for_a_person_are_limited_per_client_an_hour(clock):
    limits = ChatLimits(per_conversation=100, per_client=100, handoffs_per_hour=2, clock=clock)
    limits.check_handoff("203.0.113.9")
    limits.check_handoff("203.0.113.9")
    with pytest.raises(RateLimited, match="already have your requests for a person"):
        limits.check_handoff("203.0.113.9")
    limits.check_handoff("198.51.100.4")  # another customer is not held up
    clock.now += 3601
    limits.check_handoff("203.0.113.9")


def test_the_chat_page_stores_no_conversation_under_an_id_the_client_chose(engine):
    from types import SimpleNamespace

    from csbot.language import Words
    from csbot.web.chat import ChatPage

    page = ChatPage(engine, ChatLimits(per_conversation=100, per_client=100), Words.load("en"))
    browser = SimpleNamespace(client=SimpleNamespace(host="203.0.113.5"), session_hash="s1")  # Gradio's request
    *_, chosen, _ = page.send("hello there", "my-own-id-123", browser)
    assert chosen != "my-own-id-123" and not engine.store.has_messages("my-own-id-123")
    *_, again, _ = page.send("and another thing", chosen, browser)
    assert again == chosen  # a conversation the store made goes on
    assert engine.store.conversation(chosen)["client"] is not None  # its sender's key, not its address
    assert engine.store.conversation(chosen)["client"] != "203.0.113.5"


def test_asking_for_a_person_in_words_counts_against_the_same_limit_on_every_channel(engine):
    from csbot.store import client_key

    limits = ChatLimits(per_conversation=1000, per_client=1000, handoffs_per_hour=2)
    app = create_app(engine, accounts=Accounts(engine.store), retrainer=Retrainer(engine), limits=limits)
    engine.bot.handoff_intent = "greeting"  # the tiny data has no human_agent intent: a greeting asks here
    try:
        with TestClient(app, client=("203.0.113.50", 50000)) as stranger:
            asked = [stranger.post("/api/chat", json={"message": "hello there"}).json() for _ in range(5)]
    finally:
        engine.bot.handoff_intent = engine.settings.handoff_intent
        engine.handoff_refusal = None
    assert all(r["intent"] == "greeting" for r in asked)  # understood every time...
    assert sum(r["handoff"] for r in asked) == 2  # ...handed to a person twice, then refused politely
    assert all("already have your requests for a person" in r["reply"] for r in asked if not r["handoff"])
    flooder = client_key("203.0.113.50")
    asked_for_person = [i for i in engine.store.inbox(limit=1000, reason="asked_for_person")
                        if engine.store.conversation(i["conversation_id"])["client"] == flooder]
    assert len(asked_for_person) == 2  # only the two reached the staff inbox
    with pytest.raises(RateLimited):  # and the chat page's button shares the count
        limits.check_handoff(flooder)


def test_an_api_client_polls_and_hears_the_staff_reply_after_a_hand_off(client, engine):
    first = client.post("/api/chat", json={"message": "Do you offer gift wrapping?"}).json()
    cid, seen = first["conversation_id"], first["message_id"]
    everything = client.get(f"/api/conversations/{cid}/messages").json()
    assert [m["role"] for m in everything["messages"]] == ["customer", "bot"] and everything["after"] == seen
    assert everything["owner"] == "bot" and everything["messages"][1]["route"] == "answer"
    assert client.get(f"/api/conversations/{cid}/messages", params={"after": seen}).json()["messages"] == []
    engine.bot.hand_off(cid)
    engine.bot.take_over(cid, author="sam")
    engine.bot.staff_reply(cid, "Hello, Sam here: yes, <b>£4.50</b>.", author="sam")
    news = client.get(f"/api/conversations/{cid}/messages", params={"after": seen}).json()
    assert news["owner"] == "human" and news["messages"][-1] == {
        "id": news["after"], "role": "staff", "text": "Hello, Sam here: yes, <b>£4.50</b>.", "author": "sam",
        "created_at": news["messages"][-1]["created_at"]}
    assert client.get(f"/api/conversations/{cid}/messages", params={"after": news["after"]}).json()["messages"] == []
    # long polling: an answer with nothing new is held open until a message comes
    import threading

    threading.Timer(0.3, lambda: engine.bot.staff_reply(cid, "Anything else?", author="sam")).start()
    held = client.get(f"/api/conversations/{cid}/messages", params={"after": news["after"], "wait": 20})
    assert [m["text"] for m in held.json()["messages"]] == ["Anything else?"]
    assert client.get(f"/api/conversations/{cid}/messages", params={"wait": 26}).status_code == 400
    # bad handles and cursors get a clear 400 or 404, and nothing is made by looking
    assert client.get("/api/conversations/no such id/messages").status_code == 400
    assert client.get(f"/api/conversations/{cid}/messages", params={"after": "-1"}).status_code == 400
    missing = client.get("/api/conversations/0123abcd/messages")
    assert missing.status_code == 404 and "POST /api/chat" in missing.json()["error"]
    assert not engine.store.has_messages("0123abcd")


def test_polling_too_fast_is_refused_politely(engine):
    with make_client(engine) as fast:
        cid = fast.post("/api/chat", json={"message": "hello"}).json()["conversation_id"]
        codes = [fast.get(f"/api/conversations/{cid}/messages").status_code for _ in range(125)]
    assert codes[:120] == [200] * 120 and codes[-1] == 429


def test_the_openapi_description_lists_the_chat_api_only_and_its_docs_page_fetches_nothing_outside(client):
    from openapi_spec_validator import validate

    spec = client.get("/openapi.json").json()
    validate(spec)  # OpenAPI 3.1, as the specification's own schema checks it
    assert set(spec["paths"]) == {"/api/chat", "/api/handoff", "/api/messages/{message_id}/rating",
                                  "/api/conversations/{conversation_id}/messages"}
    chat = spec["paths"]["/api/chat"]["post"]
    assert set(chat["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "conversation_id", "message", "identity"}
    assert {"200", "400", "401", "403", "404", "413", "429"} <= set(chat["responses"])
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text and '"validatorUrl": null' in page.text
    fetched = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert fetched and all(url.startswith("/api/docs/assets/") for url in fetched)  # no CDN
    for url in fetched:
        assert client.get(url).status_code == 200


SECRET = "a-shop-secret-of-at-least-32-characters"


def token(claims: dict, secret: str = SECRET) -> str:
    import jwt

    return jwt.encode(claims, secret, algorithm="HS256")


def test_a_customer_the_shops_server_vouches_for_is_shown_by_name_and_a_forged_token_is_refused(engine):
    import time
    from dataclasses import replace

    from csbot.web.staff.live import live_rows

    shop = Engine(replace(engine.settings, identity_secret=SECRET), store=engine.store, encoder=engine.encoder)
    now = int(time.time())
    ada = {"sub": "u-1042", "name": "Ada Lovelace", "email": "ada@example.com", "iat": now, "exp": now + 600}
    with make_client(shop) as client:
        first = client.post("/api/chat", json={"message": "Do you offer gift wrapping?", "identity": token(ada)})
        assert first.status_code == 200, first.text
        cid = first.json()["conversation_id"]
        row = engine.store.conversation(cid)
        assert (row["customer_id"], row["customer_name"], row["customer_email"]) == ("u-1042", "Ada Lovelace",
                                                                                     "ada@example.com")
        assert row["identity_verified_at"] and row["slots"]["customer_name"] == "Ada Lovelace"
        engine.bot.hand_off(cid)  # staff see the verified name in the live list
        later = client.post("/api/chat", json={"conversation_id": cid, "message": "still there?", "identity": token(ada)})
        assert later.json()["route"] == "human"
        shown = next(r for r in live_rows(engine.store.live_conversations(limit=100)) if r[0] == cid)
        assert shown[1] == "Ada Lovelace <ada@example.com> ✓" and shown[4] == "customer: still there?"
        before = stored(engine)
        refusals = {
            "forged": (token(ada, secret="someone-elses-secret-of-32-characters!"), 401, "not one signed"),
            "expired": (token({**ada, "iat": now - 900, "exp": now - 300}), 401, "expired"),
            "a year long": (token({**ada, "exp": now + 365 * 86400}), 401, "the most is 24 h"),
            "no expiry": (token({k: v for k, v in ada.items() if k != "exp"}), 401, "lacks the 'exp' claim"),
            "not a token": ("hello", 401, "not one signed"),
            "another customer": (token({**ada, "sub": "u-7", "name": "Eve"}), 403, "another customer"),
        }
        for why, (bad, status, said) in refusals.items():
            refused = client.post("/api/chat", json={"conversation_id": cid, "message": "hi", "identity": bad})
            assert (refused.status_code, said in refused.json()["error"]) == (status, True), (why, refused.text)
        assert stored(engine) == before  # nothing a refused call said was stored
        assert engine.store.conversation(cid)["customer_name"] == "Ada Lovelace"
        forged = token(ada, secret="someone-elses-secret-of-32-characters!")
        for body, status in (({"conversation_id": None, "identity": forged}, 401),
                             ({"conversation_id": cid, "identity": token({**ada, "sub": "u-7"})}, 403)):
            assert client.post("/api/handoff", json=body).status_code == status
        huge = client.post("/api/handoff", json={"conversation_id": cid, "identity": "x" * 20_000})
        assert huge.status_code == 413 and "16,384 bytes" in huge.json()["error"]
        assert stored(engine) == before
        asked = client.post("/api/handoff", json={"conversation_id": None, "identity": token(ada)})  # first thing
        assert asked.status_code == 200 and asked.json()["route"] == "handoff"
        shown = next(r for r in live_rows(engine.store.live_conversations(limit=100))
                     if r[0] == asked.json()["conversation_id"])
        assert shown[1] == "Ada Lovelace <ada@example.com> ✓"  # staff see who is waiting
    with make_client(engine) as plain:  # a shop with no identity_secret takes no tokens
        refused = plain.post("/api/chat", json={"message": "hi", "identity": token(ada)})
        assert refused.status_code == 401 and "takes no identity tokens" in refused.json()["error"]
        assert plain.post("/api/chat", json={"message": "hi", "identity": None}).status_code == 200  # null: no token


def test_the_widget_window_may_be_framed_by_exactly_the_shops_origins_and_nowhere_by_default(engine, client):
    from dataclasses import replace

    page = client.get("/widget")
    assert page.status_code == 200 and page.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert "x-frame-options" not in page.headers and "<script>" not in page.text  # no inline script
    shop = Engine(replace(engine.settings, widget_origins="https://shop.example http://localhost:8000",
                          widget_colour="#aa3300", widget_position="left"), store=engine.store, encoder=engine.encoder)
    with make_client(shop) as served:
        policy = served.get("/widget").headers["content-security-policy"]
        assert policy.endswith("frame-ancestors https://shop.example http://localhost:8000")
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy
        loader = served.get("/widget.js")
        assert loader.headers["content-type"].startswith("text/javascript")
        assert '"colour": "#aa3300", "position": "left"' in loader.text and "__CSBOT" not in loader.text
        assert "--accent:#aa3300" in served.get("/widget/frame.css").text


def test_a_person_is_asked_for_over_the_api_as_on_the_chat_page(client, engine):
    handed = client.post("/api/handoff", json={"conversation_id": None})
    assert handed.status_code == 200 and handed.json()["route"] == "handoff" and handed.json()["handoff"]
    cid = handed.json()["conversation_id"]
    assert engine.store.conversation(cid)["owner"] == "human"
    assert client.post("/api/handoff", json={"conversation_id": cid}).json()["route"] == "human"  # once only
    assert client.post("/api/handoff", json={"conversation_id": "0123abcd"}).status_code == 404
    assert client.post("/api/handoff", json={"conversation": cid}).status_code == 400


def test_a_reply_is_rated_over_the_api_and_a_dislike_reaches_the_inbox(client, engine):
    first = client.post("/api/chat", json={"message": "Do you offer gift wrapping?"}).json()
    cid, reply = first["conversation_id"], first["message_id"]
    rated = client.post(f"/api/messages/{reply}/rating", json={"conversation_id": cid, "rating": -1})
    assert rated.status_code == 200 and rated.json() == {"message_id": reply, "rating": -1}
    assert engine.store.message(reply)["rating"] == -1
    assert any(i["conversation_id"] == cid and i["inbox"] == "disliked" for i in engine.store.inbox(limit=100))
    other = client.post("/api/chat", json={"message": "hello"}).json()["conversation_id"]
    wrong = client.post(f"/api/messages/{reply}/rating", json={"conversation_id": other, "rating": 1})
    assert wrong.status_code == 400 and "not a bot reply in this conversation" in wrong.json()["error"]
    assert client.post(f"/api/messages/{reply}/rating", json={"conversation_id": cid, "rating": 5}).status_code == 400
    assert client.post(f"/api/messages/{reply}/rating", json={"conversation_id": cid, "rating": True}).status_code == 400
    assert engine.store.message(reply)["rating"] == -1  # the refused ones changed nothing

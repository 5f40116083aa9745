"""The web server: one FastAPI app holding the three pages, the login, and the JSON chat API.

    /                the customer chat (no login)                      chat.py
    /staff           support staff: inbox, live chats, answers, ...    staff/   (staff or admin)
    /admin           admins: retraining, reports, versions, users      admin/   (admin)
    /login, /logout, /account/two-factor, /api/session: the account pages (account.py)
    POST /api/chat   {"conversation_id": ..., "message": ...} -> the reply and its route as JSON
    GET  /api/health the serving model, whether it is degraded, and whether a training run is going
    GET  /api/ready  200 when this replica should get traffic (model loaded, caught up with the
                     store, not shutting down), else 503 with the reasons: for load balancers

Logins are ours, not Gradio's: a session is a row in the store (auth.py) named by an HttpOnly,
SameSite=Lax cookie, so every server process on the same store knows it, it survives restarts,
it expires, and a password reset, role change or disable ends it at once. Each Gradio app is
mounted with an `auth_dependency` that reads that cookie, and every staff/admin handler checks
the caller's role again on the server (common.py), since a Gradio app's events can all be
called through its API. Every request first crosses boundary.py: a body limit per path before
anything is parsed, no cross-origin reads (Gradio's permissive CORS headers are stripped), no
framing of the staff and admin pages. The client address is the TCP peer, or, for a peer listed in
`forwarded_allow_ips` (the reverse proxy), the address the proxy puts in X-Forwarded-For
(uvicorn's proxy-headers middleware): nobody else can choose the address they are counted by.

This module wires; the bot decides (bot.py), the store keeps (store/), accounts check (auth.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from csbot import __version__
from csbot.errors import CsbotError, DataError, IdentityRefused, RateLimited, ReplyFailed
from csbot.importer import MAX_FILE_BYTES
from csbot.language import Words
from csbot.service.auth import SESSION_COOKIE
from csbot.service.identity import verify as verify_identity
from csbot.service.ratelimit import RateLimiter
from csbot.store import client_key, valid_conversation_id
from csbot.web.account import PAGES, TWO_FACTOR, account_routes
from csbot.web.boundary import BodyLimits, Boundary
from csbot.web.common import SESSION_WATCH, client_address
from csbot.web.openapi import CHAT_BODY, HANDOFF_BODY, RATING_BODY, ChatReply, Messages, Rated, errors, install_docs
from csbot.web.widget import widget_routes

log = logging.getLogger("csbot.web.server")
MAX_BODY_BYTES = BodyLimits.chat_api
HANDOFF_BODY_BYTES = 16 * 1024  # a conversation id and an identity token, with room for a shop's extra claims
COOKIE = SESSION_COOKIE
LOCAL = ("127.0.0.1", "::1")  # the machine itself: /api/health shows it the details


POLLS_PER_MINUTE = 120  # GET /api/conversations/{id}/messages per client address
POLLED_AT_MOST = 200  # messages one poll returns; the next poll continues after the last
LONG_POLL_SECONDS = 25  # the longest a poll with nothing new is held open (under common proxies' 30 s)


class ChatLimits:
    """Chat messages per conversation and per client address, a minute each (settings).

    Counted in this process's memory: a chat message pays no extra database write. With several
    processes each enforces its own count; put the shared limit in the reverse proxy."""

    def __init__(self, *, per_conversation: int, per_client: int, handoffs_per_hour: int = 6, clock=time.monotonic,
                 words: Words | None = None):
        self.words = words or Words.load("en")  # the polite reply is in the shop's language
        self.conversation = RateLimiter(per_conversation, 60, clock=clock)
        self.client = RateLimiter(per_client, 60, clock=clock)
        self.handoffs = RateLimiter(handoffs_per_hour, 3600, clock=clock)
        self.polls = RateLimiter(POLLS_PER_MINUTE, 60, clock=clock)

    def check_poll(self, client: str) -> None:
        """Raise RateLimited when this client polls for new messages more than POLLS_PER_MINUTE times
        a minute (every half second; a client polling every 2 s uses a quarter of it)."""
        wait = self.polls.hit(f"p:{client}")
        if wait:
            raise RateLimited(self.words.say("chat.too_fast", seconds=max(1, round(wait))),
                              retry_after=max(1, round(wait)))

    def check_handoff(self, client: str) -> None:
        """Raise RateLimited, politely, when this client (its store.client_key) asked for a person too
        often this hour: a stranger cannot fill the staff inbox with hand-offs (each one is a new
        conversation). The chat page's button asks this; a message asking for a person, on any
        channel, asks `handoff_refusal` (the bot's hook), which counts against the same limit."""
        refusal = self.handoff_refusal(client)
        if refusal:
            raise RateLimited(refusal, retry_after=60)

    def handoff_refusal(self, client: str | None) -> str | None:
        """None when this client may ask for a person now (and it is counted), else the polite words."""
        return self.words["chat.handoff_limit"] if self.handoffs.hit(f"h:{client}") else None

    def started(self, conversation_id: str) -> None:
        """Count a new conversation's first message against it (it had no id when it was checked)."""
        self.conversation.hit(f"c:{conversation_id}")

    def check(self, conversation_key: str | None, client: str) -> None:
        """Raise RateLimited with a polite message when either limit is reached."""
        wait = self.conversation.hit(f"c:{conversation_key}") if conversation_key else 0.0
        wait = wait or self.client.hit(f"ip:{client}")
        if wait:
            seconds = max(1, round(wait))
            text = self.words.say("chat.too_fast", seconds=seconds) if seconds != 1 else self.words["chat.too_fast_one"]
            raise RateLimited(text, retry_after=seconds)


def _too_many(exc: RateLimited) -> JSONResponse:
    """429 with the polite words and when to try again, for every API route's limit."""
    return JSONResponse({"error": str(exc), "retry_after": exc.retry_after}, status_code=429,
                        headers={"Retry-After": str(int(exc.retry_after))})


def _reply_body(reply) -> dict:
    """A bot reply as POST /api/chat and POST /api/handoff give it (openapi.ChatReply)."""
    return {"conversation_id": reply.conversation_id, "reply": reply.text, "route": reply.route,
            "intent": reply.intent, "confidence": reply.confidence, "answer_id": reply.answer_id,
            "handoff": reply.handoff, "message_id": reply.message_id, "model_version": reply.model_version}


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class Guard:
    """The ASGI layer that asks `early(request)` for a response before the app's own (a refusal, or
    a redirect to the login form), and says `Connection: close` on every response while the app
    drains, so no keep-alive connection stays open to a replica about to close them.

    Plain ASGI rather than `@app.middleware("http")`, which runs each response through a stream and
    a task of its own on the event loop's thread: under 16 chat clients that thread is the one
    saturated, and the decorator took about a tenth of it."""

    def __init__(self, app, *, early, state):
        self.app, self.early, self.state = app, early, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.state.draining:
            send = _closing(send)
        response = await self.early(Request(scope))
        if response is not None:
            return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _closing(send):
    async def closing(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*(h for h in message.get("headers", []) if h[0].lower() != b"connection"),
                                              (b"connection", b"close")]}
        await send(message)
    return closing


def create_app(engine, *, accounts, retrainer, limits: ChatLimits | None = None) -> FastAPI:
    """The whole web app for one csbot home. `engine` serves, `accounts` log in, `retrainer` trains."""
    from csbot.web.admin import build_admin
    from csbot.web.chat import build_chat
    from csbot.web.staff import build_staff

    settings = engine.settings
    limits = limits or ChatLimits(per_conversation=settings.chat_per_minute, per_client=settings.chat_ip_per_minute,
                                  handoffs_per_hour=settings.handoff_ip_per_hour, words=Words.load(settings.language))
    engine.handoff_refusal = limits.handoff_refusal  # hand-offs asked for in words, on any channel, count too
    staff_words = Words.load(settings.staff_language)  # the login form's, as the staff and admin pages'
    app = FastAPI(title="csbot chat API", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", description="A customer's API: chat with the bot, and hear "
                                                          "the staff's replies after a hand-off (docs/api.md).")

    def session_user(request: Request, role: str, renew: bool = False) -> str | None:
        """The logged-in user with `role`; for the admin page, only once two-factor is on where the
        settings require it. Gradio's calls do not renew the session (guarded handlers do: common.py)."""
        user = accounts.session_user(request.cookies.get(COOKIE), role=role, renew=renew)
        return None if user and role == "admin" and accounts.two_factor.missing(user) else user

    async def guard(request: Request) -> Response | None:
        """A response before the app's own, or None: no uploads on the chat page, our login
        routes for Gradio's, and the login form for a page opened without its session."""
        path = request.url.path
        if request.method == "POST" and path.startswith("/gradio_api/upload"):
            return _error(403, "the chat page takes no file uploads")  # only /staff has an upload (import)
        if path.rstrip("/").endswith(("/login", "/logout")) and path.rstrip("/") not in ("/login", "/logout"):
            # Gradio's own login routes under a mount: ours replace them
            return RedirectResponse("/logout" if path.rstrip("/").endswith("/logout") else "/login", status_code=303)
        page = path if path.endswith("/") else path + "/"
        if request.method == "GET" and page in PAGES:  # opening the page is a user action: it renews
            if await run_in_threadpool(session_user, request, PAGES[page], True) is None:
                if PAGES[page] == "admin" and await run_in_threadpool(session_user, request, "staff"):
                    return RedirectResponse(f"{TWO_FACTOR}?next={quote(page)}", status_code=303)
                return RedirectResponse(f"/login?next={quote(page)}", status_code=303)
        return None

    app.add_middleware(Guard, early=guard, state=app.state)

    app.include_router(account_routes(accounts=accounts, words=staff_words, secure=settings.secure_cookies),
                       include_in_schema=False)

    def identity_in(payload: dict):
        """The customer a call's `identity` token vouches for (None without one); IdentityRefused
        (401) for a bad token. Checked before anything is stored."""
        token = payload.get("identity")  # null, as the schema allows, is no token
        return verify_identity(token, settings.identity_secret) if token is not None else None

    def bound(cid: str | None, identity, client) -> str | None:
        """In a worker thread: the conversation (started when cid is None) bound to the verified
        customer, before anything else is stored; IdentityRefused (403) when it is another's."""
        if identity is None:
            return cid
        conversation_id = engine.store.conversation(cid, channel="api", client=client_key(client))["id"]
        engine.store.bind_identity(conversation_id, user_id=identity.user_id, name=identity.name, email=identity.email)
        return conversation_id

    @app.post("/api/chat", tags=["chat"], summary="Send a customer's message; get the bot's reply",
              openapi_extra=CHAT_BODY,
              responses={200: {"model": ChatReply}, **errors(400, 401, 403, 404, 413, 429, 500)})
    async def api_chat(request: Request):
        too_big = _error(413, f"the request body is over the limit of {MAX_BODY_BYTES:,} bytes. "
                              "Send one message of up to a few thousand characters.")
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            return too_big
        body = bytearray()
        async for chunk in request.stream():  # never hold more than the limit in memory
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return too_big
        body = bytes(body)
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"the body must be UTF-8 JSON like {{\"message\": \"...\"}}; it did not parse: {exc}")
        if not isinstance(payload, dict):
            return _error(400, f"the body must be a JSON object; found {type(payload).__name__}")
        unknown = sorted(set(payload) - {"conversation_id", "message", "identity"})
        if unknown:
            return _error(400, f"unknown fields {unknown}; send only conversation_id, message and identity")
        cid = payload.get("conversation_id")
        if cid is not None and valid_conversation_id(cid) is None:
            return _error(400, "conversation_id must be the id a previous reply returned (letters, digits, - "
                               "and _), or null to start a conversation")
        if not isinstance(payload.get("message"), str):
            return _error(400, "message must be a string with the customer's text")
        try:
            identity = identity_in(payload)
        except IdentityRefused as exc:
            return _error(401, str(exc))
        client = client_address(request)

        def answer():  # in a worker thread: the store and the model must not block the event loop
            if cid is not None and not engine.store.has_messages(cid):
                return None
            limits.check(cid, client)
            return engine.bot.respond(payload["message"], bound(cid, identity, client), channel="api",
                                      client=client_key(client))
        try:
            reply = await run_in_threadpool(answer)
            if reply is None:
                return _error(404, f"no conversation {cid!r}; send null to start a new one")
        except RateLimited as exc:
            return _too_many(exc)
        except IdentityRefused as exc:  # the conversation is another customer's
            return _error(403, str(exc))
        except DataError as exc:
            return _error(400, str(exc))
        except CsbotError as exc:
            return _error(422, str(exc))
        except ReplyFailed as exc:  # the message is stored and in the inbox; the traceback is in the log
            return _error(500, str(exc), error_id=exc.error_id, conversation_id=exc.conversation_id)
        except Exception:  # before the message was stored (the store itself failing)
            error_id = f"{time.time_ns():x}"[-10:]
            log.exception("error %s in /api/chat", error_id)
            return _error(500, f"something went wrong on our side (error {error_id}); please send it again",
                          error_id=error_id)  # what went wrong is in the log under that id, not here
        if cid is None:
            limits.started(reply.conversation_id)
        return _reply_body(reply)

    @app.post("/api/handoff", tags=["chat"], summary="Ask for a person (the chat page's button)",
              openapi_extra=HANDOFF_BODY, responses={200: {"model": ChatReply}, **errors(400, 401, 403, 404, 413, 429)})
    async def api_handoff(request: Request):
        """Give the conversation to a person, as the chat page's "Talk to a person" button does: the
        same hourly limit per client, the same words. A null conversation_id starts one."""
        body = await request.body()  # the boundary has already cut off anything over its limit
        if len(body) > HANDOFF_BODY_BYTES:
            return _error(413, f"the body is over {HANDOFF_BODY_BYTES:,} bytes; send only conversation_id and "
                               "identity")
        try:
            payload = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict) or set(payload) - {"conversation_id", "identity"}:
            return _error(400, 'the body must be JSON like {"conversation_id": "..."} (or null to start one), '
                               "with an optional identity token")
        cid = payload.get("conversation_id")
        if cid is not None and valid_conversation_id(cid) is None:
            return _error(400, "conversation_id must be the id /api/chat returned, or null")
        try:
            identity = identity_in(payload)
        except IdentityRefused as exc:
            return _error(401, str(exc))
        client = client_address(request)

        def hand_off():
            if cid is not None and not engine.store.has_messages(cid):
                return None
            limits.check(cid, client)
            conversation_id = bound(cid, identity, client)  # another customer's: refused before a slot is spent
            limits.check_handoff(client_key(client))
            return engine.bot.hand_off(conversation_id, client=client_key(client))
        try:
            reply = await run_in_threadpool(hand_off)
        except RateLimited as exc:
            return _too_many(exc)
        except IdentityRefused as exc:  # the conversation is another customer's
            return _error(403, str(exc))
        if reply is None:
            return _error(404, f"no conversation {cid!r}; send null to start a new one")
        return _reply_body(reply)

    @app.post("/api/messages/{message_id}/rating", tags=["chat"], summary="Like (1), dislike (-1) or un-rate (0) "
              "a bot reply", openapi_extra=RATING_BODY, responses={200: {"model": Rated}, **errors(400, 429)})
    async def api_rating(message_id: int, request: Request):
        """A customer's rating of a bot reply in their own conversation, as the chat page's thumbs: a
        dislike sends the message it answered to the staff inbox. The conversation id proves it is theirs."""
        try:
            payload = json.loads((await request.body())[:4096] or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if (not isinstance(payload, dict) or set(payload) != {"conversation_id", "rating"}
                or valid_conversation_id(payload["conversation_id"]) is None or payload["rating"] not in (-1, 0, 1)
                or isinstance(payload["rating"], bool)):
            return _error(400, 'the body must be JSON like {"conversation_id": "...", "rating": 1}, with rating '
                               "1 (like), -1 (dislike) or 0 (none)")
        client = client_address(request)

        def rate():
            limits.check(payload["conversation_id"], client)
            engine.bot.rate(payload["conversation_id"], message_id, payload["rating"])
        try:
            await run_in_threadpool(rate)
        except RateLimited as exc:
            return _too_many(exc)
        except DataError as exc:
            return _error(400, str(exc))
        return {"message_id": message_id, "rating": payload["rating"]}

    @app.get("/api/conversations/{conversation_id}/messages", tags=["chat"],
             summary="The conversation's messages after message `after`: poll for a staff reply",
             responses={200: {"model": Messages}, **errors(400, 404, 429)})
    async def api_messages(conversation_id: str, request: Request,
                           after: str = Query("0", description="The id of the last message the client has"),
                           wait: str = Query("0", description=f"Seconds (0-{LONG_POLL_SECONDS}) to hold the answer "
                                                              "open until a new message arrives (long polling)")):
        """The conversation's messages with an id above `after`, oldest first, at most POLLED_AT_MOST:
        what an API client polls for to hear a staff reply after a hand-off. With `wait`, an answer
        with nothing new is held open up to that many seconds, looking once a second, so a staff
        reply arrives within about a second. The conversation id is the handle: whoever holds it
        may read the conversation, as on the chat page."""
        if valid_conversation_id(conversation_id) is None:
            return _error(400, "the conversation id must be the one /api/chat returned (letters, digits, - and _)")
        if not after.isdigit():
            return _error(400, f"after must be a message id (0 or more, digits only); found {after[:40]!r}")
        if not wait.isdigit() or int(wait) > LONG_POLL_SECONDS:
            return _error(400, f"wait must be 0 to {LONG_POLL_SECONDS} seconds; found {wait[:40]!r}")
        client = client_address(request)

        def news():
            return (engine.store.conversation(conversation_id),
                    engine.store.messages_after(conversation_id, int(after), limit=POLLED_AT_MOST))

        def read():
            limits.check_poll(client_key(client))
            return news() if engine.store.has_messages(conversation_id) else None
        try:
            found = await run_in_threadpool(read)
        except RateLimited as exc:
            return _too_many(exc)
        if found is None:
            return _error(404, f"no conversation {conversation_id!r}; start one with POST /api/chat")
        deadline = time.monotonic() + int(wait)
        while not found[1] and time.monotonic() < deadline and not app.state.draining:
            await asyncio.sleep(1.0)
            if await request.is_disconnected():
                return Response(status_code=204)
            found = await run_in_threadpool(news)
        conversation, messages = found
        shown = [{"id": m["id"], "role": m["role"], "text": m["text"], "created_at": m["created_at"],
                  **({"author": m.get("author")} if m["role"] == "staff" else {}),
                  **({"route": m.get("route")} if m["role"] == "bot" else {})}
                 for m in messages if m["role"] in ("customer", "bot", "staff", "system")]
        return {"conversation_id": conversation_id, "owner": conversation["owner"], "messages": shown,
                "after": messages[-1]["id"] if messages else int(after), "more": len(messages) == POLLED_AT_MOST}

    app.state.draining = False  # set on SIGTERM (app.py): readiness fails while requests still get answers

    @app.get("/api/ready", include_in_schema=False)
    def ready():
        """For a load balancer: 200 when this replica should get traffic, else 503 with the reasons."""
        problems = (["shutting down"] if app.state.draining else []) + engine.readiness()
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=503 if problems else 200)

    @app.get("/api/health", include_in_schema=False)
    def health(request: Request):
        """Liveness for anyone: the status and the serving version. The why of a degraded status, the
        runtimes and the training run only for the machine itself (a monitor on the host, the proxy
        in front when forwarded_allow_ips is not set) or an admin's session: nothing internal is
        shown to the internet."""
        classifier = engine.bot.classifier
        brief = {"status": "degraded" if engine.model_problem else "ok",
                 "model_version": classifier.version if classifier else None}
        if client_address(request) not in LOCAL and session_user(request, "admin") is None:
            return brief
        job = retrainer.running()
        return {**brief, "problem": engine.model_problem,
                "threshold": round(classifier.threshold, 4) if classifier else None,
                "runtime": {"classifier": classifier.runtime_name if classifier else None,
                            "answers": engine.encoder.runtime_name},
                "training": {"job": job["id"], "phase": job["phase"]} if job else None}

    app.include_router(widget_routes(settings=settings, shop_name=engine.store.shop().get("shop_name", "our shop")))
    install_docs(app, title="csbot")  # both before the chat page's mount at the root, which would take every path

    # Gradio awaits an async dependency; a plain one would read the store on the event loop.
    async def staff_user(request: Request) -> str | None:
        return await run_in_threadpool(session_user, request, "staff")

    async def admin_user(request: Request) -> str | None:
        return await run_in_threadpool(session_user, request, "admin")

    quiet = dict(show_error=False, enable_monitoring=False, run_history=False, max_file_size=MAX_FILE_BYTES)
    staff = build_staff(engine, accounts)
    staff.queue(default_concurrency_limit=4, max_size=64)
    gr.mount_gradio_app(app, staff, path="/staff", auth_dependency=staff_user, footer_links=[], head=SESSION_WATCH,
                        **quiet)
    admin = build_admin(engine, accounts, retrainer)
    admin.queue(default_concurrency_limit=2, max_size=32)
    gr.mount_gradio_app(app, admin, path="/admin", auth_dependency=admin_user, footer_links=[], head=SESSION_WATCH,
                        **quiet)
    chat = build_chat(engine, limits)
    chat.queue(default_concurrency_limit=16, max_size=512)
    gr.mount_gradio_app(app, chat, path="", footer_links=[], **{**quiet, "max_file_size": "64kb"})
    # Added last, so it is the outermost layer: every response, the guard's redirects included, crosses it.
    app.add_middleware(Boundary, limits=BodyLimits(uploads=MAX_FILE_BYTES), cors_origins=settings.allowed_origins,
                       body_seconds=settings.body_timeout_seconds)
    return app

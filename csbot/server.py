"""The web server: one FastAPI app holding the three pages and the JSON chat API.

    /            the customer chat (no login)                      ui/chat.py
    /staff       support staff: inbox, live chats, answers, ...    ui/staff/    (login: staff or admin)
    /admin       admins: retraining, reports, versions, users      ui/admin.py  (login: admin)
    POST /api/chat   {"conversation_id": ..., "message": ...} -> the reply and its route as JSON
    GET  /api/health the serving model and whether a training run is going

Each page is its own Gradio app with its own login (Gradio's cookie is per mounted app), and
every staff/admin handler checks the caller's role again on the server (ui/common.py), since a
Gradio app's events can all be called through its API. Login attempts are rate-limited per
client address here, in front of Gradio; chat messages per conversation and per address, with
a polite reply. The client address is the TCP peer: behind a reverse proxy, have the proxy
limit too (we do not trust X-Forwarded-For by default).

This module wires; the bot decides (bot.py), the store keeps (store.py).
"""

from __future__ import annotations

import json
import re
import time

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from csbot.errors import CsbotError, DataError, RateLimited
from csbot.ratelimit import RateLimiter

MAX_BODY_BYTES = 256 * 1024
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ChatLimits:
    """Chat messages per conversation and per client address, a minute each (settings)."""

    def __init__(self, *, per_conversation: int, per_client: int, clock=time.monotonic):
        self.conversation = RateLimiter(per_conversation, 60, clock=clock)
        self.client = RateLimiter(per_client, 60, clock=clock)

    def started(self, conversation_id: str) -> None:
        """Count a new conversation's first message against it (it had no id when it was checked)."""
        self.conversation.hit(f"c:{conversation_id}")

    def check(self, conversation_key: str | None, client: str) -> None:
        """Raise RateLimited with a polite message when either limit is reached."""
        wait = self.conversation.hit(f"c:{conversation_key}") if conversation_key else 0.0
        wait = wait or self.client.hit(f"ip:{client}")
        if wait:
            seconds = max(1, round(wait))
            raise RateLimited(f"You're sending messages faster than I can keep up with. Please wait about "
                              f"{seconds} second{'s' if seconds != 1 else ''} and send it again.", retry_after=seconds)


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(engine, *, accounts, retrainer, limits: ChatLimits | None = None) -> FastAPI:
    """The whole web app for one csbot home. `engine` serves, `accounts` log in, `retrainer` trains."""
    from csbot.ui.admin import build_admin
    from csbot.ui.chat import build_chat
    from csbot.ui.staff import build_staff

    settings = engine.settings
    limits = limits or ChatLimits(per_conversation=settings.chat_per_minute, per_client=settings.chat_ip_per_minute)
    logins = RateLimiter(settings.login_per_minute, 60)
    app = FastAPI(title="csbot", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def limit_logins(request: Request, call_next):
        if request.method == "POST" and request.url.path.startswith("/gradio_api/upload"):
            return _error(403, "the chat page takes no file uploads")  # only /staff has an upload (import)
        if request.method == "POST" and request.url.path.rstrip("/").endswith("/login"):
            wait = logins.hit(request.client.host if request.client else "unknown")
            if wait:
                return _error(429, f"Too many login attempts from this address; try again in {round(wait)} s.",
                              retry_after=round(wait))
        return await call_next(request)

    @app.post("/api/chat")
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
        unknown = sorted(set(payload) - {"conversation_id", "message"})
        if unknown:
            return _error(400, f"unknown fields {unknown}; send only conversation_id and message")
        cid = payload.get("conversation_id")
        if cid is not None and not (isinstance(cid, str) and _ID.fullmatch(cid)):
            return _error(400, "conversation_id must be the id a previous reply returned (letters, digits, - "
                               "and _), or null to start a conversation")
        if not isinstance(payload.get("message"), str):
            return _error(400, "message must be a string with the customer's text")
        client = request.client.host if request.client else "unknown"

        def answer():  # in a worker thread: the store and the model must not block the event loop
            if cid is not None and not engine.store.messages_after(cid, 0):
                return None
            limits.check(cid, client)
            return engine.bot.respond(payload["message"], cid, channel="api")
        try:
            reply = await run_in_threadpool(answer)
            if reply is None:
                return _error(404, f"no conversation {cid!r}; send null to start a new one")
        except RateLimited as exc:
            return JSONResponse({"error": str(exc), "retry_after": exc.retry_after}, status_code=429,
                                headers={"Retry-After": str(int(exc.retry_after))})
        except DataError as exc:
            return _error(400, str(exc))
        except CsbotError as exc:
            return _error(422, str(exc))
        if cid is None:
            limits.started(reply.conversation_id)
        return {"conversation_id": reply.conversation_id, "reply": reply.text, "route": reply.route,
                "intent": reply.intent, "confidence": reply.confidence, "answer_id": reply.answer_id,
                "handoff": reply.handoff, "message_id": reply.message_id, "model_version": reply.model_version}

    @app.get("/api/health")
    def health():
        job = retrainer.running()
        classifier = engine.bot.classifier
        return {"status": "ok", "model_version": classifier.version if classifier else None,
                "training": {"job": job["id"], "phase": job["phase"]} if job else None}

    # Gradio awaits an async auth function; a plain one would run scrypt on the event loop and
    # stall every page and the API for each login attempt.
    async def staff_login(name: str, password: str) -> bool:
        return await run_in_threadpool(accounts.check, name, password)

    async def admin_login(name: str, password: str) -> bool:
        return await run_in_threadpool(lambda: accounts.check(name, password) and accounts.role(name) == "admin")

    quiet = dict(show_error=False, enable_monitoring=False, run_history=False, max_file_size="5mb")
    staff = build_staff(engine, accounts)
    staff.queue(default_concurrency_limit=4, max_size=64)
    gr.mount_gradio_app(app, staff, path="/staff", auth=staff_login, footer_links=[],
                        auth_message="csbot staff: log in with your staff or admin account", **quiet)
    admin = build_admin(engine, accounts, retrainer)
    admin.queue(default_concurrency_limit=2, max_size=32)
    gr.mount_gradio_app(app, admin, path="/admin", auth=admin_login, footer_links=[],
                        auth_message="csbot admin: log in with an admin account", **quiet)
    chat = build_chat(engine, limits)
    chat.queue(default_concurrency_limit=16, max_size=512)
    gr.mount_gradio_app(app, chat, path="", footer_links=[], **{**quiet, "max_file_size": "64kb"})
    return app

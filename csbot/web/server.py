"""The web server: one FastAPI app holding the three pages, the login, and the JSON chat API.

    /                the customer chat (no login)                      chat.py
    /staff           support staff: inbox, live chats, answers, ...    staff/   (staff or admin)
    /admin           admins: retraining, reports, versions, users      admin/   (admin)
    GET/POST /login  our login form; GET /logout ends the session
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

import functools
import hmac
import html
import json
import logging
import secrets
import time
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from csbot.errors import AccessDenied, CsbotError, DataError, RateLimited, ReplyFailed
from csbot.importer import MAX_FILE_BYTES
from csbot.language import Words
from csbot.service.ratelimit import RateLimiter
from csbot.store import client_key, valid_conversation_id
from csbot.web.boundary import BodyLimits, Boundary

log = logging.getLogger("csbot.web.server")
MAX_BODY_BYTES = BodyLimits.chat_api
COOKIE = "csbot_session"
CSRF = "csbot_login"  # the login form's double-submit token (login_page)
PAGES = {"/staff/": "staff", "/admin/": "admin"}  # where a login may lead, and the role each needs


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

    def check_handoff(self, client: str) -> None:
        """Raise RateLimited, politely, when this client asked for a person too often this hour: a
        stranger cannot fill the staff inbox with hand-offs (each one is a new conversation)."""
        if self.handoffs.hit(f"h:{client}"):
            raise RateLimited(self.words["chat.handoff_limit"], retry_after=60)

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


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login_page(*, next_path: str, words: Words, message: str = "", status: int = 200,
               secure: bool = False) -> HTMLResponse:
    """Our login form in `words` (the staff language's `login` section): plain HTML, no script,
    nothing fetched from elsewhere. Each form carries a fresh token that the login must send back
    beside the same token in a SameSite=Strict cookie (a double submit): another site cannot post
    a login, so nobody is logged in to someone else's account without knowing it."""
    e = html.escape
    token = secrets.token_urlsafe(24)
    role = words[f"login.{PAGES.get(next_path, 'staff')}"]  # login.staff or login.admin
    note = f'<p role="alert" class="note">{e(message)}</p>' if message else ""
    body = f"""<!doctype html><html lang="{e(words.language)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(words["login.title"])}</title>
<style>body{{font-family:system-ui,sans-serif;background:#f6f6f4;display:flex;justify-content:center;padding-top:10vh}}
form{{background:#fff;padding:2em;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:18em}}
label{{display:block;margin:.8em 0 .2em}}input{{width:100%;padding:.5em;box-sizing:border-box}}
button{{margin-top:1.2em;padding:.6em 1.2em}}.note{{color:#a00}}</style></head><body>
<form method="post" action="/login"><h1>{e(words.say("login.heading", role=role))}</h1>
<p>{e(words.say("login.intro", role=role))}</p>{note}
<input type="hidden" name="next" value="{e(next_path)}"><input type="hidden" name="csrf" value="{token}">
<label for="username">{e(words["login.username"])}</label><input id="username" name="username" autocomplete="username" required>
<label for="password">{e(words["login.password"])}</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">{e(words["login.submit"])}</button></form></body></html>"""
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(CSRF, token, path="/login", httponly=True, samesite="strict", secure=secure)
    return response


def _next_path(raw: object) -> str:
    """Only our own pages: a login never sends anyone elsewhere. Example: "//evil.example" -> "/staff/" """
    path = raw if isinstance(raw, str) else ""
    path = path if path.endswith("/") else path + "/"
    return path if path in PAGES else "/staff/"


def create_app(engine, *, accounts, retrainer, limits: ChatLimits | None = None) -> FastAPI:
    """The whole web app for one csbot home. `engine` serves, `accounts` log in, `retrainer` trains."""
    from csbot.web.admin import build_admin
    from csbot.web.chat import build_chat
    from csbot.web.staff import build_staff

    settings = engine.settings
    limits = limits or ChatLimits(per_conversation=settings.chat_per_minute, per_client=settings.chat_ip_per_minute,
                                  handoffs_per_hour=settings.handoff_ip_per_hour, words=Words.load(settings.language))
    staff_words = Words.load(settings.staff_language)  # the login form's, as the staff and admin pages'
    form_page = functools.partial(login_page, words=staff_words, secure=settings.secure_cookies)
    app = FastAPI(title="csbot", docs_url=None, redoc_url=None, openapi_url=None)

    def session_user(request: Request, role: str) -> str | None:
        return accounts.session_user(request.cookies.get(COOKIE), role=role)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if request.method == "POST" and path.startswith("/gradio_api/upload"):
            return _error(403, "the chat page takes no file uploads")  # only /staff has an upload (import)
        if path.rstrip("/").endswith(("/login", "/logout")) and path.rstrip("/") not in ("/login", "/logout"):
            # Gradio's own login routes under a mount: ours replace them
            return RedirectResponse("/logout" if path.rstrip("/").endswith("/logout") else "/login", status_code=303)
        page = path if path.endswith("/") else path + "/"
        if request.method == "GET" and page in PAGES:
            if await run_in_threadpool(session_user, request, PAGES[page]) is None:
                return RedirectResponse(f"/login?next={quote(page)}", status_code=303)
        response = await call_next(request)
        if app.state.draining:  # no keep-alive connection left open to a replica about to close them
            response.headers["connection"] = "close"
        return response

    @app.get("/login")
    def login_form(next: str = "/staff/"):
        return form_page(next_path=_next_path(next))

    @app.post("/login")
    async def login(request: Request):
        form = await request.form(max_files=0, max_fields=8)  # the form has three fields; nothing is spooled
        next_path = _next_path(form.get("next"))
        sent, kept = form.get("csrf"), request.cookies.get(CSRF)
        if not isinstance(sent, str) or not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
            return form_page(next_path=next_path, message=staff_words["login.expired"], status=403)
        name, password = form.get("username"), form.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            return form_page(next_path=next_path, message=staff_words["login.missing"], status=400)
        try:
            token = await run_in_threadpool(accounts.login, name.strip(), password, address=_client(request),
                                            agent=request.headers.get("user-agent", ""), role=PAGES[next_path])
        except RateLimited as exc:
            return form_page(next_path=next_path, status=429,
                             message=staff_words.say("login.too_many", seconds=round(exc.retry_after)))
        except AccessDenied as exc:  # its reason is the account check's own words (auth.py)
            return form_page(next_path=next_path, status=401, message=staff_words.say("login.refused", reason=exc))
        if request.cookies.get(COOKIE):  # this browser's previous session ends with the new login
            await run_in_threadpool(accounts.logout, request.cookies.get(COOKIE), address=_client(request))
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(accounts.session_max_seconds), path="/", httponly=True,
                            samesite="lax", secure=settings.secure_cookies)
        return response

    @app.get("/logout")
    @app.post("/logout")
    async def logout(request: Request):
        await run_in_threadpool(accounts.logout, request.cookies.get(COOKIE), address=_client(request))
        response = form_page(next_path="/staff/", message=staff_words["login.logged_out"])
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
        return response

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
        if cid is not None and valid_conversation_id(cid) is None:
            return _error(400, "conversation_id must be the id a previous reply returned (letters, digits, - "
                               "and _), or null to start a conversation")
        if not isinstance(payload.get("message"), str):
            return _error(400, "message must be a string with the customer's text")
        client = _client(request)

        def answer():  # in a worker thread: the store and the model must not block the event loop
            if cid is not None and not engine.store.has_messages(cid):
                return None
            limits.check(cid, client)
            return engine.bot.respond(payload["message"], cid, channel="api", client=client_key(client))
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
        except ReplyFailed as exc:  # the message is stored and in the inbox; the traceback is in the log
            return _error(500, str(exc), error_id=exc.error_id, conversation_id=exc.conversation_id)
        except Exception:  # before the message was stored (the store itself failing)
            error_id = f"{time.time_ns():x}"[-10:]
            log.exception("error %s in /api/chat", error_id)
            return _error(500, f"something went wrong on our side (error {error_id}); please send it again",
                          error_id=error_id)  # what went wrong is in the log under that id, not here
        if cid is None:
            limits.started(reply.conversation_id)
        return {"conversation_id": reply.conversation_id, "reply": reply.text, "route": reply.route,
                "intent": reply.intent, "confidence": reply.confidence, "answer_id": reply.answer_id,
                "handoff": reply.handoff, "message_id": reply.message_id, "model_version": reply.model_version}

    app.state.draining = False  # set on SIGTERM (app.py): readiness fails while requests still get answers

    @app.get("/api/ready")
    def ready():
        """For a load balancer: 200 when this replica should get traffic, else 503 with the reasons."""
        problems = (["shutting down"] if app.state.draining else []) + engine.readiness()
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=503 if problems else 200)

    @app.get("/api/health")
    def health():
        job = retrainer.running()
        classifier = engine.bot.classifier
        return {"status": "degraded" if engine.model_problem else "ok",
                "model_version": classifier.version if classifier else None, "problem": engine.model_problem,
                "threshold": round(classifier.threshold, 4) if classifier else None,
                "runtime": {"classifier": classifier.runtime_name if classifier else None,
                            "answers": engine.encoder.runtime_name},
                "training": {"job": job["id"], "phase": job["phase"]} if job else None}

    # Gradio awaits an async dependency; a plain one would read the store on the event loop.
    async def staff_user(request: Request) -> str | None:
        return await run_in_threadpool(session_user, request, "staff")

    async def admin_user(request: Request) -> str | None:
        return await run_in_threadpool(session_user, request, "admin")

    quiet = dict(show_error=False, enable_monitoring=False, run_history=False, max_file_size=MAX_FILE_BYTES)
    staff = build_staff(engine, accounts)
    staff.queue(default_concurrency_limit=4, max_size=64)
    gr.mount_gradio_app(app, staff, path="/staff", auth_dependency=staff_user, footer_links=[], **quiet)
    admin = build_admin(engine, accounts, retrainer)
    admin.queue(default_concurrency_limit=2, max_size=32)
    gr.mount_gradio_app(app, admin, path="/admin", auth_dependency=admin_user, footer_links=[], **quiet)
    chat = build_chat(engine, limits)
    chat.queue(default_concurrency_limit=16, max_size=512)
    gr.mount_gradio_app(app, chat, path="", footer_links=[], **{**quiet, "max_file_size": "64kb"})
    # Added last, so it is the outermost layer: every response, the guard's redirects included, crosses it.
    app.add_middleware(Boundary, limits=BodyLimits(uploads=MAX_FILE_BYTES), cors_origins=settings.allowed_origins)
    return app

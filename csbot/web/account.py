"""The account pages: logging in and out, two-factor sign-in, and the session check the staff and
admin pages make. Plain HTML forms with no script, nothing fetched from elsewhere, in the staff
language, and a strict Content-Security-Policy.

    GET/POST /login                the login form (name, password, and the app's code when on)
    GET /logout, POST /logout      "Log out?" and the logout itself: a link or another site's
                                   request cannot log anyone out, only the form can
    GET/POST /account/two-factor   turn two-factor sign-in on (QR code), make new recovery codes,
                                   turn it off
    GET /api/session               {"seconds_left": N} before the session idles out; it does not
                                   renew the session (the pages' watcher asks it: common.py)

Every form carries a fresh token that its POST must send back beside the same token in a
SameSite=Strict cookie (a double submit): another site cannot post it. A successful login leaves
a long-lived device cookie (HttpOnly, only sent to /login), so the next login from this browser
is not slowed down by other people's failures on the same account (auth.py).
"""

from __future__ import annotations

import functools
import hmac
import html
import math
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from csbot.errors import AccessDenied, AccountSlowed, DataError, RateLimited
from csbot.language import Words
from csbot.service.auth import SESSION_COOKIE
from csbot.service.twofactor import qr_svg, secret_of
from csbot.web.common import client_address

PAGES = {"/staff/": "staff", "/admin/": "admin"}  # where a login may lead, and the role each needs
DEVICE = "csbot_device"  # this browser logged in before (auth.remember_device)
DEVICE_DAYS = 400  # browsers keep a cookie at most this long
TWO_FACTOR = "/account/two-factor"
# Our own pages load nothing, run nothing, and post only to ourselves.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
_STYLE = """body{font-family:system-ui,sans-serif;background:#f6f6f4;display:flex;justify-content:center;padding-top:8vh}
main{background:#fff;padding:2em;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:18em;max-width:32em}
label{display:block;margin:.8em 0 .2em}input{width:100%;padding:.5em;box-sizing:border-box}
button{margin-top:1.2em;padding:.6em 1.2em}.note{color:#a00}code,li{font-family:ui-monospace,monospace}
form+form{border-top:1px solid #ddd;margin-top:1.5em}"""


def form_cookie(path: str) -> str:
    """The cookie holding the form token of the form posted to `path`.
    Example: form_cookie("/login") -> "csbot_login"; form_cookie("/account/two-factor") -> "csbot_form_account" """
    return "csbot_login" if path == "/login" else "csbot_form_" + path.strip("/").split("/")[0]


def page(words: Words, title: str, body: str, *, status: int = 200, form_path: str = "",
         secure: bool = False) -> tuple[HTMLResponse, str]:
    """An account page around `body` (HTML; its forms' `{csrf}` is the fresh form token), and that token."""
    e = html.escape
    token = secrets.token_urlsafe(24)
    response = HTMLResponse(
        f"""<!doctype html><html lang="{e(words.language)}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>
<style>{_STYLE}</style></head><body><main>{body.replace("{csrf}", token)}</main></body></html>""",
        status_code=status, headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})
    if form_path:
        response.set_cookie(form_cookie(form_path), token, path=form_path, httponly=True, samesite="strict",
                            secure=secure)
    return response, token


def login_page(*, next_path: str, words: Words, message: str = "", status: int = 200,
               secure: bool = False) -> HTMLResponse:
    """Our login form in `words` (the staff language's `login` section)."""
    e = html.escape
    role = words[f"login.{PAGES.get(next_path, 'staff')}"]  # login.staff or login.admin
    body = f"""<form method="post" action="/login"><h1>{e(words.say("login.heading", role=role))}</h1>
<p>{e(words.say("login.intro", role=role))}</p>{_note(message)}
<input type="hidden" name="next" value="{e(next_path)}"><input type="hidden" name="csrf" value="{{csrf}}">
<label for="username">{e(words["login.username"])}</label><input id="username" name="username" autocomplete="username" required>
<label for="password">{e(words["login.password"])}</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="code">{e(words["login.code"])}</label><input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" maxlength="12">
<button type="submit">{e(words["login.submit"])}</button></form>"""
    return page(words, words["login.title"], body, status=status, form_path="/login", secure=secure)[0]


def _note(message: str) -> str:
    return f'<p role="alert" class="note">{html.escape(message)}</p>' if message else ""


def _next_path(raw: object) -> str:
    """Only our own pages: a login never sends anyone elsewhere. Example: "//evil.example" -> "/staff/" """
    path = raw if isinstance(raw, str) else ""
    path = path if path.endswith("/") else path + "/"
    return path if path in PAGES else "/staff/"


def _token_ok(request: Request, form, path: str) -> bool:
    sent, kept = form.get("csrf"), request.cookies.get(form_cookie(path))
    return isinstance(sent, str) and bool(kept) and hmac.compare_digest(sent.encode(), kept.encode())


def account_routes(*, accounts, words: Words, secure: bool) -> APIRouter:
    """The routes above, for create_app to include. `words` are the staff language's."""
    router = APIRouter()
    e, w = html.escape, words.__getitem__
    form_page = functools.partial(login_page, words=words, secure=secure)
    two_factor = accounts.two_factor

    def user_of(request: Request, role: str = "staff") -> str | None:
        return accounts.session_user(request.cookies.get(SESSION_COOKIE), role=role)

    @router.get("/login")
    def login_form(next: str = "/staff/"):
        return form_page(next_path=_next_path(next))

    @router.post("/login")
    async def login(request: Request):
        form = await request.form(max_files=0, max_fields=8)  # the form has five fields; nothing is spooled
        next_path = _next_path(form.get("next"))
        if not _token_ok(request, form, "/login"):
            return form_page(next_path=next_path, message=w("login.expired"), status=403)
        name, password, code = form.get("username"), form.get("password"), form.get("code") or ""
        if not isinstance(name, str) or not isinstance(password, str) or not isinstance(code, str):
            return form_page(next_path=next_path, message=w("login.missing"), status=400)
        device = request.cookies.get(DEVICE)
        try:
            token = await run_in_threadpool(accounts.login, name.strip(), password, address=client_address(request),
                                            agent=request.headers.get("user-agent", ""), role=PAGES[next_path],
                                            device=device, code=code)
        except AccountSlowed as exc:
            return form_page(next_path=next_path, status=429, message=words.say("login.refused", reason=exc))
        except RateLimited as exc:
            return form_page(next_path=next_path, status=429,
                             message=words.say("login.too_many", seconds=round(exc.retry_after)))
        except AccessDenied as exc:  # its reason is the account check's own words (auth.py)
            return form_page(next_path=next_path, status=401, message=words.say("login.refused", reason=exc))
        if request.cookies.get(SESSION_COOKIE):  # this browser's previous session ends with the new login
            await run_in_threadpool(accounts.logout, request.cookies.get(SESSION_COOKIE), address=client_address(request))
        device = await run_in_threadpool(accounts.remember_device, name.strip(), device)
        role = PAGES[next_path]
        if role == "admin" and await run_in_threadpool(two_factor.missing, name.strip()):
            next_path = f"{TWO_FACTOR}?next=/admin/"  # required and not on yet: set it up first
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(SESSION_COOKIE, token, max_age=int(accounts.session_max_seconds), path="/",
                            httponly=True, samesite="lax", secure=secure)
        response.set_cookie(DEVICE, device, max_age=DEVICE_DAYS * 86400, path="/login", httponly=True,
                            samesite="strict", secure=secure)
        return response

    def logged_out(message: str = "") -> HTMLResponse:
        response = form_page(next_path="/staff/", message=message or w("login.logged_out"))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
        return response

    def logout_form(message: str = "", status: int = 200) -> HTMLResponse:
        body = f"""<form method="post" action="/logout"><h1>{e(w("login.log_out_heading"))}</h1>{_note(message)}
<input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">{e(w("login.log_out"))}</button></form>"""
        return page(words, w("login.log_out_heading"), body, status=status, form_path="/logout", secure=secure)[0]

    @router.get("/logout")
    def logout_page(request: Request):
        """A question, not the logout: a link (or an image on another site) cannot log anyone out."""
        return logout_form() if request.cookies.get(SESSION_COOKIE) else logged_out()

    @router.post("/logout")
    async def logout(request: Request):
        form = await request.form(max_files=0, max_fields=4)
        if not _token_ok(request, form, "/logout"):
            return logout_form(w("login.expired"), status=403)
        await run_in_threadpool(accounts.logout, request.cookies.get(SESSION_COOKIE), address=client_address(request))
        return logged_out()

    @router.get("/api/session")
    def session(request: Request):
        left = accounts.session_left(request.cookies.get(SESSION_COOKIE))
        return JSONResponse({"seconds_left": math.ceil(left)}, status_code=200 if left > 0 else 401,
                            headers={"Cache-Control": "no-store"})

    def two_factor_page(user: str, *, next_path: str, message: str = "", codes: list[str] | None = None,
                        status: int = 200) -> HTMLResponse:
        account = accounts.store.user(user)
        parts = [f"<h1>{e(w('login.two_factor'))}</h1>", _note(message)]
        if two_factor.missing(user):
            parts.append(f"<p>{e(w('login.two_factor_required'))}</p>")
        hidden = f'<input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="next" value="{e(next_path)}">'
        code = (f'<label for="code{{n}}">{e(w("login.two_factor_code"))}</label><input id="code{{n}}" name="code" '
                'autocomplete="one-time-code" required maxlength="12">')
        if codes:
            parts.append(f"<p>{e(w('login.two_factor_codes'))}</p><ul>{''.join(f'<li>{c}</li>' for c in codes)}</ul>")
        if two_factor.enabled(account):
            parts.append(f"<p>{e(words.say('login.two_factor_on', user=user, left=two_factor.codes_left(user)))}</p>"
                         f'<p><a href="{e(next_path)}">{e(w("login.two_factor_continue"))}</a></p>')
            parts.append(f'<form method="post" action="{TWO_FACTOR}">{hidden}<input type="hidden" name="action" '
                         f'value="codes">{code.format(n=1)}<button type="submit">{e(w("login.two_factor_new_codes"))}'
                         "</button></form>")
            if not (two_factor.required_for_admins and account["role"] == "admin"):
                parts.append(f'<form method="post" action="{TWO_FACTOR}">{hidden}<input type="hidden" name="action" '
                             f'value="off">{code.format(n=2)}<button type="submit">{e(w("login.two_factor_off"))}'
                             "</button></form>")
        else:
            uri = two_factor.begin(user)
            parts.append(f"<p>{e(w('login.two_factor_intro'))}</p>{qr_svg(uri)}"
                         f"<p>{e(words.say('login.two_factor_key', key=secret_of(uri)))}</p>"
                         f'<form method="post" action="{TWO_FACTOR}">{hidden}<input type="hidden" name="action" '
                         f'value="on">{code.format(n=1)}<button type="submit">{e(w("login.two_factor_turn_on"))}'
                         "</button></form>")
        return page(words, w("login.two_factor"), "".join(parts), status=status, form_path=TWO_FACTOR,
                    secure=secure)[0]

    def signed_in(request: Request, next_path: str) -> str | None:
        return user_of(request, PAGES[next_path]) or user_of(request)

    @router.get(TWO_FACTOR)
    def two_factor_form(request: Request, next: str = "/staff/"):
        next_path = _next_path(next)
        user = signed_in(request, next_path)
        if user is None:
            return RedirectResponse(f"/login?next={next_path}", status_code=303)
        return two_factor_page(user, next_path=next_path)

    @router.post(TWO_FACTOR)
    async def two_factor_change(request: Request):
        form = await request.form(max_files=0, max_fields=6)
        next_path = _next_path(form.get("next"))
        user = await run_in_threadpool(signed_in, request, next_path)
        if user is None:
            return RedirectResponse(f"/login?next={next_path}", status_code=303)
        if not _token_ok(request, form, TWO_FACTOR):
            return await run_in_threadpool(lambda: two_factor_page(user, next_path=next_path, status=403,
                                                                   message=w("login.expired")))
        action, code = form.get("action"), form.get("code")
        code = code if isinstance(code, str) else ""

        def change() -> HTMLResponse:
            try:
                if action == "on":
                    return two_factor_page(user, next_path=next_path, codes=two_factor.confirm(user, code))
                if action == "codes":
                    return two_factor_page(user, next_path=next_path, codes=two_factor.new_recovery_codes(user, code))
                if action == "off":
                    two_factor.turn_off(user, code, role=accounts.role(user) or "staff")
                    return two_factor_page(user, next_path=next_path, message=w("login.two_factor_is_off"))
                raise DataError(f"unknown action {action!r:.20}; use the page's buttons")
            except DataError as exc:
                return two_factor_page(user, next_path=next_path, message=str(exc), status=400)
        return await run_in_threadpool(change)

    return router

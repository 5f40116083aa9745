"""What the staff and admin pages share: the role check every handler makes, and how errors show.

Hiding a component protects nothing in Gradio (every event of a Blocks can be called through
its API), so each privileged handler is wrapped in `guarded(accounts, role)`: it reads the
logged-in user from `gr.Request` and refuses anonymous callers and lower roles on the server,
before the handler runs. A CsbotError becomes a `gr.Error` with its message (the page shows it
in a toast); other exceptions are bugs and keep their traceback in the server log.

This module holds no business logic: handlers call one engine/accounts/retrainer method each.
"""

from __future__ import annotations

import functools
import inspect
import re

import gradio as gr

from csbot.errors import AccessDenied, CsbotError
from csbot.service.auth import SESSION_COOKIE


def guarded(accounts, role: str, *, renew: bool = True):
    """Decorate a handler whose last parameter is `request: gr.Request`: it runs only for a logged-in
    user with `role` (or higher), and gets that user's name as `user=`. A call counts as the user's
    action and keeps the session from idling out, unless `renew` is False: handlers a gr.Timer
    calls pass False, so an unattended page is logged out after session_idle_minutes.

    Example: @guarded(accounts, "admin") def start(epochs, request: gr.Request, *, user): ...
    """
    def wrap(handler):
        signature = inspect.signature(handler)
        public = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "user"])

        @functools.wraps(handler)
        def run(*args, **kwargs):
            request = kwargs.get("request")
            if request is None:
                request = next((a for a in args if isinstance(a, gr.Request)), None)
            try:
                user = accounts.require(getattr(request, "username", None), role)
                if renew:
                    accounts.session_user(_cookies(request).get(SESSION_COOKIE), role=role)
                return handler(*args, user=user, **kwargs)
            except AccessDenied as exc:
                raise gr.Error(f"Not allowed: {exc}") from None
            except CsbotError as exc:
                raise gr.Error(str(exc)) from None
        run.__signature__ = public  # Gradio reads the parameters to pass gr.Request in
        return run
    return wrap


def client_address(request) -> str:
    """The client's address, as uvicorn gives it (the TCP peer, or X-Forwarded-For from a listed
    proxy: server.py), from a Starlette request or a gr.Request. Example: -> "203.0.113.9" """
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def _cookies(request) -> dict:
    try:
        return dict(request.cookies) if request is not None else {}
    except (AttributeError, KeyError, TypeError):  # a gr.Request made without an HTTP request (a test's)
        return {}


def page_header(title: str, log_out: str, two_factor: str = "") -> None:
    """The staff and admin pages' top row: the page's title, a link to the two-factor sign-in page
    (when `two_factor` names it) and a log-out button (inside gr.Blocks)."""
    with gr.Row():
        gr.Markdown(f"## {title}")
        if two_factor:
            gr.Button(two_factor, link="/account/two-factor", size="sm", scale=0)
        gr.Button(log_out, link="/logout", size="sm", scale=0)


# In the staff and admin pages' <head>: ask /api/session (which does not renew the session) when it
# idles out, and go to the login form then, instead of leaving a page whose every call is refused.
SESSION_WATCH = """<script>
(function watch() {
  fetch("/api/session", {credentials: "same-origin", cache: "no-store"}).then(function (r) {
    return r.ok ? r.json() : {seconds_left: 0};
  }).then(function (s) {
    if (s.seconds_left <= 0) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname.split("/").slice(0, 2).join("/") + "/"));
    } else {
      setTimeout(watch, Math.min(30, s.seconds_left + 1) * 1000);
    }
  }, function () { setTimeout(watch, 10000); });
})();
</script>"""


def as_text(text: str | None) -> str:
    """Customer-written text for a Markdown/HTML component: escaped, so it shows, never runs.

    Example: as_text("<b>hi</b> [x](javascript:1) $$x$$") -> "&#60;b&#62;hi&#60;/b&#62; &#91;x&#93;(javascript:1) &#36;&#36;x&#36;&#36;"
    (a URL's "://" and "www." broken too, so nothing turns into a link)
    """
    escaped = (text or "").translate(_ENTITIES)
    return _LINKABLE.sub(lambda m: m.group(0).replace(":", "&#58;").replace(".", "&#46;"), escaped)


# HTML's specials, and Markdown's and LaTeX's marks, as entities: shown, never read as markup
_ENTITIES = {ord(c): f"&#{ord(c)};" for c in "&<>\"'\\[]`*_~$#|"}
_LINKABLE = re.compile(r"(?i)[a-z][a-z0-9+.-]*://|\bwww\.")  # what a Markdown renderer would turn into a link

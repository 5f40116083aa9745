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


def guarded(accounts, role: str):
    """Decorate a handler whose last parameter is `request: gr.Request`: it runs only for a logged-in
    user with `role` (or higher), and gets that user's name as `user=`.

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
                return handler(*args, user=user, **kwargs)
            except AccessDenied as exc:
                raise gr.Error(f"Not allowed: {exc}") from None
            except CsbotError as exc:
                raise gr.Error(str(exc)) from None
        run.__signature__ = public  # Gradio reads the parameters to pass gr.Request in
        return run
    return wrap


def page_header(title: str, log_out: str) -> None:
    """The staff and admin pages' top row: the page's title and a log-out button (inside gr.Blocks)."""
    with gr.Row():
        gr.Markdown(f"## {title}")
        gr.Button(log_out, link="/logout", size="sm", scale=0)


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

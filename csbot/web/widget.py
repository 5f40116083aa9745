"""The website widget: one script tag on the shop's own pages, and the light chat window it frames.

- `GET /widget.js`: the loader (static/widget/widget.js, the shop's colour, corner and launcher
  label filled in). It adds a launcher button and an iframe of `/widget`, keeps the
  conversation's handle in the shop's own localStorage and hands it to the frame by postMessage.
- `GET /widget`: the chat window, a small hand-written page (no Gradio) over the public chat API.
  Its `Content-Security-Policy: frame-ancestors` lists exactly the `widget_origins` setting, and
  an empty setting means `'none'`: no site, never every site. It runs no inline script and talks
  to no other origin than csbot's own.
- `GET /widget/frame.js`, `/widget/frame.css`: its script and style.

The conversation, the bot's words and the routing are the chat API's: the window shows what the
chat page would. This module serves files and headers; it decides nothing about replies.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from csbot.language import Words

STATIC = Path(__file__).resolve().parent / "static" / "widget"
CACHE = "public, max-age=300"  # a changed setting reaches pages within five minutes


def frame_policy(origins: list[str]) -> str:
    """The chat window's CSP: its own scripts, styles and API only; framed by exactly `origins`.

    Example: frame_policy([]) -> "... frame-ancestors 'none'"
             frame_policy(["https://shop.example"]) -> "... frame-ancestors https://shop.example"
    """
    return ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors " + (" ".join(origins) or "'none'"))


def widget_routes(*, settings, shop_name: str) -> APIRouter:
    """The widget's routes for one shop (`settings`: widget_origins, widget_colour, widget_position)."""
    router = APIRouter()
    words = Words.load(settings.language)
    origins = settings.widget_origins.split()
    label = words.say("chat.open_chat", shop_name=shop_name)
    heading = words.say("chat.heading", shop_name=shop_name)
    defaults = {"colour": settings.widget_colour, "position": settings.widget_position, "label": label}
    loader = (STATIC / "widget.js").read_text(encoding="utf-8").replace("__CSBOT_DEFAULTS__", json.dumps(defaults))
    script = (STATIC / "frame.js").read_text(encoding="utf-8")
    style = (STATIC / "frame.css").read_text(encoding="utf-8").replace("__CSBOT_COLOUR__", settings.widget_colour)
    said = {k: words[f"chat.{k}"] for k in ("our_team", "failed", "like", "dislike")}
    e = html.escape
    page = f"""<!doctype html>
<html lang="{e(settings.language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(heading)}</title>
<link rel="stylesheet" href="/widget/frame.css">
</head>
<body data-origins="{e(json.dumps(origins))}" data-words="{e(json.dumps(said, ensure_ascii=False))}">
<header><h1>{e(heading)}</h1>
<button id="close" type="button" aria-label="{e(words['chat.close_chat'])}">&times;</button></header>
<main>
<ol id="log" aria-live="polite" aria-label="{e(words['chat.conversation'])}"></ol>
<form id="ask"><label for="text" class="sr-only">{e(words['chat.your_message'])}</label>
<input id="text" autocomplete="off" maxlength="{settings.max_message_chars}" placeholder="{e(words['chat.placeholder'])}">
<button type="submit">{e(words['chat.send'])}</button></form>
<button id="person" type="button">{e(words['chat.person'])}</button>
</main>
<script src="/widget/frame.js"></script>
</body>
</html>
"""

    @router.get("/widget.js", include_in_schema=False)
    def widget_js() -> Response:
        return Response(loader, media_type="text/javascript", headers={"cache-control": CACHE})

    @router.get("/widget", include_in_schema=False)
    def widget_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"content-security-policy": frame_policy(origins), "cache-control": CACHE})

    @router.get("/widget/frame.js", include_in_schema=False)
    def frame_js() -> Response:
        return Response(script, media_type="text/javascript", headers={"cache-control": CACHE})

    @router.get("/widget/frame.css", include_in_schema=False)
    def frame_css() -> Response:
        return Response(style, media_type="text/css", headers={"cache-control": CACHE})

    return router

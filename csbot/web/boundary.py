"""What every request crosses before any route sees it: a body limit, the cross-origin policy and the
security headers. One ASGI middleware, `Boundary`, around the whole app.

- **Bodies are bounded before they are parsed.** Each path has a limit (`BodyLimits`: the staff
  page's uploads their own, the chat API 256 KB, everything else 1 MB). A declared Content-Length
  over it is refused with 413 before a byte is read; a body sent without one (chunked) is counted
  as it arrives and cut off at the limit, so no route, Gradio's included, ever holds more.
- **Slow clients are cut off**: a body that stops arriving for `body_timeout_seconds` gets 408,
  and (with `slow_client_protocol` as uvicorn's protocol) a connection whose request headers are
  not all in within `header_timeout_seconds` is closed, so trickling bytes holds nothing open.
- **No cross-site reads.** Browsers may read a response from another origin only if it says so
  (CORS). Gradio's mounts echo any Origin with credentials; this strips every such header unless
  the origin is in the `cors_origins` setting *and* the path is the JSON chat API, and then never
  with credentials (the API needs no cookie). A preflight from any other origin is refused. Staff
  and admin pages are never readable from another origin, whatever the setting says.
- **No framing of the staff and admin pages** (`X-Frame-Options: DENY`, CSP `frame-ancestors
  'none'` with no plugins and no form posting elsewhere; on the account pages too), and on every
  response `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin`.

This module knows paths and headers only; the routes are server.py's.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

KB, MB = 1024, 1024 * 1024
UNFRAMED = ("/staff", "/admin", "/login", "/logout", "/account")  # pages no other site may put in a frame
CROSS_ORIGIN_PATHS = ("/api/chat",)  # the only responses an allowed origin may read
SECURITY = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
# For the staff and admin pages (Gradio runs inline scripts, so scripts are not limited here; the
# account pages send a strict policy of their own: account.py): no framing, no plugins, no <base>
# or form that sends anything elsewhere.
NO_FRAMES = [(b"x-frame-options", b"DENY"), (b"content-security-policy",
                                              b"frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'")]


@dataclass(frozen=True)
class BodyLimits:
    """The largest body each path takes, the first matching prefix winning.

    Example: BodyLimits(uploads=50 * MB).limit("/staff/gradio_api/upload") -> 52428800;
             .limit("/api/chat") -> 262144; .limit("/login") -> 1048576
    """

    uploads: int = 50 * MB  # the staff page's file uploads (importer.MAX_FILE_BYTES)
    chat_api: int = 256 * KB
    default: int = 1 * MB

    def limit(self, path: str) -> int:
        if path.startswith(("/staff/gradio_api/upload", "/admin/gradio_api/upload")):
            return self.uploads
        if path.startswith("/api/chat"):
            return self.chat_api
        return self.default


class BodyTooLarge(Exception):
    """Raised inside the app when its body passes the limit, to stop whatever was reading it."""


class BodyTooSlow(Exception):
    """Raised inside the app when its body stops arriving for longer than the body timeout."""


def slow_client_protocol(header_seconds: float):
    """uvicorn's h11 protocol class, closing a connection whose request headers are not all in within
    `header_seconds` of it opening or of its previous response: a client that trickles its headers
    (slowloris) cannot hold connections open. uvicorn itself only times out idle keep-alives.
    Example: uvicorn.Config(app, http=slow_client_protocol(10.0))"""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class SlowClients(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def _arm(self) -> None:
            self.loop.call_later(header_seconds, self._headers_late, self.cycle)

        def _headers_late(self, cycle) -> None:
            # still no new request since armed, and not in the middle of answering one
            if self.cycle is cycle and (cycle is None or cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()
    return SlowClients


class Boundary:
    """The ASGI middleware: `Boundary(app, limits=BodyLimits(), cors_origins=frozenset())`."""

    def __init__(self, app, *, limits: BodyLimits, cors_origins: frozenset[str] = frozenset(),
                 body_seconds: float = 15.0):
        self.app, self.limits, self.cors_origins = app, limits, frozenset(o.rstrip("/") for o in cors_origins)
        self.body_seconds = body_seconds  # the longest wait for the next piece of a body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, headers = scope["path"], dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/")
        foreign = bool(origin) and not _same_origin(origin, headers.get(b"host", b"").decode("latin-1"))
        readable = foreign and origin in self.cors_origins and path.startswith(CROSS_ORIGIN_PATHS)
        if scope["method"] == "OPTIONS" and foreign and not readable:
            return await _plain(send, 403, "cross-origin requests are not allowed here")
        limit = self.limits.limit(path)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await _too_large(send, limit)
        received, started, over, whole, slow = 0, False, False, False, False

        async def bounded_receive():
            nonlocal received, over, whole, slow
            if whole:  # the body is in: later reads wait for a disconnect, as long as a stream lasts
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_seconds)
            except asyncio.TimeoutError:
                slow = True
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                whole = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            nonlocal started
            if over or slow:
                return  # whatever the app says about a body it never got whole, the answer is 413 or 408
            if message["type"] == "http.response.start":
                started = True
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")]
                if readable:
                    kept += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                             (b"access-control-allow-methods", b"POST, OPTIONS"),
                             (b"access-control-allow-headers", b"content-type")]
                kept += SECURITY + (NO_FRAMES if path.startswith(UNFRAMED) else [])
                message = {**message, "headers": kept}
            await send(message)

        if scope["method"] == "OPTIONS" and readable:  # an allowed origin's preflight: answered here
            return await _preflight(guarded_send)
        try:
            await self.app(scope, bounded_receive, guarded_send)
        except Exception:  # BodyTooLarge or BodyTooSlow, bare or in the task group of a middleware inside
            if not (over or slow):
                raise
        if over and not started:
            await _too_large(send, limit)
        elif slow and not started:
            await _plain(send, 408, f"the request body stopped arriving for {self.body_seconds:g} s; send it again")


async def _preflight(send) -> None:
    """An allowed origin's preflight, answered (its CORS headers are added by the caller's send)."""
    await send({"type": "http.response.start", "status": 204, "headers": [(b"access-control-max-age", b"600")]})
    await send({"type": "http.response.body", "body": b""})


def _same_origin(origin: str, host: str) -> bool:
    """Example: _same_origin("https://shop.example", "shop.example") -> True;
             _same_origin("https://evil.example", "shop.example") -> False"""
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


async def _too_large(send, limit: int) -> None:
    await _plain(send, 413, f"the request body is over this path's limit of {limit:,} bytes")


async def _plain(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *SECURITY]})
    await send({"type": "http.response.body", "body": body})

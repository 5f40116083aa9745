"""Signed outgoing webhooks: the shop's helpdesk, Slack bridge or CRM hears when a customer asks
for a person, staff hand the conversation back (it is closed), a message falls back, or a reply
is rated.

Each delivery is a JSON POST signed the Standard Webhooks way (standardwebhooks.com):
`webhook-id` (the event's message id, the same on every retry), `webhook-timestamp` (seconds) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed by the endpoint's
secret (`whsec_` + base64, shown once when the endpoint is added). The receiver checks the
signature and the timestamp and drops a `webhook-id` it has seen.

`Sender.run_once` claims the deliveries that are due (store/webhooks.py: a lease per delivery, so
with several server processes each is sent by one), posts them, and records the outcome: 2xx is
delivered; a timeout, a refused connection, 429 or 5xx is tried again after 5 s, 30 s, 2 min,
10 min and 1 h, then given up; any other answer is given up at once. Every server process runs a
`Sender` in a thread of its own (`start`), so a slow endpoint never holds up the chat.

Endpoints are on the public internet unless the `webhook_private` setting allows more: an
endpoint whose host is, or resolves to, a loopback, private, link-local or otherwise non-public
address (`private_address`) is refused when added, and a delivery whose host resolves to one when
it is sent is given up, so csbot cannot be made to post into the network it runs in (its
database, a cloud metadata service). A name that resolves differently between that check and the
connection (DNS rebinding) is not caught.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx

from csbot.errors import DataError

log = logging.getLogger("csbot.service.webhooks")
BACKOFF = (5, 30, 120, 600, 3600)  # seconds before the 2nd ... 6th attempt
LEASE_SECONDS = 60.0  # a claimed delivery is another process's to send after this
TIMEOUT_SECONDS = 10.0


def new_secret() -> str:
    """Example: new_secret() -> "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" (24 random bytes)"""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value.

    Example: signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                       b'{"test": 2432232314}') -> "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    """
    if not secret.startswith("whsec_"):
        raise DataError("a webhook secret starts with whsec_ (made by csbot when the endpoint is added)")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def private_address(url: str) -> str | None:
    """The first address the URL's host is or resolves to that is not on the public internet, or
    None when all are public or the name does not resolve now (a send resolves it again).

    Example: private_address("http://127.0.0.1:9/x") -> "127.0.0.1"; private_address("http://10.1.2.3/") -> "10.1.2.3"
    """
    host = urlsplit(url).hostname or ""
    try:
        found = sorted({info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        return None
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 zone (%eth0) is not part of the address
        if not ip.is_global or (ip.version == 6 and ip.ipv4_mapped and not ip.ipv4_mapped.is_global):
            return address
    return None


def retry_after(attempt: int) -> float | None:
    """Seconds before trying again after failed attempt number `attempt` (1-based); None: give up.

    Example: retry_after(1) -> 5; retry_after(6) -> None
    """
    return float(BACKOFF[attempt - 1]) if attempt <= len(BACKOFF) else None


class Sender:
    """Sends the store's due deliveries; `client` is an httpx.Client (a test may pass its own).
    With `private=False` a delivery to a non-public address is given up (see the module docstring)."""

    def __init__(self, store, *, client: httpx.Client | None = None, clock=time.time, private: bool = True):
        self.store = store
        self.private = private
        self.client = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Send what is due now; returns how many were attempted."""
        due = self.store.claim_due(lease=LEASE_SECONDS)
        for delivery in due:
            self._send(delivery)
        return len(due)

    def _send(self, delivery: dict) -> None:
        found = None if self.private else private_address(delivery["url"])
        if found is not None:
            error = (f"refused: {urlsplit(delivery['url']).hostname} is at {found}, not a public address "
                     "(the webhook_private setting allows it)")
            self.store.delivery_result(delivery["id"], status="failed", code=None, error=error)
            log.warning("webhook %s to %s %s", delivery["msg_id"], delivery["url"], error)
            return
        body = delivery["payload"].encode("utf-8")
        stamp = int(self.clock())
        headers = {"content-type": "application/json", "user-agent": "csbot-webhooks",
                   "webhook-id": delivery["msg_id"], "webhook-timestamp": str(stamp),
                   "webhook-signature": signature(delivery["secret"], delivery["msg_id"], stamp, body)}
        code, error = None, None
        try:
            response = self.client.post(delivery["url"], content=body, headers=headers)
            code = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempt = int(delivery["attempts"]) + 1
        if code is not None and 200 <= code < 300:
            self.store.delivery_result(delivery["id"], status="delivered", code=code, error=None)
            return
        wait = retry_after(attempt) if (code is None or code == 429 or code >= 500) else None
        if wait is None:
            self.store.delivery_result(delivery["id"], status="failed", code=code, error=error or f"HTTP {code}")
            log.warning("webhook %s to %s given up after %d attempt(s): %s", delivery["msg_id"], delivery["url"],
                        attempt, error or f"HTTP {code}")
        else:
            self.store.delivery_result(delivery["id"], status="pending", code=code, error=error or f"HTTP {code}",
                                       next_at=self.store.clock() + wait)

    def start(self, *, interval: float = 1.0) -> None:
        """Send due deliveries every `interval` seconds in a daemon thread, until `stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.run_once()
                except Exception:  # the store away for a moment: the next round tries again
                    log.exception("sending webhooks failed; trying again in %.0f s", interval)
        self._thread = threading.Thread(target=run, daemon=True, name="csbot-webhooks")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._thread = None

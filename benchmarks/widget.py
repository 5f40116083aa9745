"""The website widget beside the Gradio chat page, in Chromium, on one `python app.py`: the bytes
each makes the browser fetch, and the time from pressing Enter to the bot's reply on screen.

    python benchmarks/widget.py --home DIR [--messages 20] [--out benchmarks/results/widget.json]

DIR is a trained home (copied first). A shop page on another origin carries only the script tag.
Bytes are the response bodies as received (csbot sends them uncompressed; the deploy recipe's
nginx compresses) and, beside them, gzip -6 of the same bodies. The reply time is measured in the
page: from the key press to the reply's element appearing, one message at a time, the demo's
questions. A benchmark: it asserts nothing. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import ROOT, Server, copy_home, free_port, percentile  # noqa: E402

QUESTIONS = ["Do you offer gift wrapping?", "where is my order BB-482913", "can I return a rug",
             "do you ship to Ireland", "how long do refunds take", "can I pay with Klarna?",
             "what are your opening hours", "is the oak table real wood", "I need a VAT invoice",
             "do you have a shop in Leeds"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def fetched_bytes(page, origin: str) -> dict:
    """Record every response from `origin` on `page`: {url: (bytes, gzip bytes)}."""
    sizes: dict[str, tuple[int, int]] = {}

    def seen(response):
        if response.url.startswith(origin) and response.request.method == "GET" and "/api/" not in response.url:
            try:
                body = response.body()
            except Exception:  # a redirect or a stream: nothing to count
                return
            sizes[response.url] = (len(body), len(gzip.compress(body, 6)))
    page.on("response", seen)
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "widget.json"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="csbot-widget-") as tmp:
        home, site = Path(tmp) / "home", Path(tmp) / "site"
        copy_home(Path(args.home), home)
        site.mkdir()
        shop_port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CSBOT_")},
               "CSBOT_WIDGET_ORIGINS": f"http://localhost:{shop_port}", "CSBOT_CHAT_PER_MINUTE": "0",
               "CSBOT_CHAT_IP_PER_MINUTE": "0"}
        server = Server(home, env=env, log=Path(tmp) / "server.log")
        (site / "shop.html").write_text(f'<!doctype html><html lang="en"><head><title>Shop</title></head><body>'
                                        f'<main><h1>A shop page</h1></main><script src="{server.url}/widget.js" defer>'
                                        f'</script></body></html>', encoding="utf-8")
        handler = functools.partial(Quiet, directory=str(site))
        shop = http.server.ThreadingHTTPServer(("127.0.0.1", shop_port), handler)
        threading.Thread(target=shop.serve_forever, daemon=True).start()
        try:
            server.wait_ready(600)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                widget = browser.new_page()
                widget_bytes = fetched_bytes(widget, server.url)
                widget.goto(f"http://localhost:{shop_port}/shop.html")
                widget.get_by_role("button", name="Chat with").first.click()
                frame = widget.frame_locator("iframe.csbot-frame")
                frame.get_by_label("Your message").wait_for()
                times = []
                for i in range(args.messages):
                    box = frame.get_by_label("Your message")
                    box.fill(QUESTIONS[i % len(QUESTIONS)])
                    widget.wait_for_timeout(50)
                    started = time.perf_counter()
                    box.press("Enter")
                    frame.locator("#log li.bot, #log li.staff, #log li.error").nth(i).wait_for(timeout=60_000)
                    times.append(1000 * (time.perf_counter() - started))
                gradio = browser.new_page()
                gradio_bytes = fetched_bytes(gradio, server.url)
                gradio.goto(server.url + "/")
                gradio.get_by_label("Your message").wait_for(timeout=60_000)
                gradio.wait_for_timeout(5000)  # lazily loaded pieces (its queue keeps a stream open: never idle)
                browser.close()
        finally:
            server.stop()
            shop.shutdown()

    def total(sizes: dict) -> dict:
        return {"files": len(sizes), "bytes": sum(b for b, _ in sizes.values()),
                "gzip_bytes": sum(z for _, z in sizes.values())}
    figures = {"widget": {**total(widget_bytes), "each": {u.rsplit("/", 1)[-1] or u: s for u, s in widget_bytes.items()}},
               "gradio_chat_page": total(gradio_bytes),
               "first_reply_ms": {"messages": len(times), "p50": round(percentile(times, 50), 1),
                                  "p95": round(percentile(times, 95), 1), "max": round(max(times), 1)}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Interop with a real browser: headless Chromium talks to the reference server."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from refkit import SECRET, run_async

from wsanalysis.reference.clock import Timebase
from wsanalysis.reference.server import ChatServer, Faults
from wsanalysis.reference.tokens import issue_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")

PAGE = """<!doctype html><html><body>
<p id="reply">pending</p><p id="close">open</p>
<script>
const ws = new WebSocket(%(url)r);
ws.onopen = () => ws.send(JSON.stringify(
  {type: "user_message", thread_id: "browser-thread", trace: "b1", text: "from chromium"}));
ws.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  if (frame.type === "assistant_message") {
    document.getElementById("reply").textContent =
      "reply|" + frame.text + "|" + frame.seq + "|" + frame.meta.trace;
    ws.close(1000, "done");
  }
};
ws.onclose = (event) => { document.getElementById("close").textContent = "close|" + event.code; };
</script>
<img src="/hold" alt=""></body></html>"""
HOLD_SECONDS = 1.5  # the /hold image delays the load event, so the DOM is dumped after the reply


def serve_page(html: str) -> ThreadingHTTPServer:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path == "/hold":
                time.sleep(HOLD_SECONDS)
                self.send_response(204)
                self.end_headers()
                return
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


async def dump_dom(page_url: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            page_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return out.decode()


async def browse(server: ChatServer, token: str | None) -> str:
    url = server.url + (f"?token={token}" if token else "")
    httpd = serve_page(PAGE % {"url": url})
    try:
        return await dump_dom(f"http://127.0.0.1:{httpd.server_port}/")
    finally:
        httpd.shutdown()
        httpd.server_close()


@run_async
async def test_chromium_connects_sends_and_shows_the_reply():
    tb = Timebase()
    faults = Faults(ttfb_median=0.0)
    async with ChatServer(SECRET, timebase=tb, faults=faults, log_event=lambda _: None) as server:
        dom = await browse(server, issue_token(SECRET, "browser", tb.epoch_now(), 600))
    assert "reply|echo: from chromium|1|b1.a1" in dom
    assert "close|1000" in dom


@run_async
async def test_chromium_sees_4401_for_a_missing_token():
    """Why 4401 and not HTTP 401: the page can read a close code, not a handshake status."""
    async with ChatServer(SECRET, log_event=lambda _: None) as server:
        dom = await browse(server, None)
    assert "close|4401" in dom

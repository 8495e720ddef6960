"""Helpers of the report tests: executed runs, a hostile dataset, headless Chromium."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
WSANALYSIS = [sys.executable, "-m", "wsanalysis.cli"]
ARTIFACTS = REPO / "tests" / "artifacts"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_RELEASE = '"><img src=x onerror=alert(2)>'  # a service/release name a caller typed
SECRET = "open-sesame"  # the Prometheus password (bcrypt hash in conftest)


@dataclass
class Executed:
    """One finished `wsanalysis canary` run."""

    out: Path
    exit_code: int
    stdout: str
    stderr: str

    @property
    def verdict(self) -> dict[str, Any]:
        return json.loads((self.out / "verdict.json").read_text())

    @property
    def html(self) -> str:
        return (self.out / "report.html").read_text()

    @property
    def notebook(self) -> dict[str, Any]:
        return json.loads((self.out / "report.ipynb").read_text())


def hostile_dataset(target: Path) -> Path:
    """data/sample with a hostile Prometheus label value and a hostile RUM close reason."""
    target.mkdir(parents=True)
    metrics = (SAMPLE / "metrics.om").read_text()
    (target / "metrics.om").write_text(metrics.replace('event="typing"', f'event="{HOSTILE}"'))
    with gzip.open(SAMPLE / "rum.ndjson.gz", "rt") as source:
        rum = source.read()
    rum = rum.replace('"reason": "going_away"', json.dumps({"reason": HOSTILE})[1:-1])
    rum = rum.replace('"reason":"going_away"', json.dumps({"reason": HOSTILE})[1:-1])
    assert HOSTILE in rum or json.dumps(HOSTILE) in rum
    with gzip.open(target / "rum.ndjson.gz", "wt", compresslevel=1) as sink:
        sink.write(rum)
    return target


# -- headless Chromium over the DevTools protocol ---------------------------------------------


@dataclass
class PageLoad:
    """What the browser saw while opening one page."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None


PAGE_FACTS = """(() => {
  const plots = [...document.querySelectorAll('div.plot')];
  return {
    banner: (document.querySelector('#verdict') || {}).innerText || '',
    plots: plots.length,
    rendered: plots.filter(p => p.querySelector('svg.main-svg')).length,
    traces: plots.map(p => p.querySelectorAll('g.trace, g.barlayer g.point').length),
    empty_plots: plots.filter(p => p.getBoundingClientRect().height < 100).length,
    scripts_with_src: document.querySelectorAll('script[src]').length,
    links: document.querySelectorAll('link[href]').length,
    cells: [...document.querySelectorAll('td')].map(td => td.textContent),
    svg_text: [...document.querySelectorAll('svg text')].map(t => t.textContent),
    title: document.title,
    scroll_width: document.documentElement.scrollWidth,
    viewport_width: window.innerWidth,
    widest_plot: Math.max(0, ...plots.map(p => p.getBoundingClientRect().right)),
  };
})()"""
#: A phone (iPhone 12 to 15): what `Chromium.open(..., width=PHONE_WIDTH)` emulates.
PHONE_WIDTH, PHONE_HEIGHT = 390, 844


class Chromium:
    """A headless Chromium with networking closed, driven over the DevTools protocol."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="wsanalysis-chromium-")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={self.profile}",
                "--proxy-server=127.0.0.1:9",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.endpoint = self._endpoint()
        self.next_id = 0

    def _endpoint(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if "DevTools listening on" in line:
                return line.split("DevTools listening on", 1)[1].strip()
            if not line and self.process.poll() is not None:
                break
        raise RuntimeError("chromium did not start its DevTools endpoint")

    def open(
        self,
        path: Path,
        screenshot: Path | None = None,
        *,
        width: int | None = None,
        script: str | None = None,
        media: str | None = None,
    ) -> PageLoad:
        """Open `path`; `width` emulates a phone that wide (`PHONE_WIDTH`); `media="print"`
        lays it out for paper; `script` is an expression evaluated once the page has drawn,
        its value in `facts["script"]`."""
        from websockets.sync.client import connect

        load = PageLoad()
        with connect(self.endpoint, max_size=None, open_timeout=30) as socket:

            def send(method: str, params: dict | None = None, session: str | None = None):
                self.next_id += 1
                message = {"id": self.next_id, "method": method, "params": params or {}}
                if session:
                    message["sessionId"] = session
                socket.send(json.dumps(message))
                wanted = self.next_id
                while True:
                    reply = json.loads(socket.recv(timeout=60))
                    if reply.get("id") == wanted:
                        if "error" in reply:
                            raise RuntimeError(f"{method}: {reply['error']}")
                        return reply.get("result", {})
                    record(reply)

            def record(event: dict) -> None:
                method, params = event.get("method"), event.get("params", {})
                if method == "Network.requestWillBeSent":
                    url = params["request"]["url"]
                    if not url.startswith(("file:", "data:", "about:")):
                        load.requests.append(url)
                elif method == "Runtime.exceptionThrown":
                    load.console_errors.append(json.dumps(params["exceptionDetails"])[:500])
                elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                    load.console_errors.append(json.dumps(params.get("args"))[:500])
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    load.console_errors.append(params["entry"].get("text", ""))
                elif method == "Page.javascriptDialogOpening":
                    load.dialogs.append(params.get("message", ""))
                    self.next_id += 1  # dismiss it, or the page would block every command
                    socket.send(
                        json.dumps(
                            {
                                "id": self.next_id,
                                "method": "Page.handleJavaScriptDialog",
                                "params": {"accept": True},
                                "sessionId": event.get("sessionId"),
                            }
                        )
                    )
                elif method == "Page.loadEventFired":
                    load.facts["loaded"] = True

            target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Network", "Runtime", "Log", "Page"):
                send(f"{domain}.enable", session=session)
            if width is not None:
                metrics = {"width": width, "height": PHONE_HEIGHT, "deviceScaleFactor": 1,
                           "mobile": True}  # fmt: skip
                send("Emulation.setDeviceMetricsOverride", metrics, session)
            if media is not None:
                send("Emulation.setEmulatedMedia", {"media": media}, session)
            send("Page.navigate", {"url": path.resolve().as_uri()}, session)
            deadline = time.monotonic() + 60
            facts: dict[str, Any] = {}
            while time.monotonic() < deadline:
                facts = (
                    send(
                        "Runtime.evaluate",
                        {"expression": PAGE_FACTS, "returnByValue": True},
                        session,
                    )["result"].get("value")
                    or {}
                )
                if load.facts.get("loaded") and facts.get("plots") == facts.get("rendered"):
                    break
                time.sleep(0.25)
            time.sleep(0.5)  # let late requests or errors surface
            send("Runtime.evaluate", {"expression": "1"}, session)
            load.facts.update(facts)
            if script is not None:
                answer = send("Runtime.evaluate", {"expression": script, "returnByValue": True},
                              session)  # fmt: skip
                load.facts["script"] = answer["result"].get("value")
            if screenshot is not None:
                shot = send(
                    "Page.captureScreenshot",
                    {"format": "png", "captureBeyondViewport": True},
                    session,
                )
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                load.screenshot = screenshot
            send("Target.closeTarget", {"targetId": target})
        return load

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

"""A real JupyterLab, started as `make lab` starts it, driven in headless Chromium as an
analyst would: open the canary notebook, Run All, wait for the kernel, then read the page.

Playwright drives Debian's chromium (`executable_path`); no browser is downloaded. The
server binds to 127.0.0.1 and serves a copy of the notebooks (see conftest), so nothing
it saves can reach the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.notebooks.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
NOTEBOOK = "notebooks/canary_evaluation.ipynb"
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 300
ARTIFACTS = REPO / "tests" / "artifacts"


def _needs(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the JupyterLab browser test: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def lab(opened: Path, tmp_path_factory: pytest.TempPathFactory):
    """`scripts/lab.py` (what `make lab` runs) on the copied checkout; yields its URL."""
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    settings = runtime / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the page (no virtual scrolling), so prompts and charts can be counted
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = {
        **os.environ, "JUPYTER_TOKEN": "lab-test-token", "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTERLAB_SETTINGS_DIR": str(runtime / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(runtime / "workspaces"),
    }  # fmt: skip
    log = (runtime / "lab.log").open("w+")
    server = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "lab.py"), "--port", "0", "--root", str(opened)],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env,
    )  # fmt: skip
    try:
        url = None
        for line in server.stdout:  # the URL is printed before the server starts
            found = re.search(r"http://127\.0\.0\.1:\d+/lab\?token=\S+", line)
            if found:
                url = found.group(0)
                break
        assert url, "scripts/lab.py printed no URL with a token"
        base = url.split("/lab?")[0]
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token=lab-test-token", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"JupyterLab did not start:\n{log.read()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_port_zero_picks_a_free_port():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from lab import free_port
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert free_port(0) > 0


def test_canary_notebook_runs_all_in_jupyterlab(lab: str, opened: Path):
    _needs(Path(CHROMIUM).exists(), f"{CHROMIUM} missing (make system-deps)")
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        _needs(False, "playwright missing (pip install -e '.[dev]')")
    charts = (opened / NOTEBOOK).read_text().count("figures.show(")
    assert charts >= 5
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(lab.replace("/lab?", f"/lab/tree/{NOTEBOOK}?"), timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_selector("text=/Python 3 \\(ipykernel\\) \\| Idle/", timeout=90_000)
            # the news prompt is off: no notification asks about Jupyter news
            assert page.locator("text=official Jupyter news").count() == 0
            code_cells = page.locator(".jp-Notebook .jp-CodeCell")
            for _ in range(3):  # a menu clicked while the page is still settling may not act
                page.locator(".jp-Notebook .jp-Cell").first.click()
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
                page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
                try:
                    page.wait_for_function(
                        "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                        ".some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))",
                        timeout=20_000,
                    )
                    break
                except PlaywrightTimeout:
                    page.keyboard.press("Escape")
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while time.monotonic() < deadline:
                prompts = code_cells.locator(".jp-InputPrompt").all_inner_texts()
                done = prompts and all(re.fullmatch(r"\[\d+\]:", t.strip()) for t in prompts)
                if done and page.locator("text=/Python 3 \\(ipykernel\\) \\| Idle/").count():
                    break
                time.sleep(1)
            else:
                pytest.fail(f"Run All did not finish in {RUN_TIMEOUT_S} s: {prompts}")
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                timeout=60_000,
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "lab-canary-run-all.png"), full_page=False)
            error_outputs = page.locator("[data-mime-type='application/vnd.jupyter.error']")
            assert error_outputs.count() == 0, error_outputs.all_inner_texts()
            assert page.locator(".js-plotly-plot").count() >= charts
            assert page.locator(".banner").count() >= 1  # the verdict banner rendered
            assert errors == []
        finally:
            browser.close()

"""The incident timeline in headless Chromium: on the bundled outage (five findings at
09:00) no two annotations overlap, and each finding is keyed under the chart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.notebooks.conftest import REPO
from tests.notebooks.test_lab_browser import ARGS, ARTIFACTS, CHROMIUM
from wsanalysis.incident.analyze import analyze
from wsanalysis.incident.inputs import load_dataset
from wsanalysis.incident.timeline import figure, label_lanes, timeline

OVERLAPS = """(() => {
  const boxes = [...document.querySelectorAll('g.annotation')].map(g => {
    const r = g.getBoundingClientRect();
    return {text: g.textContent, l: r.left, r: r.right, t: r.top, b: r.bottom};
  });
  const hits = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b) hits.push([a.text, b.text]);
    }
  return {count: boxes.length, hits, texts: boxes.map(b => b.text)};
})()"""


def test_label_lanes_never_share_a_lane_where_labels_would_touch():
    spans = [(0.5, 0.6), (0.5, 0.51), (0.51, 0.52), (0.2, 0.3), (0.6, 0.7)]
    lanes = label_lanes(spans, width=0.035)
    for i, a in enumerate(spans):
        for j, b in enumerate(spans[i + 1 :], i + 1):
            if abs(a[0] - b[0]) < 0.035:
                assert lanes[i] != lanes[j]
    assert lanes[3] == 0 and lanes[4] == 0  # room enough: the first row


def test_outage_timeline_annotations_do_not_overlap_in_chromium(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} missing: CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} missing (make system-deps)")
    from playwright.sync_api import sync_playwright

    data = load_dataset(REPO / "data" / "network_outage")
    findings = analyze(data).findings
    page_file = tmp_path / "timeline.html"
    figure(timeline(data, findings)).write_html(page_file, include_plotlyjs=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(page_file.as_uri())
            page.wait_for_selector("g.annotation")
            facts = page.evaluate(OVERLAPS)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "timeline-network-outage.png"), full_page=True)
        finally:
            browser.close()
    assert facts["count"] == 2 * len(findings) >= 10  # a number on the chart, a key line
    assert facts["hits"] == []
    for number in range(1, len(findings) + 1):
        assert any(t.startswith(f"{number}  ") for t in facts["texts"])

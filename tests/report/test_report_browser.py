"""report.html in headless Chromium with networking closed (DevTools protocol)."""

from __future__ import annotations

import pytest
from report_support import HOSTILE


@pytest.mark.parametrize(
    ("name", "word"), [("sample", "NO-GO"), ("staging", "GO"), ("hostile", None)]
)
def test_page_renders_offline_with_every_chart(opened, name, word):
    load = opened(name)
    facts = load.facts
    assert load.requests == []  # nothing left the file
    assert load.console_errors == []
    assert load.dialogs == []
    if word is not None:
        assert facts["banner"].splitlines()[0].strip() == word
    assert facts["plots"] == 6  # five evidence charts and the settle chart
    assert facts["rendered"] == 6
    assert all(n > 0 for n in facts["traces"]), facts["traces"]
    assert facts["empty_plots"] == 0
    assert facts["scripts_with_src"] == 0 and facts["links"] == 0
    assert load.screenshot is not None and load.screenshot.stat().st_size > 50_000


def test_hostile_strings_show_as_text(opened):
    load = opened("hostile")
    assert load.dialogs == []  # alert(1) never ran
    assert HOSTILE in load.facts["cells"]  # the RUM reason, shown as text in the table
    assert any(HOSTILE in text for text in load.facts["svg_text"])  # the label, in a legend


def test_failed_report_shows_the_failure_banner(opened):
    load = opened("broken")
    assert load.facts["banner"].startswith("REPORT FAILED")
    assert load.requests == [] and load.dialogs == []

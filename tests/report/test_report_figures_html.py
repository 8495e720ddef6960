"""The numbers behind each chart, the page renderer and the gate table, without a kernel."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from nbclient.exceptions import DeadKernelError
from papermill.exceptions import PapermillExecutionError

from wsanalysis.frames.measures import Window
from wsanalysis.report import figures
from wsanalysis.report.canary import gate_rows
from wsanalysis.report.execute import EXIT_KERNEL_DIED, _failure
from wsanalysis.report.html import (
    PLOTLY_MIMETYPE,
    Failure,
    banner_html,
    escape,
    render_page,
    script_json,
    table_html,
)
from wsanalysis.stats.quantiles import histogram_quantile
from wsanalysis.stats.survival import kaplan_meier

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(minutes=20))
TEN = timedelta(minutes=10)
HOSTILE = "<script>alert(1)</script>"


def samples(rows: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(rows)
    return frame.with_columns(
        (pl.lit(T0) + pl.duration(minutes=pl.col("minute")))
        .cast(pl.Datetime("ms", "UTC"))
        .alias("timestamp"),
        pl.col("value").cast(pl.Float64),
    ).drop("minute")


def counter(metric, variant, values, **labels):
    return [
        {"minute": i * 5, "metric": metric, "variant": variant, "value": v, **labels}
        for i, v in enumerate(values)
    ]


def test_close_codes_count_increases_per_bucket_across_a_reset():
    frame = samples(
        counter("ws_closes_total", "canary", [0, 4, 10, 2, 5], code="1012")  # reset at 15 min
        + counter("ws_closes_total", "control", [0, 1, 2, 3, 4], code="1000")
    )
    result = figures.close_codes_over_time(frame, None, WINDOW, TEN)
    canary = result.filter(pl.col("variant") == "canary")["closes"].to_list()
    # an increase belongs to the bucket of the sample that ends it: +4 at 5 min; then
    # +6 at 10 min, the reset at 15 min (2 counted since), +3 at 20 min (the end, closed)
    assert canary == [4.0, 11.0]
    assert result.filter(pl.col("variant") == "control")["closes"].sum() == 4.0


def test_close_codes_fall_back_to_rum():
    beacons = pl.DataFrame(
        {
            "ts": [T0, T0 + timedelta(minutes=12), T0 + timedelta(minutes=13)],
            "type": ["ws.close"] * 3,
            "variant": ["canary", "canary", "control"],
            "code": [1006, 1006, 1000],
        }
    )
    result = figures.close_codes_over_time(
        samples(counter("x", "canary", [1])), beacons, WINDOW, TEN
    )
    assert result.sort("bucket", "variant").rows() == [
        (T0, "canary", "1006", 1.0),
        (T0 + TEN, "canary", "1006", 1.0),
        (T0 + TEN, "control", "1000", 1.0),
    ]


def test_ttfb_p95_per_bucket_is_promql_histogram_quantile():
    rows = []
    for le, values in {"0.5": [0, 10, 20, 30, 40], "1": [0, 18, 36, 54, 72], "+Inf": [0, 20, 40, 60, 80]}.items():  # fmt: skip
        rows += counter("ws_assistant_ttfb_seconds_bucket", "canary", values, le=le)
    result = figures.ttfb_p95_over_time(samples(rows), None, WINDOW, TEN)
    expected = histogram_quantile(0.95, [0.5, 1.0, math.inf], np.array([20.0, 36.0, 40.0]))
    assert result["source"].to_list() == ["prometheus", "prometheus"]
    assert result["p95_seconds"].to_list() == pytest.approx([expected, expected])


def test_frames_per_second_by_event():
    frame = samples(counter("ws_frames_sent_total", "control", [0, 300, 600, 900, 1200], event="typing"))  # fmt: skip
    result = figures.frames_by_event(frame, WINDOW, TEN)
    # 300 frames end in the first bucket (the 5 min sample), 900 in the second
    assert result["per_second"].to_list() == pytest.approx([0.5, 1.5])


def test_backoff_median_per_bucket_and_close_reasons():
    beacons = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=m) for m in (1, 2, 3, 11)],
            "type": ["ws.reconnect_scheduled"] * 3 + ["ws.close"],
            "variant": ["canary"] * 4,
            "backoff_ms": [100.0, 300.0, 200.0, None],
            "code": [None, None, None, 4401],
            "reason": [None, None, None, HOSTILE],
        }
    )
    backoff = figures.backoff_over_time(beacons, WINDOW, TEN)
    assert backoff.rows() == [(T0, "canary", 200.0, pytest.approx(280.0), 3)]
    reasons = figures.close_reasons(beacons)
    assert reasons.rows() == [("canary", "4401", HOSTILE, 1)]


def test_survival_curve_is_kaplan_meier_with_open_connections_censored():
    opened = [T0 + timedelta(minutes=m) for m in range(5)]
    beacons = pl.DataFrame(
        {
            "ts": opened + [T0 + timedelta(minutes=6), T0 + timedelta(minutes=7)],
            "type": ["ws.open"] * 5 + ["ws.close"] * 2,
            "variant": ["canary"] * 7,
            "socket_id": ["a", "b", "c", "d", "e", "a", "b"],
            "duration_ms": [None] * 5 + [360_000.0, 360_000.0],
        }
    )
    curve = figures.survival_curves(beacons, WINDOW)
    censored = [(WINDOW.end - t).total_seconds() for t in opened[2:]]
    fit = kaplan_meier([360.0, 360.0, *censored], [True, True, False, False, False])
    assert curve["survival"].to_list() == pytest.approx(fit.survival.tolist())
    assert curve["seconds"].to_list() == pytest.approx(fit.timeline.tolist())


def test_duration_distribution_shares_sum_to_one():
    rows = []
    for le, values in {"60": [0, 5], "3600": [0, 15], "+Inf": [0, 20]}.items():
        rows += counter("ws_connection_duration_seconds_bucket", "control", values, le=le)
    result = figures.duration_distribution(samples(rows))
    assert result["share"].to_list() == pytest.approx([0.25, 0.5, 0.25])


def test_figure_labels_are_escaped():
    frame = pl.DataFrame(
        {"bucket": [T0], "variant": ["canary"], "event": [HOSTILE], "per_second": [1.0]}
    ).with_columns(pl.col("bucket").cast(pl.Datetime("ms", "UTC")))
    names = {t.name for t in figures.frames_figure(frame).data}
    assert names == {"&lt;script&gt;alert(1)&lt;/script&gt;"}


def test_close_codes_stack_one_legend_entry_per_code_across_both_panels():
    frame = pl.DataFrame(
        {
            "bucket": [T0] * 3,
            "variant": ["canary", "control", "control"],
            "code": ["1006", "1006", "4401"],
            "closes": [2.0, 5.0, 1.0],
        }
    ).with_columns(pl.col("bucket").cast(pl.Datetime("ms", "UTC")))
    figure = figures.close_codes_figure(frame)
    assert figure.layout.barmode == "stack"
    assert {t.type for t in figure.data} == {"bar"}
    shown = sorted(t.name for t in figure.data if t.showlegend)
    assert shown == ["1006", "4401"]  # legend from the first panel only, each code once
    assert [list(t.y) for t in figure.data if t.xaxis == "x2"] == [[5.0], [1.0]]


# -- the page -----------------------------------------------------------------------------


def notebook(*outputs, markdown="## Section\n\nText <b>raw</b>"):
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": markdown},
            {
                "cell_type": "code",
                "metadata": {},
                "source": "secret_code()",
                "outputs": list(outputs),
            },  # fmt: skip
        ]
    }


def plot_output():
    return {"output_type": "display_data", "metadata": {}, "data": {PLOTLY_MIMETYPE: {"data": [{"type": "bar", "name": HOSTILE}], "layout": {}}, "text/plain": "fig"}}  # fmt: skip


def test_page_has_banner_first_toc_and_no_code():
    page = render_page(
        notebook(plot_output(), plot_output()),
        title="t",
        document={"verdict": "NO_GO", "reason": f"worse on {HOSTILE}"},
    )
    body = page[page.index("<body>") :]
    assert body.index('class="banner nogo"') < body.index("<nav") < body.index("Section")
    assert "NO-GO" in body and HOSTILE not in page
    assert "secret_code" not in page
    assert '<a href="#section">Section</a>' in page
    assert "&lt;b&gt;raw&lt;/b&gt;" in page  # raw HTML in markdown stays text
    assert page.count("<script>") == 2  # plotly.js once, the loader once
    assert page.count('class="plotly-figure"') == 2


def test_page_without_a_verdict_says_report_failed():
    page = render_page(notebook(), title="t", document=None)
    assert "REPORT FAILED" in page and 'class="banner go"' not in page
    failed = render_page(
        notebook(
            {"output_type": "error", "ename": "ValueError", "evalue": HOSTILE, "traceback": []}
        ),
        title="t",
        document={"verdict": "GO", "reason": "fine"},
        failure=Failure("failed cell", f"ValueError: {HOSTILE}", 3),
    )
    assert "REPORT FAILED" in failed and ">GO<" not in failed and HOSTILE not in failed
    assert "<script>" not in failed  # no figure, no plotly.js


def test_banner_outputs_of_the_notebook_are_not_repeated():
    banner = {"output_type": "display_data", "metadata": {"wsanalysis": "banner"}, "data": {"text/html": banner_html("GO", "x")}}  # fmt: skip
    page = render_page(notebook(banner), title="t", document={"verdict": "GO", "reason": "x"})
    assert page.count('class="banner go"') == 1


def test_script_json_cannot_close_its_tag():
    text = script_json({"name": "</script><script>alert(1)</script>", "x": "a & b"})
    assert "</" not in text and "<" not in text and "&" not in text
    assert json.loads(text)["name"] == "</script><script>alert(1)</script>"


def test_table_cells_are_escaped():
    markup = table_html(pl.DataFrame({"decision": ["fail"], HOSTILE: [HOSTILE]}), "decision")
    assert HOSTILE not in markup and markup.count("&lt;script&gt;") == 3  # head, label, cell
    assert 'class="decision-fail"' in markup
    assert f'<td data-label="{escape(HOSTILE)}">' in markup  # the card's label on a phone


def test_gate_rows_format_ratios_units_and_infinities():
    document = {
        "gates": [
            {
                "name": "ttfb",
                "title": "TTFB",
                "critical": True,
                "unit": "s",
                "comparison": "control",
                "worse": "increase",
                "decision": "pass",
                "sentence": "fine",
                "evidence": {
                    "canary": 1.2,
                    "control": 1.1,
                    "effect": 0.1,
                    "ci_low": -0.02,
                    "ci_high": 0.2,
                    "limit": 0.15,
                },  # fmt: skip
            },
            {
                "name": "spike",
                "title": "Spike",
                "critical": False,
                "unit": "per connection",
                "comparison": "bound",
                "worse": "increase",
                "decision": "no_data",
                "sentence": "none",
                "evidence": {
                    "canary": None,
                    "control": None,
                    "effect": "inf",
                    "ci_low": None,
                    "ci_high": None,
                    "limit": 0.05,
                },  # fmt: skip
            },
        ]
    }
    rows = gate_rows(document).rows(named=True)
    assert rows[0]["difference (95% CI)"] == "+100 ms [-20 ms, +200 ms]"
    assert rows[0]["threshold"] == "≤ control +150 ms"
    assert rows[1]["canary"] == "n/a" and rows[1]["threshold"] == "≤ 5.00%"
    assert rows[1]["difference (95% CI)"].startswith("∞")


def test_spike_gate_rows_show_the_worst_bucket_counts():
    details = {
        "worst_bucket_events": 2.0,
        "worst_bucket_exposure": 9.0,
        "worst_bucket_control_events": 0.0,
        "worst_bucket_control_exposure": 63.0,
    }
    gate = {
        "name": "auth_spike", "title": "4401 spike", "critical": True, "statistic": "spike",
        "unit": "per connection", "comparison": "control", "worse": "increase",
        "decision": "inconclusive", "sentence": "s",
        "evidence": {"canary": 0.02, "control": 0.02, "effect": "inf", "ci_low": None,
                     "ci_high": None, "limit": 2.0, "details": details},
    }  # fmt: skip
    bound = {
        **gate,
        "comparison": "bound",
        "evidence": {**gate["evidence"], "effect": 2 / 9, "limit": 0.05},
    }
    rows = gate_rows({"gates": [gate, bound]}).rows(named=True)
    assert rows[0]["difference (95% CI)"] == "worst bucket ×∞ (2 in 9 vs 0 in 63)"
    assert rows[1]["difference (95% CI)"] == "worst bucket 22.22% (2 in 9)"
    # rule v2: the effect is window-wide, the worst bucket's ratio is in the details
    v2 = {**gate, "evidence": {**gate["evidence"], "effect": 1.2,
                               "details": {**details, "worst_bucket_ratio": "inf"}}}  # fmt: skip
    assert gate_rows({"gates": [v2]}).rows(named=True)[0]["difference (95% CI)"] == (
        "worst bucket ×∞ (2 in 9 vs 0 in 63)"
    )


def test_failures_map_to_exit_codes():
    failure, code = _failure(PapermillExecutionError(4, 1, "x", "DataError", "bad", []))
    assert (failure.kind, failure.cell, code) == ("failed cell", 4, 3)
    failure, code = _failure(DeadKernelError("Kernel died"))
    assert (failure.kind, code) == ("kernel died", EXIT_KERNEL_DIED)
    with pytest.raises(KeyError):
        _failure(KeyError("a bug stays a bug"))

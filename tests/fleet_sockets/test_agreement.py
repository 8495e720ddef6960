"""The `sockets` engine against the `simulated` one: same scenario, telemetry that agrees.

One small scenario (two variants, internal errors, abrupt drops on the canary, a deploy
restart, a latency window on the canary) runs once on real loopback sockets at 60× and once
in the discrete-event engine. Each comparison is a two-sample test of a quantity both
engines define identically, at α = 0.001 (six tests: a false alarm about 0.6% of runs);
the tolerance is the sampling error of that test, nothing tuned. One extra test shows
that the TTFB comparison has teeth: it rejects a +150 ms regression.

The engines share the traffic (the sockets engine replays the simulated engine's
arrivals, checked exactly below), so the differences left are what the network, the
servers and the clients' jitter decide. Loop lag is part of the model, not hidden:
server-side TTFB on sockets is the drawn delay plus the late wake-up of the server's
sleep, which the engine measures; the simulated TTFB plus resampled measured lag is the
null hypothesis.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from wsanalysis.errors import UsageError
from wsanalysis.reference.fleet import simulate, write_dataset
from wsanalysis.reference.fleet_sockets import (
    SocketsFleet,
    session_plan,
    simulate_sockets,
)
from wsanalysis.reference.scenario import parse_scenario
from wsanalysis.sources.openmetrics import read_openmetrics
from wsanalysis.sources.rum import read_rum

ALPHA = 0.001
SPEC = {
    "name": "agreement",
    "seed": 11,
    "start": "2026-11-02T12:00:00Z",
    "duration": "12m",
    "warmup": "30s",
    "scrape_interval": "30s",
    "users": {
        "concurrent": 40,
        "session_length": {"median": "8m", "sigma": 0.5},
        "messages_per_hour": 120,
        "token_ttl": "1h",
    },
    "variants": {
        "control": {
            "share": 0.5,
            "server": {"internal_error_p": 0.04, "ttfb": {"median": "400ms", "sigma": 0.4}},
        },
        "canary": {
            "share": 0.5,
            "server": {
                "internal_error_p": 0.04,
                "ttfb": {"median": "400ms", "sigma": 0.4},
                "drop_rate": 6,
            },
        },
    },
    # No refused-handshake window: closing N sockets takes about N × 0.5 ms of real CPU
    # (N × 30 ms virtual at 60×), so whether a retry lands inside a few seconds of
    # downtime would depend on the machine (see benchmarks/RESULTS-fleet-sockets.md).
    "timeline": [
        {"kind": "restart", "at": "4m"},
        {"kind": "latency", "start": "6m", "end": "8m", "extra": "300ms", "variants": ["canary"]},
    ],
}


@pytest.fixture(scope="module")
def scenario():
    return parse_scenario(SPEC)


@pytest.fixture(scope="module")
def runs(scenario):
    return simulate_sockets(scenario, scale=60.0), simulate(scenario)


def window_delta(samples: pl.DataFrame, metric: str, by: str | None = None) -> pl.DataFrame:
    """Counter increase over the window, per variant [and label]: last scrape minus the
    first one (0 for a series born inside the window, as its first close creates it)."""
    keys = ["variant"] + ([by] if by else [])
    first = samples["timestamp"].min()
    at_start = pl.col("value").filter(pl.col("timestamp") == first)
    return (
        samples.filter(pl.col("metric") == metric)
        .sort("timestamp")
        .group_by(keys)
        .agg((pl.col("value").last() - at_start.first().fill_null(0.0)).alias("delta"))
        .sort(keys)
    )


def rum(result) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {k: b.get(k) for k in ("type", "variant", "backoff_ms", "ttfb_ms", "attempt")}
            for b in result.beacons
        ],
        schema={
            "type": pl.Utf8,
            "variant": pl.Utf8,
            "backoff_ms": pl.Float64,
            "ttfb_ms": pl.Float64,
            "attempt": pl.Int64,
        },
    )


def test_both_engines_run_the_one_plan(scenario, runs):
    """One plan, two engines: each starts exactly the planned visits (arrival, variant,
    departure), and the sessions their clients produce agree per variant."""
    sockets, simulated = runs
    plan = session_plan(scenario)
    assert len(plan) > 40
    assert simulated.visits == plan
    assert sockets.visits == plan
    for name, truth in simulated.labels["truth"].items():
        planned = sum(1 for p in plan if p.variant == name)
        assert planned == truth["sessions"] - truth["manual_refreshes"]
        other = sockets.labels["truth"][name]
        assert planned == other["sessions"] - other["manual_refreshes"]
    for result in (sockets, simulated):  # events: beacons emitted, kept or not
        assert result.events >= len(result.beacons) > 0


def test_connection_counts_agree(runs):
    """Connections opened in the window, per variant: a conditional binomial test (the
    two counts as Poisson; shared traffic only makes the real spread smaller)."""
    sockets, simulated = runs
    a = window_delta(sockets.samples, "ws_connections_total")
    b = window_delta(simulated.samples, "ws_connections_total")
    for (variant, x), (_, y) in zip(a.iter_rows(), b.iter_rows(), strict=True):
        assert x > 20 and y > 20, f"{variant}: too few connections to compare ({x}, {y})"
        test = stats.binomtest(int(x), int(x + y), 0.5)
        assert test.pvalue > ALPHA, f"{variant}: sockets {x} vs simulated {y} connections"


def test_close_code_mix_agrees(runs):
    """Closes by code in the window (both variants): chi-square test of homogeneity;
    codes expected fewer than 5 times are pooled."""
    sockets, simulated = runs
    counts = []
    for result in runs:
        delta = window_delta(result.samples, "ws_closes_total", by="code")
        counts.append(dict(delta.group_by("code").agg(pl.col("delta").sum()).iter_rows()))
    codes = sorted(set(counts[0]) | set(counts[1]))
    table = np.array([[c.get(code, 0.0) for code in codes] for c in counts])
    expected = table.sum(axis=0) * table.sum(axis=1, keepdims=True) / table.sum()
    keep = expected.min(axis=0) >= 5
    table = np.column_stack([table[:, keep], table[:, ~keep].sum(axis=1)])
    table = table[:, table.sum(axis=0) > 0]
    assert {"1011", "1012"} <= set(np.array(codes)[keep]), codes
    result = stats.chi2_contingency(table)
    assert result.pvalue > ALPHA, f"codes {codes}: {table.tolist()}"


def test_reconnect_attempt_mix_agrees(runs):
    """How many reconnects were first, second, third-or-later attempts: chi-square."""
    mixes = [
        rum(r)
        .filter(pl.col("type") == "ws.reconnect_scheduled")
        .select(pl.col("attempt").clip(upper_bound=3))["attempt"]
        .value_counts()
        for r in runs
    ]
    joined = mixes[0].join(mixes[1], on="attempt", how="full", coalesce=True).fill_null(0)
    table = joined.sort("attempt").select(pl.exclude("attempt")).to_numpy().T
    table = table[:, table.sum(axis=0) > 0]
    assert table[:, 0].min() > 50  # first attempts after errors, drops and the restart
    if table.shape[1] > 1:
        assert stats.chi2_contingency(table).pvalue > ALPHA, table.tolist()


def test_reconnect_delays_agree_per_attempt(runs):
    """backoff_ms the policies drew, per attempt number (the delay's definition: backoff
    for that attempt, advice floor, jitter): two-sample KS test for every attempt number
    with at least 20 reconnects in both engines."""
    frames = [rum(r).filter(pl.col("type") == "ws.reconnect_scheduled") for r in runs]
    compared = 0
    for attempt in range(1, 11):
        delays = [f.filter(pl.col("attempt") == attempt)["backoff_ms"].to_numpy() for f in frames]
        if min(len(d) for d in delays) < 20:
            continue
        compared += 1
        result = stats.ks_2samp(*delays)
        assert result.pvalue > ALPHA, f"attempt {attempt}: {[np.median(d) for d in delays]}"
    assert compared >= 1


def _ttfb_samples(runs, shift: float = 0.0):
    sockets, simulated = runs
    observed = np.array([x for values in sockets.server_ttfb.values() for _, x in values])
    drawn = rum(simulated).filter(pl.col("type") == "ws.ttfb")["ttfb_ms"].to_numpy() / 1000.0
    lag = np.random.default_rng(0).choice(np.array(sockets.ttfb_lag), size=len(drawn))
    return observed, drawn + lag + shift


def test_ttfb_distribution_agrees_once_lag_is_accounted_for(runs):
    """Server-side TTFB on sockets vs simulated TTFB plus the measured loop lag (KS)."""
    observed, expected = _ttfb_samples(runs)
    assert len(observed) > 300 and len(expected) > 300
    result = stats.ks_2samp(observed, expected)
    assert result.pvalue > ALPHA, (
        f"p50 {np.median(observed):.3f} vs {np.median(expected):.3f} s, KS {result.statistic:.3f}"
    )


def test_ttfb_comparison_catches_a_150ms_regression(runs):
    """The same test must reject when the expectation is off by the gate's +150 ms."""
    observed, expected = _ttfb_samples(runs, shift=0.150)
    assert stats.ks_2samp(observed, expected).pvalue < ALPHA


def test_metrics_are_scraped_on_the_virtual_grid_with_a_variant_label(scenario, runs):
    sockets, _ = runs
    samples = sockets.samples
    assert set(samples["variant"].unique()) == {"control", "canary"}
    times = samples["timestamp"].unique().sort()
    step = times.diff().drop_nulls().dt.total_seconds().unique().to_list()
    assert step == [scenario.scrape_interval]
    assert times[0] == scenario.start
    assert len(times) == int(scenario.duration // scenario.scrape_interval) + 1
    assert {"ws_assistant_ttfb_seconds_bucket", "ws_closes_total"} <= set(samples["metric"])


def test_dataset_folder_reads_back(runs, tmp_path):
    sockets, _ = runs
    folder = write_dataset(sockets, tmp_path / "ds")
    samples = read_openmetrics(folder / "metrics.om")
    assert samples.height == sockets.samples.height
    beacons = read_rum(folder / "rum.ndjson.gz")
    assert beacons.bad_lines == 0
    assert beacons.frame.height == len(sockets.beacons)
    labels = (folder / "labels.json").read_text()
    assert '"engine": "sockets"' in labels


def test_unsupported_scenarios_are_refused_before_running(scenario):
    spec = dict(SPEC, timeline=[{"kind": "network_outage", "start": "1m", "end": "2m"}])
    with pytest.raises(UsageError, match=r"timeline\[0\] \(network_outage\)"):
        SocketsFleet(parse_scenario(spec))


def test_cli_refuses_a_scenario_the_sockets_engine_cannot_act_out(tmp_path, capsys):
    from wsanalysis.cli import main

    code = main(["simulate", "network_outage", "--out", str(tmp_path / "x"), "--engine", "sockets",
                 "--quiet"])  # fmt: skip
    assert code == 3 and "fix:" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

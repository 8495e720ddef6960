# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Canary evaluation
#
# Is the canary at least as good as its control? Each gate of the profile compares the
# canary with control (or with an absolute bound) on the same window; the verdict is
# **GO** only when every gate passes, **NO-GO** when any gate shows harm, and
# **INCONCLUSIVE** when the data cannot settle a gate. Missing data is never a GO.
#
# Run headless with `wsanalysis report canary --param data=DIR` (or `wsanalysis canary`);
# open the injected notebook in JupyterLab with `--prepare-only`.

# %%
import wsanalysis
from wsanalysis.report import canary, figures
from wsanalysis.report.html import banner_html, display_html, table_html
from wsanalysis.times import parse_duration

# %% tags=["parameters"]
data: str | None = "../data/sample"  # dataset folder with metrics.om and/or RUM (or: prometheus)
prometheus: str | None = None  # Prometheus URL; credentials only from WSANALYSIS_PROM_* env
start: str | None = None  # window start, RFC 3339 or epoch seconds (None: the data's own)
end: str | None = None  # window end, RFC 3339 or epoch seconds (None: the data's own)
rum: str | None = None  # RUM beacons (NDJSON[.gz], Parquet, Datadog export), with prometheus
gates: str | None = None  # gate file, YAML (None: the production default gates)
profile: str = "canary"  # gate profile of the gate file (canary, staging)
canary_share: float | None = None  # declared canary traffic share, e.g. 0.1 (ratio check)
sequential: bool = False  # anytime-valid mode for a pipeline that looks repeatedly
look: str = "5m"  # sequential: time between looks
horizon: str = "48h"  # sequential: planned canary length
variant_label: str = "variant"  # label and RUM field naming the variant
telemetry: str | None = None  # telemetry mapping (YAML): your metric, label, variant, beacon names
bucket: str = "10m"  # time bucket of the charts
output_dir: str = "."  # folder where verdict.json is written

# %%
verdict = wsanalysis.judge(
    data,
    prometheus=prometheus,
    start=start,
    end=end,
    rum=rum,
    gates=gates,
    profile=profile,
    canary_share=canary_share,
    sequential=sequential,
    look=look,
    horizon=horizon,
    variant_label=variant_label,
    telemetry=telemetry,
    frames=True,  # every series and RUM field: the charts below read more than the gates
)
verdict_path = canary.write_verdict(verdict, output_dir)
samples, beacons, window = (
    verdict.data.samples,
    verdict.data.beacons,
    verdict.data.resolved_window(),
)
chart_bucket = parse_duration(bucket)
display_html(banner_html(verdict.overall, verdict.reason), role="banner")

# %% [markdown]
# ## Gates
#
# One row per gate: the canary's and control's figures, the difference with its 95%
# confidence interval (× for ratios), the threshold the canary must respect, the
# decision and the sentence that explains it. `critical` gates are the ones a release
# must never break.

# %%
display_html(table_html(canary.gate_rows(verdict.to_json()), "decision"))

# %% [markdown]
# ### How each gate settles
#
# Each gate's confidence interval as the window grew, on the gate's own scale, between
# its two lines: the **bound** (where harm starts: a lower limit beyond it fails the
# gate) and the **tolerance** (harm that must never pass: an upper limit inside it
# passes the gate). The dotted band projects the interval at the observed traffic until
# the gate would settle; `settle_in_s` in `verdict.json` is that wait.

# %%
figures.show(figures.settle_figure(canary.settle_paths(verdict)))

# %% [markdown]
# ## Evidence
#
# The production dashboard's panels, canary against control, over the same window.
#
# ### Close codes over time
#
# Closes per time bucket, stacked by WebSocket close code, one panel per variant (the
# canary carries a fraction of the traffic, so the scales differ: compare shapes).

# %%
figures.show(
    figures.close_codes_figure(
        figures.close_codes_over_time(samples, beacons, window, chart_bucket)
    )
)

# %% [markdown]
# The commonest close reasons the clients reported (RUM `ws.close`):

# %%
display_html(table_html(figures.close_reasons(beacons)))

# %% [markdown]
# ### Connection durations
#
# Left, the server's duration histogram as shares of connections; right, Kaplan–Meier
# survival from the clients' beacons, connections still open at the end counted as
# censored (dropping them would bias durations down), with 95% bands.

# %%
figures.show(
    figures.durations_figure(
        figures.duration_distribution(samples), figures.survival_curves(beacons, window)
    )
)

# %% [markdown]
# ### Reconnect backoff over time
#
# Backoff the clients scheduled before reconnecting (RUM `backoff_ms`): median (solid)
# and p90 (dotted). A storm shows as many reconnects with short backoffs.

# %%
figures.show(
    figures.lines_by_variant(
        figures.backoff_over_time(beacons, window, chart_bucket),
        "median_ms",
        "Reconnect backoff over time",
        "backoff (ms)",
        dash="p90_ms",
    )
)

# %% [markdown]
# ### p95 time-to-first-byte
#
# From a user's message to the first assistant frame, 95th percentile per bucket.

# %%
figures.show(
    figures.lines_by_variant(
        figures.ttfb_p95_over_time(samples, beacons, window, chart_bucket),
        "p95_seconds",
        "p95 time-to-first-byte",
        "seconds",
    )
)

# %% [markdown]
# ### Frames sent by event

# %%
figures.show(figures.frames_figure(figures.frames_by_event(samples, window, chart_bucket)))

# %% [markdown]
# ## Inputs
#
# What this verdict was computed from; the same inputs give the same verdict.

# %%
display_html(table_html(canary.input_rows(verdict.to_json())))

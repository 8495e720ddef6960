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
# # Incident analysis
#
# What happened to the WebSocket service in this window? Every detector the data allows
# runs (reconnect storms, thundering herds, close-code spikes, outages, restarts,
# delivery, connection survival, time-to-first-byte); each finding is one bounded
# episode on one variant, with its severity, the numbers behind it and one sentence for
# the postmortem. A detector that could not run says why.
#
# Run headless with `wsanalysis report incident --param data=DIR`; open the injected
# notebook in JupyterLab with `--prepare-only`.

# %%
import wsanalysis
from wsanalysis.incident.timeline import figure as timeline_figure
from wsanalysis.incident.timeline import timeline
from wsanalysis.report import figures, incident
from wsanalysis.report.html import banner_html, display_html, table_html
from wsanalysis.times import parse_duration

# %% tags=["parameters"]
data: str | None = "../data/network_outage"  # dataset folder with metrics.om and/or RUM (or: prometheus)
prometheus: str | None = None  # Prometheus URL; credentials only from WSANALYSIS_PROM_* env
start: str | None = None  # window start, RFC 3339 or epoch seconds (None: the data's own)
end: str | None = None  # window end, RFC 3339 or epoch seconds (None: the data's own)
rum: str | None = None  # RUM beacons (NDJSON[.gz], Parquet, Datadog export), with prometheus
rum_sample: float | None = None  # share of sessions the RUM beacons keep, in (0, 1] (None: the telemetry file's, labels.json's, else 1)
variant_label: str = "variant"  # label and RUM field naming the variant
telemetry: str | None = None  # telemetry mapping (YAML): your metric, label, variant, beacon names
bucket: str = "10m"  # time bucket of the evidence charts (the timeline is per minute)
output_dir: str = "."  # folder where findings.json is written

# %%
analysis = wsanalysis.incident(
    data,
    prometheus=prometheus,
    start=start,
    end=end,
    rum=rum,
    rum_sample=rum_sample,
    variant_label=variant_label,
    telemetry=telemetry,
)
report = incident.report_of(analysis)
findings_path = incident.write_findings(report, output_dir)
samples, beacons, window = report.data.samples, report.data.beacons, report.data.window
chart_bucket = parse_duration(bucket)
display_html(banner_html(report.document["verdict"], report.document["reason"]), role="banner")

# %% [markdown]
# ## Episodes
#
# Findings that overlap in time, on any variant, are one episode. `scope` says who it hit:
# `canary` or `control` when one variant was hit beyond the other, `fleet` when both were
# hit alike (excess events per connection, canary against control, with the judge's rate
# statistics). Most severe first; at equal severity a canary-only episode comes first.

# %%
display_html(table_html(incident.episode_rows(report.episodes)))

# %% [markdown]
# ## Findings
#
# The evidence inside the episodes, one per detector and variant. Most severe first. `minutes` is how long the episode lasted; the sentence says what
# happened, to whom, and how bad it was.

# %%
display_html(table_html(incident.finding_rows(report.findings)))

# %% [markdown]
# ## Timeline
#
# Per minute and variant: server closes by code, client reconnect attempts, give-ups and
# offline events. Findings are the shaded spans, server restarts the dashed lines.

# %%
figures.show(timeline_figure(timeline(report.data, report.findings)))

# %% [markdown]
# ## Evidence
#
# ### The numbers behind each finding

# %%
display_html(table_html(incident.evidence_rows(report.findings)))

# %% [markdown]
# ### Close codes over time
#
# Closes per time bucket, stacked by WebSocket close code, one panel per variant.

# %%
figures.show(
    figures.close_codes_figure(
        figures.close_codes_over_time(samples, beacons, window, chart_bucket)
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
# The commonest close reasons the clients reported (RUM `ws.close`):

# %%
display_html(table_html(figures.close_reasons(beacons)))

# %% [markdown]
# ### Detectors that did not run

# %%
display_html(table_html(incident.not_run_rows(report.analysis)))

# %% [markdown]
# ## Inputs
#
# What these findings were computed from; the same inputs give the same findings.

# %%
display_html(table_html(incident.input_rows(report.document)))

"""Reports: papermill-executed notebooks, the manager's HTML, the pipeline's verdict.

- `parameters` — a notebook's `parameters` cell as a typed spec; validation before any
  kernel starts (unknown names, types, coercion of `--param` text and YAML values).
- `kinds` — the reports there are (`ReportKind`: notebook, result file, rules beyond
  types such as "exactly one of data / prometheus", paths that must exist, no secrets).
- `execute` — papermill in-process with an explicit kernel, cwd and timeout; writes
  `report.ipynb`, `report.html` and the result file with the run's metadata; exit codes.
- `html` — the self-contained page built from the executed notebook's outputs.
- `figures` — the dashboard panels: tidy frames (tested) and plotly figures.
- `canary` — what the canary notebook computes (load as `wsanalysis judge` does, judge,
  the gate table).

Adding a report (e.g. incidents): write `notebooks/<name>.py` (jupytext percent, one
`parameters` cell including `output_dir`, writing its result file there), pair it to
`.ipynb`, and add one `ReportKind` to `kinds.KINDS`; `wsanalysis report <name>` follows.
"""

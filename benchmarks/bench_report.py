"""Report end-to-end time against the floor of a kernel running an empty notebook.

    .venv/bin/python benchmarks/bench_report.py [--repeat 3]

The floor is papermill starting the same kernel and executing a notebook with one
empty cell, measured in the same run; the ratio says what the report itself costs
(loading the data, the judge, the charts, the HTML) on top of what any papermill
report pays. Prints a markdown table: median seconds, ratio, HTML size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from wsanalysis.report.execute import KERNEL_NAME, _import_papermill, execute
from wsanalysis.report.kinds import CANARY

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
CASES = {
    "canary on data/sample (NO_GO)": {"data": str(SAMPLE), "canary_share": "0.1"},
    "staging on data/sample (GO)": {"data": str(SAMPLE), "profile": "staging"},
}


def empty_notebook_seconds(work: Path) -> float:
    papermill = _import_papermill()
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(""))
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "language": "python"}
    source = work / "empty.ipynb"
    nbformat.write(notebook, source)
    began = time.perf_counter()
    papermill.execute_notebook(
        str(source), str(work / "empty-out.ipynb"), kernel_name=KERNEL_NAME, progress_bar=False
    )
    return time.perf_counter() - began


def report_seconds(values: dict[str, str], out: Path) -> tuple[float, int, int]:
    began = time.perf_counter()
    run = execute(CANARY, CANARY.validate(values), out)
    seconds = time.perf_counter() - began
    return seconds, run.html.stat().st_size, run.exit_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        empty_notebook_seconds(work)  # warm the disk cache and imports once
        floor = statistics.median(empty_notebook_seconds(work) for _ in range(args.repeat))
        rows = [("empty notebook (floor)", floor, 1.0, None, None)]
        for name, values in CASES.items():
            runs = [report_seconds(values, work / f"{name[:6]}-{i}") for i in range(args.repeat)]
            seconds = statistics.median(r[0] for r in runs)
            rows.append((name, seconds, seconds / floor, runs[0][1], runs[0][2]))
    print(f"repeat {args.repeat}, median wall seconds\n")
    print("| run | seconds | × floor | report.html | exit |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, ratio, size, code in rows:
        size_text = f"{size / 1e6:.2f} MB" if size else "—"
        print(f"| {name} | {seconds:.2f} | {ratio:.2f} | {size_text} | {code if code is not None else '—'} |")  # fmt: skip


if __name__ == "__main__":
    main()

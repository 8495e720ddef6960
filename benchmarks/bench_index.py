"""The release history over 1,000 `verdict.json` files, against the floor of reading them.

    .venv/bin/python benchmarks/bench_index.py [--files 1000] [--repeat 3]

The folder is made once from three real verdicts (`wsanalysis judge` on bundled data: a
fixed-horizon GO, a sequential NO_GO, a sequential INCONCLUSIVE), each copy stamped with
its own service, release, environment and finish time over 26 weeks, one folder per run
(two levels deep, as a team files them). Measured in the same run, each the median of
`--repeat`:
- the floor: read every file and `json.loads` it, nothing else;
- `read_history`: the rows the page is built from;
- `write_index`: the whole page (rows, trends, charts, HTML, written atomically);
- `wsanalysis report index DIR`: the command in a fresh process, start-up included,
  which is what a person waits for (target: under 10 s on this machine).
Prints a markdown table: seconds, ratio to the floor, page size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wsanalysis.cli import main as cli
from wsanalysis.report.history import read_history, result_files
from wsanalysis.report.index import write_index
from wsanalysis.run_metadata import stamp

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = {
    "GO": ["--data", "data/aa_baseline", "--canary-share", "0.1"],
    "NO_GO": ["--data", "data/error_rate_x2", "--canary-share", "0.1", "--sequential"],
    "INCONCLUSIVE": ["--data", "data/ttfb_p95_plus150", "--sequential"],
}
SERVICES = ("checkout", "chat", "assistant", "search", "payments")
ENVIRONMENTS = ("production", "staging", "eu-west")


def templates(work: Path) -> list[dict]:
    documents = []
    for verdict, argv in TEMPLATES.items():
        out = work / f"{verdict}.json"
        argv = [str(REPO / a) if a.startswith("data/") else a for a in argv]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cli(["judge", *argv, "--out", str(out)])
        assert code in (0, 1, 2), code
        document = json.loads(out.read_text())
        assert document["verdict"] == verdict, (verdict, document["verdict"])
        documents.append(document)
    return documents


def make_folder(root: Path, documents: list[dict], files: int) -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    for n in range(files):
        document = dict(documents[n % len(documents)])
        service = SERVICES[n % len(SERVICES)]
        names = {"service": service, "release": f"v1.{n // 7}.{n % 7}",
                 "environment": ENVIRONMENTS[n % len(ENVIRONMENTS)]}  # fmt: skip
        finished = start + timedelta(hours=4.3 * n)  # 1,000 runs over ~26 weeks
        stamp(document, "canary", producer="judge", names=names, finished=finished)
        path = root / service / f"run-{n:04d}" / "verdict.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")


def floor_seconds(root: Path) -> float:
    began = time.perf_counter()
    for path in result_files(root):
        json.loads(path.read_bytes())
    return time.perf_counter() - began


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "reports"
        make_folder(root, templates(work), args.files)
        size = sum(p.stat().st_size for p in result_files(root))
        floor_seconds(root)  # warm the page cache once
        page = work / "index.html"
        command = [sys.executable, "-m", "wsanalysis.cli", "report", "index", str(root),
                   "--out", str(page)]  # fmt: skip
        rounds: dict[str, list[float]] = {"floor": [], "rows": [], "page": [], "command": []}
        for _ in range(args.repeat):  # interleaved, so the machine's load hits all alike
            rounds["floor"].append(floor_seconds(root))
            rounds["rows"].append(timed(lambda: read_history(root)))
            rounds["page"].append(timed(lambda: write_index(root, page)))
            rounds["command"].append(
                timed(lambda: subprocess.run(command, check=True, capture_output=True))
            )
        runs = len(read_history(root).runs)
        assert runs == args.files, runs
        median = {k: statistics.median(v) for k, v in rounds.items()}
        page_mb = page.stat().st_size / 1e6
    names = {
        "floor": "read + `json.loads` every file (floor)",
        "rows": "`read_history` (the rows)",
        "page": "`write_index` (rows, trends, charts, page)",
        "command": "`wsanalysis report index DIR` (fresh process)",
    }
    print(f"{args.files:,} verdict.json files, {size / 1e6:.1f} MB; median of {args.repeat}\n")
    print("| step | seconds | × floor | rounds |")
    print("|---|---:|---:|---|")
    for key, name in names.items():
        spread = ", ".join(f"{s:.2f}" for s in rounds[key])
        print(f"| {name} | {median[key]:.2f} | {median[key] / median['floor']:.1f} | {spread} |")
    print(f"\nindex.html: {page_mb:.2f} MB")


if __name__ == "__main__":
    main()

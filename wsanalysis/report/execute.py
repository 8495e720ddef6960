"""Run a report: validate, inject, execute with papermill, render, and say how it went.

Papermill runs in this process with an explicit kernel (the `python3` kernel of the
interpreter running us: jupyter_client maps its `python` to `sys.executable`, so a
fresh venv in CI needs only ipykernel installed), the output folder as working
directory, and a per-cell timeout. The exit code is the pipeline's: the verdict's
0/1/2, and 3 for anything else: bad parameters, a failed cell, a timeout, a dead
kernel (the failure's kind, in the result file and on stderr, tells them apart). The
result file is written atomically, so a pipeline never reads half of one.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from wsanalysis.errors import UsageError
from wsanalysis.files import write_text_atomic
from wsanalysis.report.html import SIZE_BUDGET, Failure, render_page
from wsanalysis.report.kinds import OUTPUT_PARAMETER, ReportKind
from wsanalysis.version import __version__

EXIT_FAILED = 3
EXIT_KERNEL_DIED = 3  # was 4: the contract has one code for every failure
KERNEL_NAME = "python3"
NOTEBOOK_FILE = "report.ipynb"
HTML_FILE = "report.html"
DEFAULT_TIMEOUT = 600
VERSIONED = ("wsanalysis", "polars", "numpy", "scipy", "plotly", "papermill", "ipykernel")


@dataclass(frozen=True)
class ReportRun:
    """Where a report went and how it ended."""

    run_id: str
    out: Path
    exit_code: int
    document: dict[str, Any] | None
    failure: Failure | None
    seconds: float

    @property
    def notebook(self) -> Path:
        return self.out / NOTEBOOK_FILE

    @property
    def html(self) -> Path:
        return self.out / HTML_FILE


class _KnownParameters(logging.Filter):
    """Papermill warns "Passed unknown parameter" when it cannot read `T | None`
    annotations; the spec has already checked every name, so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


logging.getLogger("papermill").addFilter(_KnownParameters())


# -- issue 18: the kernel talks over Unix sockets, not TCP ---------------------------------
def _kernel_manager_class():
    """A kernel manager whose kernel listens on Unix domain sockets in Jupyter's runtime
    folder (owner-only) instead of loopback TCP: nothing to eavesdrop on, and ipykernel's
    "running over TCP without encryption" warning has no cause. TCP where there is no IPC."""
    import os

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir
    from jupyter_core.utils import ensure_dir_exists

    if os.name != "posix":
        return AsyncKernelManager

    class UnixSocketKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

        def _ip_default(self) -> str:
            # a fresh machine has no runtime folder yet, and zmq does not create it
            runtime = Path(jupyter_runtime_dir())
            ensure_dir_exists(runtime, mode=0o700)
            return str(runtime / f"kernel-{uuid.uuid4().hex[:12]}-ipc")

    return UnixSocketKernelManager


def _import_papermill():
    """papermill, without jsonschema's optional `rfc3987_syntax`, which builds a lark
    grammar at import (its cost: benchmarks/RESULTS-internals.md); only an IRI format
    check is lost."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import papermill

    return papermill


def new_run_id(kind: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{stamp}-{uuid.uuid4().hex[:6]}"


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def kernel_name() -> str:
    """The kernel papermill starts; refuses early when Jupyter cannot find one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        raise UsageError(
            f"no Jupyter kernel {KERNEL_NAME!r} for {sys.executable}",
            f"{sys.executable} -m pip install ipykernel && "
            f"{sys.executable} -m ipykernel install --sys-prefix",
        ) from None
    return KERNEL_NAME


def prepare(kind: ReportKind, params: dict[str, Any], out: Path) -> Path:
    """The notebook with parameters injected, for an analyst to open in JupyterLab."""
    papermill = _import_papermill()
    out.mkdir(parents=True, exist_ok=True)
    target = out / NOTEBOOK_FILE
    papermill.execute_notebook(
        str(kind.notebook),
        str(target),
        parameters=params,
        prepare_only=True,
        kernel_name=KERNEL_NAME,
        progress_bar=False,
    )
    return target


def _failure(error: BaseException) -> tuple[Failure, int]:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        return Failure("failed cell", f"{error.ename}: {error.evalue}", error.cell_index), 3
    if isinstance(error, CellTimeoutError):
        return Failure("timeout", str(error).splitlines()[0]), EXIT_FAILED
    if isinstance(error, DeadKernelError):
        return Failure("kernel died", str(error) or "the kernel process exited"), EXIT_KERNEL_DIED
    raise error


def execute(
    kind: ReportKind,
    params: dict[str, Any],
    out: Path | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    run_id: str | None = None,
) -> ReportRun:
    """Execute the notebook, write report.ipynb, report.html and the result file."""
    papermill = _import_papermill()
    began = time.perf_counter()
    run_id = run_id or new_run_id(kind.name)
    out = (out or Path("reports") / run_id).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / kind.result_file
    result_path.unlink(missing_ok=True)  # a stale verdict must never pass for this run's
    params = {**params, OUTPUT_PARAMETER: str(out)}
    failure, exit_code = None, None
    try:
        papermill.execute_notebook(
            str(kind.notebook),
            str(out / NOTEBOOK_FILE),
            parameters=params,
            kernel_name=kernel_name(),
            cwd=str(out),
            execution_timeout=timeout,
            progress_bar=False,
            request_save_on_cell_execute=False,
            kernel_manager_class=_kernel_manager_class(),
        )
    except Exception as error:  # noqa: BLE001 — classified, or re-raised by _failure
        failure, exit_code = _failure(error)
    document = json.loads(result_path.read_text()) if result_path.exists() else None
    if failure is None and document is None:
        failure = Failure("missing result", f"the notebook did not write {kind.result_file}")
        exit_code = EXIT_FAILED
    if failure is None:
        exit_code = kind.exit_code(document)
    if failure is not None:
        # A failed run never leaves a result a pipeline could read as GO.
        document = {
            "verdict": None,
            "reason": f"report failed ({failure.kind}): {failure.message}",
            "exit_code": exit_code,
            "failure": {"kind": failure.kind, "message": failure.message, "cell": failure.cell},
        }
    seconds = time.perf_counter() - began
    document["run"] = {
        "run_id": run_id,
        "report": kind.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "parameters": params,
        "package_version": __version__,
        "versions": package_versions(),
        "kernel": KERNEL_NAME,
        "notebook": str(kind.notebook),
    }
    write_text_atomic(result_path, json.dumps(document, indent=2, default=str) + "\n")
    render(kind, out, document, failure)
    return ReportRun(run_id, out, int(exit_code), document, failure, seconds)


def context_line(document: dict[str, Any]) -> str:
    """Profile, source and window, under the banner: what the verdict is about."""
    parts = []
    if document.get("profile"):
        parts.append(f"profile {document['profile']}")
    inputs = document.get("inputs") or {}
    source = inputs.get("data") or inputs.get("prometheus")
    if source:
        parts.append(f"data {source}")
    window = document.get("window") or {}
    if window.get("start") and window.get("end"):
        parts.append(f"window {window['start']} → {window['end']}")
    return " · ".join(parts)


def render(kind: ReportKind, out: Path, document: dict[str, Any], failure: Failure | None) -> Path:
    """report.html from the executed (or partly executed) notebook."""
    path = out / NOTEBOOK_FILE
    notebook = json.loads(path.read_text()) if path.exists() else {"cells": []}
    run = document.get("run", {})
    page = render_page(
        notebook,
        title=f"{kind.title} — {run.get('run_id', '')}",
        document=document if failure is None else None,
        failure=failure,
        footer=f"run {run.get('run_id', '')} · {run.get('created', '')} · wsanalysis {__version__}",
        context=context_line(document) if failure is None else "",
    )
    target = out / HTML_FILE
    target.write_text(page, encoding="utf-8")
    if len(page.encode()) > SIZE_BUDGET:
        print(
            f"warning: {target} is {len(page.encode()) / 1e6:.1f} MB, over the 6 MB budget",
            file=sys.stderr,
        )
    return target

"""A newcomer's first run prints nothing they cannot act on (issue 18)."""

from __future__ import annotations

import asyncio
import tomllib
from importlib import metadata

from tests.notebooks.conftest import REPO


def test_licence_is_an_spdx_string_with_a_setuptools_that_reads_it():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"  # not the deprecated table
    assert "setuptools>=77" in project["build-system"]["requires"]  # PEP 639 support
    assert metadata.metadata("wsanalysis")["License-Expression"] == "Apache-2.0"


def test_report_kernels_listen_on_unix_sockets():
    from jupyter_core.paths import jupyter_runtime_dir

    from wsanalysis.report.execute import _kernel_manager_class

    manager = _kernel_manager_class()(kernel_name="python3")
    assert manager.transport == "ipc"
    assert manager.ip.endswith("-ipc") and manager.ip.startswith(jupyter_runtime_dir())


def test_a_report_kernel_starts_on_a_machine_without_a_jupyter_runtime_folder(
    tmp_path, monkeypatch
):
    """zmq does not create the socket's folder: the first report on a fresh machine died
    with "Kernel died before replying to kernel_info" until the manager made it."""
    from wsanalysis.report.execute import _kernel_manager_class

    runtime = tmp_path / "fresh" / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))

    async def run() -> str:
        manager = _kernel_manager_class()(kernel_name="python3")
        await manager.start_kernel()
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=120)
            reply = await client.execute_interactive("print(6 * 7)", timeout=60)
            return reply["content"]["status"]
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)

    assert asyncio.run(run()) == "ok"
    assert runtime.is_dir() and runtime.stat().st_mode & 0o777 == 0o700

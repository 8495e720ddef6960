"""A newcomer's first run prints nothing they cannot act on (issue 18)."""

from __future__ import annotations

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

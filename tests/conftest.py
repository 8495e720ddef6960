"""Shared fixtures; area-specific fixtures live in plugins named below.

`tests.strict_ci`: under CI=true a skip for a missing prometheus, promtool or chromium
fails the test instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.prometheus.fixtures", "tests.strict_ci", "pytester"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def sample_dataset() -> Path:
    """The bundled sample dataset folder (data/sample)."""
    return REPO / "data" / "sample"

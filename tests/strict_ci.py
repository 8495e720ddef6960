"""Under CI=true, a test that skips because a real component is missing fails instead.

`make test` installs prometheus, promtool and chromium; a broken install step must not
turn their tests into silent skips that pass the build. Locally the skip stays a skip
(and `-rs` in pytest's options prints every one of them with its reason).
"""

from __future__ import annotations

import os

import pytest

REAL_COMPONENTS = ("prometheus", "promtool", "chromium")


def strict() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail") or not strict():
        return
    reason = _reason(report)
    missing = [name for name in REAL_COMPONENTS if name in reason.lower()]
    if missing:
        report.outcome = "failed"
        report.longrepr = (
            f"CI=true: this test needs {', '.join(missing)}, which is missing here "
            f"({reason}); CI must install it (scripts/ensure_system_deps.sh), not skip"
        )

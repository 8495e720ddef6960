"""CI strictness: a skip for a missing real component fails under CI=true, and only then."""

from __future__ import annotations

import pytest

TEST = """
import pytest

def test_needs_prometheus():
    pytest.skip("prometheus and promtool not installed: run `apt-get install prometheus`")

@pytest.mark.skipif(True, reason="needs Debian's chromium package")
def test_needs_chromium():
    pass

def test_skips_for_another_reason():
    pytest.skip("only on Python 3.13")
"""


# a skip at setup (skipif, or a fixture that skips) becomes an error; in the test, a failure
@pytest.mark.parametrize(("ci", "failed", "errors", "skipped"), [("true", 1, 1, 1), ("", 0, 0, 3)])
def test_missing_components_fail_only_under_ci(pytester, monkeypatch, ci, failed, errors, skipped):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(TEST)
    result = pytester.runpytest("-p", "tests.strict_ci", "-rs")
    result.assert_outcomes(failed=failed, errors=errors, skipped=skipped)
    if ci:
        result.stdout.fnmatch_lines(["*CI=true: this test needs prometheus*"])
    else:
        result.stdout.fnmatch_lines(["SKIPPED*prometheus and promtool not installed*"])

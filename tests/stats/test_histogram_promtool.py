"""histogram_quantile against real PromQL: `promtool test rules` evaluates the same
buckets with Prometheus's own engine and must agree to its comparison precision."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from wsanalysis.stats.quantiles import histogram_quantile

pytestmark = pytest.mark.prometheus

QS = [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]


def _cases(rng: np.random.Generator) -> list[tuple[list[str], list[float]]]:
    cases = []
    for i in range(24):
        k = int(rng.integers(2, 12))
        start = -1.0 if i % 6 == 0 else 0.0  # some histograms with non-positive first bounds
        bounds = np.round(start + np.cumsum(rng.uniform(0.05, 2.0, k)), 3)
        counts = np.cumsum(rng.integers(0, 50, k + 1)).astype(float)
        if i % 5 == 0:
            counts[k // 2] += 30  # non-monotonic: PromQL repairs it
        labels = [repr(float(b)) for b in bounds] + ["+Inf"]
        cases.append((labels, counts.tolist()))
    cases.append((["1", "1.0", "2", "+Inf"], [5.0, 5.0, 12.0, 20.0]))  # equal bounds, two labels
    return cases


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_histogram_quantile_equals_promql(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    series, exprs = [], []
    for i, (labels, counts) in enumerate(_cases(rng)):
        le = [math.inf if lab == "+Inf" else float(lab) for lab in labels]
        for lab, c in zip(labels, counts, strict=True):
            series.append({"series": f'h{i}_bucket{{le="{lab}"}}', "values": f"{c:g}"})
        for q in QS:
            value = histogram_quantile(q, le, counts)
            if math.isfinite(value):
                exprs.append(
                    {
                        "expr": f"histogram_quantile({q}, h{i}_bucket)",
                        "eval_time": "0m",
                        "exp_samples": [{"labels": "{}", "value": float(value)}],
                    }
                )
    spec = {
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": exprs}],
    }
    path = tmp_path / "quantiles.yml"
    path.write_text(yaml.safe_dump(spec))
    assert len(exprs) > 150
    run = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr

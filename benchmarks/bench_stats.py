"""Speed and accuracy of wsanalysis.stats, printed as markdown tables.

Run: .venv/bin/python benchmarks/bench_stats.py [--quick]

Speed: session-clustered p95-difference bootstrap (2000 resamples) and the Woodruff
interval (the default above 1 M samples) against scipy.stats.bootstrap (i.i.d.,
percentile, same resamples) measured in the same run.
Accuracy: A/A false-positive rate and A/B power of the rate comparison (robust vs plain
Poisson), Kayenta's classifier on autocorrelated A/A series, and the sequential test over
576 looks.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsanalysis.stats import kayenta, quantiles, rates, sequential  # noqa: E402


def clustered(rng: np.random.Generator, n: int, per_session: int = 20, shift: float = 0.0):
    sessions = max(1, n // per_session)
    ids = rng.integers(0, sessions, n)
    effect = rng.normal(0, 0.25, sessions)[ids]
    return np.exp(-0.5 + effect + rng.normal(0, 0.35, n)) + shift, ids


def bench_speed(quick: bool) -> None:
    rng = np.random.default_rng(0)
    print("\n### Speed: p95 difference with a 95% bootstrap interval, 2000 resamples\n")
    print("| samples per variant | method | seconds | CI width (ms) |")
    print("|---|---|---|---|")
    n_ref = 20_000 if quick else 100_000
    a, ia = clustered(rng, n_ref)
    b, ib = clustered(rng, n_ref)

    def diff(x, y, axis=-1):
        return np.quantile(x, 0.95, axis=axis) - np.quantile(y, 0.95, axis=axis)

    t0 = time.perf_counter()
    ref = stats.bootstrap(
        (a, b), diff, n_resamples=2000, method="percentile", batch=20, random_state=1
    )
    t_scipy = time.perf_counter() - t0
    w_scipy = (ref.confidence_interval.high - ref.confidence_interval.low) * 1000
    print(f"| {n_ref:,} | scipy.stats.bootstrap (i.i.d.) | {t_scipy:.2f} | {w_scipy:.1f} |")
    for method in ("bootstrap", "woodruff"):
        t0 = time.perf_counter()
        ours = quantiles.quantile_difference(
            a, np.arange(n_ref), b, np.arange(n_ref), n_resamples=2000, seed=1, method=method
        )
        t_ours = time.perf_counter() - t0
        w_ours = (ours.ci.high - ours.ci.low) * 1000
        print(
            f"| {n_ref:,} | wsanalysis {method}, i.i.d. (one session per sample) | "
            f"{t_ours:.2f} | {w_ours:.1f} |"
        )
        print(
            f"| | {method}: speed-up over scipy | **{t_scipy / t_ours:.0f}×** | "
            f"width ratio {w_ours / w_scipy:.3f} |"
        )
    for n in [n_ref, 1_000_000] + ([] if quick else [10_000_000]):
        a, ia = clustered(rng, n)
        b, ib = clustered(rng, n)
        widths = {}
        for method in ("bootstrap", "woodruff"):
            t0 = time.perf_counter()
            r = quantiles.quantile_difference(a, ia, b, ib, n_resamples=2000, seed=2, method=method)
            t = time.perf_counter() - t0
            widths[method] = (r.ci.high - r.ci.low) * 1000
            print(
                f"| {n:,} | wsanalysis {method}, clustered by session (~20/session) | {t:.2f} | "
                f"{widths[method]:.2f} |"
            )
        print(
            f"| | Woodruff / bootstrap width | | {widths['woodruff'] / widths['bootstrap']:.3f} |"
        )


def _rate_sim(rng: np.random.Generator, ratio: float, buckets: int = 60):
    t = np.arange(buckets)
    load = 4000.0 * (1 + 0.5 * np.sin(2 * np.pi * t / 1440.0 + rng.uniform(0, 6.3)))

    def ar1(phi: float, sigma: float) -> np.ndarray:
        x = np.empty(buckets)
        x[0] = rng.normal(0, sigma / math.sqrt(1 - phi**2))
        for i in range(1, buckets):
            x[i] = phi * x[i - 1] + rng.normal(0, sigma)
        return x

    common = ar1(0.9, 0.15)
    out = []
    for share, r in ((0.1, 0.02 * ratio), (0.9, 0.02)):
        exposure = rng.poisson(load * share).astype(float)
        mean = exposure * r * np.exp(common + ar1(0.6, 0.25)) * rng.gamma(4.0, 0.25, buckets)
        out += [rng.poisson(mean), exposure]
    return out


def bench_rates(runs: int) -> None:
    rng = np.random.default_rng(1)
    print(
        f"\n### Rates: error rate canary vs control, 1 h of 1-min buckets, 10% canary, {runs} runs\n"
    )
    print("Counts overdispersed (gamma) and autocorrelated (AR(1) on the log rate, shared φ=0.9")
    print("and per-variant φ=0.6), diurnal load. Share of runs whose two-sided 95% test rejects.\n")
    print(
        "| true ratio | robust (this), two-sided | robust, CI above 1 (canary worse) | plain Poisson, two-sided | median φ |"
    )
    print("|---|---|---|---|---|")
    for ratio in (1.0, 1.5, 2.0):
        robust = worse = poisson = 0
        phis = []
        for _ in range(runs):
            y, e, m, f = _rate_sim(rng, ratio)
            r = rates.compare_rates(y, e, m, f)
            robust += r.pvalue < 0.05
            worse += r.ci.low > 1.0
            phis.append(r.dispersion)
            poisson += rates.compare_rates(y, e, m, f, method="poisson").pvalue < 0.05
        print(
            f"| {ratio} | {robust / runs:.3f} | {worse / runs:.3f} | {poisson / runs:.3f} "
            f"| {np.median(phis):.1f} |"
        )


def bench_kayenta(runs: int) -> None:
    rng = np.random.default_rng(2)
    print(
        f"\n### Kayenta's classifier on A/A series (60 points, AR(1), {runs} runs, judge defaults)\n"
    )
    print("| AR(1) φ | share classified High or Low |")
    print("|---|---|")
    for phi in (0.0, 0.5, 0.9):
        bad = 0
        for _ in range(runs):
            series = []
            for _ in range(2):
                x = np.empty(60)
                x[0] = rng.normal(0, 1 / math.sqrt(1 - phi**2))
                for i in range(1, 60):
                    x[i] = phi * x[i - 1] + rng.normal()
                series.append(100 + 10 * x)
            r = kayenta.classify_mann_whitney(series[0], series[1])
            bad += r.label != "Pass"
        print(f"| {phi} | {bad / runs:.3f} |")


def bench_sequential(runs: int) -> None:
    rng = np.random.default_rng(3)
    looks = 576

    def sim(ratio: float):
        t = np.arange(looks)
        load = 60.0 * (1 + 0.5 * np.sin(2 * np.pi * t / 288))
        e = rng.poisson(load * 5).astype(float)
        f = rng.poisson(load * 45).astype(float)
        return rng.poisson(e * 0.02 * ratio), e, rng.poisson(f * 0.02), f

    print(f"\n### Sequential: looks every 5 min for 48 h (576 looks), alpha 0.05, {runs} runs\n")
    print("| true ratio | share stopped (NO-GO) | median minutes to stop |")
    print("|---|---|---|")
    for ratio in (1.0, 1.5, 2.0):
        stops = [sequential.sequential_rate_test(*sim(ratio)).stopped_at for _ in range(runs)]
        hit = [s for s in stops if s is not None]
        med = f"{5 * (np.median(hit) + 1):.0f}" if hit else "-"
        print(f"| {ratio} | {len(hit) / runs:.3f} | {med} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    args = parser.parse_args()
    runs = 100 if args.quick else 500
    bench_speed(args.quick)
    bench_rates(runs)
    bench_kayenta(runs)
    bench_sequential(runs)


if __name__ == "__main__":
    main()

"""Named scenarios of the traffic model: A/A days (quiet, bursty, a harmless TTFB shift)
and labelled incidents, each a function of the seed and the hours it lasts.

Incidents are placed by hours from the window's start (so a 12 h and a 24 h run hold
the same incident); the labels name each one's kind, the variants it hit and, for a
level shift, every signal it moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from wsanalysis.traffic.model import Inject, Traffic

CANARY, CONTROL, BOTH = ("canary",), ("control",), ("canary", "control")
BURSTY = {"load_sigma": 0.45, "load_minutes": 6.0, "batch_mean": 5.0, "error_shape": 0.12,
          "flaky_shape": 0.15, "burst_mean": 4.0, "auth_retries_mean": 4.0}  # fmt: skip
QUIET = {"load_sigma": 0.08, "batch_mean": 1.2}


def _make(injects: tuple[Inject, ...] = (), **knobs) -> Callable[..., Traffic]:
    def scenario(seed: int = 1, hours: float = 12.0) -> Traffic:
        return replace(Traffic(), seed=seed, hours=hours, injects=injects, **knobs)

    return scenario


SCENARIOS: dict[str, tuple[str, Callable[..., Traffic]]] = {
    "aa_quiet": ("A/A, calm load and few bursts.", _make(**QUIET)),
    "aa_bursty": (
        "A/A, batch arrivals, fast load swings, errors clustered on few users.",
        _make(**BURSTY),
    ),
    "aa_ttfb_plus30": (
        "A/A but every canary reply +30 ms: harmless, below the TTFB floor.",
        _make((Inject("ttfb", CANARY, 0.0, shift_ms=30.0),), **BURSTY),
    ),
    "auth_hour_x30": (
        "Canary 4401 closes x30 for one hour from 6 h (auth failures, each with refused retries).",
        _make(
            (
                Inject(
                    "rate",
                    CANARY,
                    6.0,
                    7.0,
                    signal="auth",
                    factor=30.0,
                    label="auth_spike",
                    signals=("auth",),
                ),
            )
        ),
    ),
    "errors_x2": (
        "Canary error bursts x2 over the whole window.",
        _make(
            (
                Inject(
                    "rate",
                    CANARY,
                    0.0,
                    signal="errors",
                    factor=2.0,
                    label="level_shift",
                    signals=("errors",),
                ),
            ),
            **BURSTY,
        ),
    ),
    "abnormal_x12": (
        "Canary abnormal closes (1006) x12 over the whole window.",
        _make(
            (
                Inject(
                    "rate",
                    CANARY,
                    0.0,
                    signal="1006",
                    factor=12.0,
                    label="level_shift",
                    signals=("1006", "reconnects"),
                ),
            )
        ),
    ),
    "shorter_x2": (
        "Canary connections about x2 shorter over the whole window (a lifetime "
        "cap closes them with 1001).",
        _make(
            (
                Inject(
                    "lifetime",
                    CANARY,
                    0.0,
                    lifetime_s=1440.0,
                    label="duration_regression",
                    signals=("duration", "reconnects"),
                ),
            )
        ),
    ),
    "errors_x3_since_6h": (
        "Canary error bursts x3 from 6 h to the end.",
        _make(
            (
                Inject(
                    "rate",
                    CANARY,
                    6.0,
                    signal="errors",
                    factor=3.0,
                    label="level_shift",
                    signals=("errors",),
                ),
            )
        ),
    ),
    "ttfb_plus150_since_4h": (
        "Canary replies +150 ms from 4 h to the end.",
        _make(
            (
                Inject(
                    "ttfb", CANARY, 4.0, shift_ms=150.0, label="ttfb_degradation", signals=("ttfb",)
                ),
            )
        ),
    ),
    "restarts": (
        "A control pod restarts at 3 h, the canary's only pod at 8 h.",
        _make(
            (
                Inject("restart", CONTROL, 3.0, pod=1, label="server_restart"),
                Inject("restart", CANARY, 8.0, label="server_restart"),
            )
        ),
    ),
    "outage": (
        "A network outage at 5 h for 20 minutes: 30% of every variant's users.",
        _make(
            (Inject("outage", BOTH, 5.0, 5.0 + 20 / 60, share=0.3, label="network_outage"),),
            **BURSTY,
        ),
    ),
    "storm": (
        "Canary sockets flap (1006 every ~30 s) for 20 minutes from 7 h.",
        _make(
            (
                Inject(
                    "storm",
                    CANARY,
                    7.0,
                    7.0 + 20 / 60,
                    every_s=30.0,
                    label="reconnect_storm",
                    signals=("1006", "reconnects"),
                ),
            )
        ),
    ),
    "error_spike_control": (
        "Control error bursts x8 for 30 minutes from 9 h.",
        _make(
            (
                Inject(
                    "rate",
                    CONTROL,
                    9.0,
                    9.5,
                    signal="errors",
                    factor=8.0,
                    label="error_spike",
                    signals=("errors",),
                ),
            )
        ),
    ),
}
#: Scenarios with no labelled incident: the false-alarm days.
AA = ("aa_quiet", "aa_bursty", "aa_ttfb_plus30")


def traffic(name: str, seed: int = 1, hours: float = 12.0) -> Traffic:
    if name not in SCENARIOS:
        raise KeyError(f"unknown traffic scenario {name!r}; one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name][1](seed=seed, hours=hours)

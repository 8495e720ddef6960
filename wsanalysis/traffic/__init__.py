"""A second traffic model, independent of the fleet simulator and of the detectors.

    python -m wsanalysis.traffic NAME --out DIR [--seed N] [--hours H]

`model.simulate(Traffic)` plays users, sessions and connections (batch arrivals on a
daily curve with load swings, heavy-tailed sessions, drops and errors clustered on a
few users, auth failures with refused retries) plus injected incidents; `dataset.write`
makes the contract's dataset folder with labels; `scenarios` names A/A days and
labelled incidents. Used by tests/incident and benchmarks/bench_incident.py.
"""

from wsanalysis.traffic.dataset import write
from wsanalysis.traffic.model import Inject, Run, Traffic, simulate
from wsanalysis.traffic.scenarios import SCENARIOS, traffic

__all__ = ["SCENARIOS", "Inject", "Run", "Traffic", "generate", "simulate", "traffic", "write"]


def generate(name: str, folder, *, seed: int = 1, hours: float = 12.0):
    """Simulate the named scenario and write its dataset folder."""
    description = SCENARIOS[name][0] if name in SCENARIOS else ""
    return write(simulate(traffic(name, seed, hours)), folder, name, description)

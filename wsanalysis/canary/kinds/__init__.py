"""The gate kinds: one class per statistic (`base.GateKind`), each in a module here.

Every module of this package is imported here, so `@register` has run for each kind
before anyone asks: adding a statistic is one subclass in one new module.
"""

from __future__ import annotations

import importlib
import pkgutil

from wsanalysis.canary.gate_spec import Gate
from wsanalysis.canary.kinds.base import KINDS, GateKind

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def statistics() -> tuple[str, ...]:
    """Every `statistic` word a gate file may use."""
    return tuple(sorted({word for kind in KINDS for word in kind.statistics}))


def kind_for(statistic: str, against: str) -> GateKind:
    """The kind of a statistic against control or a bound (the first that serves it when
    none serves that comparison: its `check_compare` then says why)."""
    serving = [kind for kind in KINDS if statistic in kind.statistics]
    if not serving:
        raise KeyError(statistic)
    return next((kind for kind in serving if against in kind.against), serving[0])


def kind_of(gate: Gate) -> GateKind:
    return kind_for(gate.statistic, gate.compare.against)


__all__ = ["GateKind", "kind_for", "kind_of", "statistics"]

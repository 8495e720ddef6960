"""Severity from what users felt: the share of a variant's users an episode hit beyond
the usual, and whether the evidence passed the strict level.

The share is measured on sessions when RUM beacons carry the signal (distinct sessions
with the event in the span, minus those the variant usually has in as long, over the
sessions live in the span), so one flapping client is one session however many closes
it makes. Without RUM it is estimated from the server: excess events over the open
connections, each burst counted once (the excess divided by the series' dispersion at
one minute, the size of a typical burst).

The same shares decide every kind: `high` from `HIGH_SHARE` of the variant's users,
`medium` from `MEDIUM_SHARE`, else `low`; medium and high also need the strict level
(`scan.STRICT`), so that the false-alarm target for them is a hundred times tighter,
and at least `MIN_USERS` users hit (a share of a small RUM sample can be one client).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from scipy import stats

from wsanalysis.incident.findings import Severity
from wsanalysis.incident.inputs import IncidentData
from wsanalysis.incident.signals import sessions_hit, sessions_in

MEDIUM_SHARE, HIGH_SHARE = 0.01, 0.05
#: Fewest users (sessions, or bursts on the server) beyond the usual for medium or high:
#: one or two flapping clients are not an incident of that size, whatever their share.
MIN_USERS = 3
#: An elevation counted in RUM must show in users too: the sessions hit, against the usual
#: number in as long (Poisson, a Jeffreys half session added), at this level.
CONFIRM = 1e-3
JEFFREYS = 0.5
#: Sessions seen this long before a span count as live during it.
LOOKBACK = timedelta(minutes=30)
#: The usual number of sessions hit is read from this long (at least the span) each side.
FLANK = timedelta(hours=1)


def severity(share: float | None, strong: bool, users: float | None = None) -> Severity:
    """`high`/`medium` by the share of users hit (strict evidence, and at least
    MIN_USERS of them when counted, needed), else `low`."""
    if not strong or share is None or share != share:
        return "low"
    if users is not None and users < MIN_USERS:
        return "low"
    if share >= HIGH_SHARE:
        return "high"
    return "medium" if share >= MEDIUM_SHARE else "low"


@dataclass(frozen=True)
class Impact:
    """Excess sessions hit (in the RUM sample, or estimated from the server), the
    sessions live in the span, their share, and (RUM) the p-value of the sessions hit
    against the usual number: sessions are independent where events are not."""

    hit: float
    live: float
    source: str
    pvalue: float = math.nan

    @property
    def share(self) -> float | None:
        return self.hit / self.live if self.live > 0 else None

    @property
    def users_confirm(self) -> bool:
        """More users than usual, not only more events (always so for the server)."""
        return not self.pvalue <= 1.0 or self.pvalue <= CONFIRM

    def numbers(self) -> dict[str, float | str | None]:
        return {"sessions_hit_excess": self.hit, "sessions_live": self.live,
                "sessions_affected_share": self.share, "impact_source": self.source,
                "sessions_pvalue": self.pvalue}  # fmt: skip


def from_rum(
    data: IncidentData, variant: str, start: datetime, end: datetime, where: pl.Expr
) -> Impact | None:
    """Sessions of `variant` with a beacon matching `where` in [start, end), minus the
    usual number in as long (from the flanks), over the sessions live then."""
    if not data.has_rum:
        return None
    live = sessions_in(data, variant, start - LOOKBACK, end)
    if live == 0:
        return None
    span = end - start
    flank = max(FLANK, span)
    window = data.window
    before = (max(window.start, start - flank), start)
    after = (end, min(window.end, end + flank))
    seen = sum(sessions_hit(data, variant, a, b, where) for a, b in (before, after) if b > a)
    seconds = sum((b - a).total_seconds() for a, b in (before, after) if b > a)
    usual = seen * span.total_seconds() / seconds if seconds > 0 else 0.0
    hit = sessions_hit(data, variant, start, end, where)
    pvalue = float(stats.poisson.sf(hit - 1, usual + JEFFREYS)) if hit > 0 else 1.0
    return Impact(max(hit - usual, 0.0), float(live), "rum", pvalue)


def from_server(excess: float, burst: float, live: float) -> Impact:
    """Excess events in bursts of `burst` (at least 1) over `live` open connections."""
    return Impact(max(excess, 0.0) / max(burst, 1.0), max(live, 0.0), "server")

"""Time sources for the reference server and client: real, scaled, or driven by hand.

Both sides read time only through a `Timebase` (`now()` in seconds since it started,
`epoch` at that moment, `sleep(seconds)`), so a test can run a 60-second scenario in
a fraction of a second (`Timebase(scale=600)`) or step time by hand (`ManualClock`).
"""

from __future__ import annotations

import asyncio
import time


class Timebase:
    """Scaled asyncio time: `scale` virtual seconds pass per real second."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self.epoch = time.time()
        self._start = time.monotonic()

    def now(self) -> float:
        """Virtual seconds since this timebase was created."""
        return (time.monotonic() - self._start) * self.scale

    def epoch_now(self) -> float:
        """Virtual epoch seconds (what tokens and beacons carry)."""
        return self.epoch + self.now()

    def real(self, seconds: float) -> float:
        """Real seconds that `seconds` of virtual time take."""
        return seconds / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


class ManualClock(Timebase):
    """Time moves only when told to (`advance`); `sleep` advances it and yields once."""

    def __init__(self, start: float = 0.0, epoch: float = 1_700_000_000.0) -> None:
        self.scale = 1.0
        self.epoch = epoch
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def real(self, seconds: float) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)

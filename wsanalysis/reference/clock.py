"""Time sources for the reference server and client: real, scaled, or driven by hand.

Both sides read time only through a `Timebase` (`now()` in seconds since it started,
`epoch` at that moment, `sleep(seconds)`, `wait_for(awaitable, seconds)` for a timer
that something else may beat), so a test can run a 60-second scenario in a fraction of a
second (`Timebase(scale=600)`) or step time by hand (`ManualClock`), where a timer fires
only when the test moves time past it: a budget is then checked on virtual time exactly,
whatever the machine's load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


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

    async def wait_for(self, awaitable: Awaitable[T], seconds: float | None) -> T:
        """`awaitable`'s result, or `TimeoutError` once `seconds` of virtual time passed
        (None: no timer)."""
        real = None if seconds is None else self.real(max(0.0, seconds))
        return await asyncio.wait_for(awaitable, real)


class ManualClock(Timebase):
    """Time moves only when told to (`advance`); `sleep` advances it and yields once.
    Timers (`wait_for`) fire when time is moved past them, never by the wall clock."""

    def __init__(self, start: float = 0.0, epoch: float = 1_700_000_000.0) -> None:
        self.scale = 1.0
        self.epoch = epoch
        self._now = start
        self._timers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._fire()

    def real(self, seconds: float) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)
        self._fire()
        await asyncio.sleep(0)

    async def wait_for(self, awaitable: Awaitable[T], seconds: float | None) -> T:
        task = asyncio.ensure_future(awaitable)
        if seconds is None:
            return await task
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._now + max(0.0, seconds), timer)
        self._timers.append(entry)
        self._fire()
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if entry in self._timers:
                self._timers.remove(entry)
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            return task.result()
        raise TimeoutError

    def _fire(self) -> None:
        for at, timer in list(self._timers):
            if at <= self._now and not timer.done():
                timer.set_result(None)

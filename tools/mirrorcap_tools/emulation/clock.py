"""Virtual time for offline runs: AWS seconds pass `speedup` times faster than real ones.

Everything that waits in the emulated world (the state machine's Wait states and Retry intervals, an
instance booting, an SSM agent registering, a capture command running) measures virtual seconds on
one clock, so their order and proportions are those of a real run, only shorter.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class VirtualClock:
    def __init__(self, speedup: float = 100.0, start: datetime | None = None) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self._origin = start or datetime.now(UTC)
        self._real_origin = time.monotonic()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=self.elapsed())

    def elapsed(self) -> float:
        """Virtual seconds since the clock started."""
        return (time.monotonic() - self._real_origin) * self.speedup

    def real_seconds(self, virtual_seconds: float) -> float:
        return max(virtual_seconds, 0) / self.speedup

    def sleep(self, virtual_seconds: float) -> None:
        time.sleep(self.real_seconds(virtual_seconds))

    def wait(self, event: threading.Event, virtual_seconds: float) -> bool:
        """Like `event.wait`, in virtual seconds (a stopped execution interrupts its Wait state)."""
        return event.wait(self.real_seconds(virtual_seconds))

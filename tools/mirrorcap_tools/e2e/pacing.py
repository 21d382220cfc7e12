"""How long the e2e run waits and how often it looks: real seconds against AWS, far less in tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class E2eTimeout(RuntimeError):
    pass


@dataclass(frozen=True)
class Pacing:
    poll_seconds: float  # between looks at an execution, an instance, a sweep
    instance_timeout_seconds: float  # the source instance reaching running, or terminated
    execution_timeout_seconds: float  # the whole capture execution
    sweep_rounds: int  # sweeper invocations at most, after a run that did not end by itself
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout_seconds: float) -> T:
        """Call `probe` until it returns something other than None; E2eTimeout after the timeout."""
        deadline = self.clock() + timeout_seconds
        while True:
            found = probe()
            if found is not None:
                return found
            if self.clock() > deadline:
                raise E2eTimeout(f"gave up after {timeout_seconds:.0f}s waiting for {what}")
            self.sleep(self.poll_seconds)


# A capture run on AWS: the collector boots (~30 s), its SSM agent registers (30-90 s), the workflow
# waits 60 s before its first readiness check, the window is 60 s, then collection, teardown (the
# collector's termination, ~30-60 s) and the report: about 5 minutes. 20 minutes leaves room for the
# readiness poll to run to its own 10-minute timeout and tear down, so a failure is reported by the
# workflow itself rather than by this timeout.
REAL_PACING = Pacing(
    poll_seconds=10,
    instance_timeout_seconds=600,
    execution_timeout_seconds=20 * 60,
    sweep_rounds=12,
)

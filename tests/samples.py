"""Sample inputs and settings shared by the test tiers (import as `samples`: tests/ is on pythonpath).

Not in conftest.py: a tier's own conftest.py would shadow this one for `from conftest import ...`.
"""

from __future__ import annotations

import json

from mirrorcap_tools.template import PROJECT_ROOT

EVENTS = PROJECT_ROOT / "events"
# Virtual seconds per real second in integration tests: a 300 s capture window takes 0.15 s.
TEST_SPEEDUP = 2000.0
# For runs that must succeed across grant renewals: emulated time is real time x speedup, so a machine
# busy for half a second would age an upload grant by 1,000 s at TEST_SPEEDUP (grants allow 900 s). At
# 150, CollectCapture's retries while the collector finishes (about 320 s) also cover 2 s of real lag:
# at 300, a run under load once ran out of them (CaptureStillRunning).
LONG_CAPTURE_SPEEDUP = 150.0


def event_text(relative: str) -> str:
    return (EVENTS / relative).read_text()


def event(relative: str) -> dict:
    return json.loads(event_text(relative))

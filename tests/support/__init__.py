"""Helpers shared by the test tiers: sample inputs and the offline speed-ups (`from tests.support import ...`)."""

from __future__ import annotations

import json
import time

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


def start_and_wait_for(world, document: str, state: str) -> str:
    """Start an execution named `long-capture` on the emulated account and return its ARN once it has
    entered `state` (for tests that stop a run midway)."""
    sfn = world.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=world.state_machine_arn, input=document, name="long-capture")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=arn["executionArn"])["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
            return arn["executionArn"]
        time.sleep(0.01)
    raise AssertionError(f"{state} never entered")

#!/usr/bin/env python3
"""Write events/functions/<Function>.json: the input each function received in an offline run of the
alarm sample (the schedule sample for FanOut, the hour-long manual sample for RenewUploadGrant).
Re-run after changing a step's input model."""

from __future__ import annotations

import json

from mirrorcap_tools.emulation import OfflineAws
from mirrorcap_tools.offline.collector import SampleCaptureCollector
from mirrorcap_tools.offline.runner import run_input
from mirrorcap_tools.offline.world import build_world
from mirrorcap_tools.template import PROJECT_ROOT

OUT = PROJECT_ROOT / "events" / "functions"


def main() -> None:
    with OfflineAws(SampleCaptureCollector(), speedup=1000) as aws:
        world = build_world(aws)
        for sample in ("alarm.json", "schedule.json", "manual-long.json"):
            run_input(world, (PROJECT_ROOT / "events" / "triggers" / sample).read_text())
        first: dict[str, dict] = {}
        for invocation in aws.lambdas.invocations:
            if invocation.error_type is None:
                first.setdefault(invocation.function_name, invocation.event)
    first["SweepOrphansFunction"] = {"dry_run": False}  # what the schedule sends is "{}"; this spells it out
    OUT.mkdir(parents=True, exist_ok=True)
    for function, event in sorted(first.items()):
        (OUT / f"{function}.json").write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote {OUT / function}.json")


if __name__ == "__main__":
    main()

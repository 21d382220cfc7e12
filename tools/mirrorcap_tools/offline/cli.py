"""`mirrorcap offline EVENT_FILE --out DIR`: run the whole workflow on emulated AWS."""

from __future__ import annotations

import argparse
from pathlib import Path

from mirrorcap_tools.offline.summary import human_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offline",
        help="run a capture on emulated AWS (no account needed)",
        description="Run the real state machine and handlers on emulated AWS for one input file "
        "(an alarm event, a manual document or a schedule input) and write OUT/run.json.",
    )
    parser.add_argument("event_file", type=Path, help="the execution input, e.g. events/triggers/alarm.json")
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where run.json goes")
    parser.add_argument(
        "--speedup",
        type=float,
        default=100.0,
        help="virtual seconds per real second (Wait states, boots, ...)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SERVICE:OPERATION=CODE[*N]",
        help="make the functions' AWS call fail with CODE (e.g. ec2:CreateTrafficMirrorSession="
        "TrafficMirrorSourcesPerTargetLimitExceeded) to watch the teardown; repeatable",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mirrorcap_tools.offline.faults import Fault
    from mirrorcap_tools.offline.runner import run_file  # moto is heavy; only this command needs it

    faults = [Fault.parse(spec) for spec in args.fault]
    record = run_file(args.event_file, args.out, speedup=args.speedup, faults=faults)
    print(human_summary(record, args.out / "run.json"))
    return 0 if record.status == "SUCCEEDED" else 1

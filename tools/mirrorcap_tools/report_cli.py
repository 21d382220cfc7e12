"""`mirrorcap report FILE... [--json OUT] [--html OUT] [--decap OUT]`: the capture report on any pcap or
pcapng files (mirrorcap's own, or another tool's); several files are one capture, read in time order."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="summarise pcap/pcapng files: HTTP, DNS, TCP health, top talkers",
        description=__doc__,
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="pcap or pcapng files (also .gz)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the summary as JSON (summary.json)")
    parser.add_argument("--html", type=Path, metavar="OUT", help="write the self-contained page (report.html)")
    parser.add_argument("--decap", type=Path, metavar="OUT", help="write the inner frames without VXLAN as a pcap")
    parser.add_argument("--capture-id", help="name the capture in the report")
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="do all the work in this process (by default, when a second CPU is free, a second process "
        "reads and decodes large files ahead of the analysis)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mirrorcap.report import UnreadableCapture, analyze_captures, decapsulate, render_html
    from mirrorcap.report.text import text_report

    try:
        read_ahead = False if args.one_process else None  # None: when a second CPU is free
        summary = analyze_captures(args.files, capture_id=args.capture_id, read_ahead=read_ahead)
        decapsulated = decapsulate(args.files, args.decap) if args.decap else None
    except UnreadableCapture as error:
        print(f"mirrorcap report: {error}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if args.html:
        args.html.write_text(render_html(summary), encoding="utf-8")
    if not (args.json or args.html or args.decap):
        print(text_report(summary))
    for label, path in (("summary", args.json), ("report", args.html)):
        if path:
            print(f"{label}: {path}")
    if decapsulated:
        print(f"decapsulated: {args.decap} ({json.dumps(decapsulated.as_dict())})")
    return 0

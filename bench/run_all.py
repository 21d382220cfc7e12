#!/usr/bin/env python3
"""`make bench`: every benchmark, one after the other, each printing its own table.

- report_throughput.py: the capture report vs `tshark -z http,stat,` on generated captures (10 MB .. 1 GB)
- capture_loss.py: the collector's tcpdump options at rising packet rates, in network namespaces (root)

`make bench-smoke` (`run_all.py --smoke`, which .ci/run runs) runs each at its smoke size, in seconds: a
benchmark nothing runs breaks unnoticed (capture_loss.py once did, when the capture spec changed). Exit
status: nonzero if any benchmark failed (a smoke run also fails on wrong counts or lost packets).

Run one directly for its options (sizes, rates, ...).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("report_throughput.py", "capture_loss.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="each benchmark at its smoke size (seconds)")
    args = parser.parse_args()
    options = ["--smoke"] if args.smoke else []
    status = 0
    for name in BENCHMARKS:
        if name == "capture_loss.py" and os.geteuid() != 0:
            # As the capture tests do: without root there is no lab; say so rather than fail.
            print(f"== {name}: skipped (needs root for network namespaces)")
            continue
        print(f"== {name} {' '.join(options)}".rstrip(), flush=True)
        code = subprocess.call([sys.executable, str(HERE / name), *options])
        if code:
            print(f"== {name}: FAILED (exit {code})", flush=True)
        status |= code
    return status


if __name__ == "__main__":
    sys.exit(main())

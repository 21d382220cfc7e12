#!/usr/bin/env python3
"""`make bench`: every benchmark, one after the other, each printing its own table.

- report_throughput.py: the capture report vs `tshark -z http,stat,` on generated captures (10 MB .. 1 GB)
- capture_loss.py: the collector's tcpdump options at rising packet rates, in network namespaces (root)

Run one directly for its options (sizes, rates, ...).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("report_throughput.py", "capture_loss.py")


def main() -> int:
    status = 0
    for name in BENCHMARKS:
        if name == "capture_loss.py" and os.geteuid() != 0:
            print(f"== {name}: skipped (needs root for network namespaces)")
            continue
        print(f"== {name}", flush=True)
        status |= subprocess.call([sys.executable, str(HERE / name)])
    return status


if __name__ == "__main__":
    sys.exit(main())

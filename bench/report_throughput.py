"""Capture report throughput: `mirrorcap report` against `tshark -q -z http,stat,` on the same files.

Generates VXLAN-encapsulated captures (HTTP, DNS, a database TCP stream, retransmissions, resets) of
about 10 MB, 200 MB and 1 GB with known ground truth, runs both tools on each in a subprocess, taking
turns (--repeat times each, 3 by default), and prints the median time with the range, MB/s, packets/s,
peak RSS and whether every run's counts match the ground truth.

    .venv/bin/python bench/report_throughput.py                 # 10 MB, 200 MB, 1 GB
    .venv/bin/python bench/report_throughput.py --sizes 10MB    # quick run
    .venv/bin/python bench/report_throughput.py --smoke         # CI: 1 MB, one run each, seconds

Exit 1 when any run of either tool fails or gets a count wrong. --smoke is one run of each tool on a 1 MB
file: it checks that the benchmark and both tools still run and agree with the ground truth, not the
figures; it needs tshark.

Generation is templated: each kind of exchange is built once with real headers, then copied with numpy
and patched (timestamps, client address and port, VNI), so a 1 GB file takes seconds, not hours.
Files go to a temporary directory that is deleted at the end (--keep keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
START_SECONDS = 1_700_000_000
TRANSACTION_SPACING_US = 12_000  # every exchange fits in 12 ms, so timestamps only ever increase
VNIS = (101, 102, 103)
TSHARK = "/usr/bin/tshark"
SIZES = {"1MB": 1_000_000, "10MB": 10_000_000, "200MB": 200_000_000, "1GB": 1_000_000_000}
FULL_SIZES = ("10MB", "200MB", "1GB")

# Offsets inside one encapsulated frame: outer Ethernet(14) IPv4(20) UDP(8) VXLAN(8), then the inner
# Ethernet(14) and IPv4(20) headers.
VNI_AT = 14 + 20 + 8 + 4
INNER_IP_AT = 14 + 20 + 8 + 8 + 14
INNER_L4_AT = INNER_IP_AT + 20


# --- Building the exchange templates ---------------------------------------------------------------------


@dataclass
class Truth:
    """What a tool must report; kept in the units both tools report."""

    packets: int = 0
    requests_by_method: Counter[str] = field(default_factory=Counter)
    responses_by_status: Counter[int] = field(default_factory=Counter)
    error_paths: Counter[str] = field(default_factory=Counter)
    retransmissions: int = 0
    syn: int = 0
    rst: int = 0
    dns_queries: int = 0
    dns_rcodes: Counter[str] = field(default_factory=Counter)

    def add(self, other: Truth, times: int) -> None:
        self.packets += other.packets * times
        self.retransmissions += other.retransmissions * times
        self.syn += other.syn * times
        self.rst += other.rst * times
        self.dns_queries += other.dns_queries * times
        for mine, theirs in (
            (self.requests_by_method, other.requests_by_method),
            (self.responses_by_status, other.responses_by_status),
            (self.error_paths, other.error_paths),
            (self.dns_rcodes, other.dns_rcodes),
        ):
            for key, count in theirs.items():
                mine[key] += count * times


@dataclass
class Template:
    """One exchange as pcap records, with the byte offsets to patch per copy."""

    name: str
    weight: int
    data: np.ndarray
    ts_at: np.ndarray  # offset of each record header
    delay_us: np.ndarray  # each packet's delay from the exchange's start
    client_ip_at: np.ndarray
    client_port_at: np.ndarray
    vni_at: np.ndarray
    truth: Truth


class _Exchange:
    """Inner frames of one client-server exchange with correct sequence numbers (scapy, built once)."""

    CLIENT, SERVER = "10.1.0.1", "10.2.0.80"

    def __init__(self, server_port: int, udp: bool = False) -> None:
        self.server_port = server_port
        self.udp = udp
        self.frames: list[tuple[int, bool, bytes]] = []  # (delay us, from client, inner frame)
        self.seq = {True: 1000, False: 90000}
        self.truth = Truth()

    def tcp(self, delay_us: int, from_client: bool, flags: str, payload: bytes = b"", advance: bool = True) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether

        src, dst = (self.CLIENT, self.SERVER) if from_client else (self.SERVER, self.CLIENT)
        sport, dport = (40000, self.server_port) if from_client else (self.server_port, 40000)
        ack = self.seq[not from_client] if "A" in flags else 0
        frame = (
            Ether()
            / IP(src=src, dst=dst)
            / TCP(sport=sport, dport=dport, flags=flags, seq=self.seq[from_client], ack=ack)
        )
        if payload:
            frame = frame / payload
        self.frames.append((delay_us, from_client, bytes(frame)))
        if advance:
            self.seq[from_client] += len(payload) + ("S" in flags) + ("F" in flags)
        self.truth.syn += flags == "S"
        self.truth.rst += "R" in flags

    def datagram(self, delay_us: int, from_client: bool, payload: bytes) -> None:
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether

        src, dst = (self.CLIENT, self.SERVER) if from_client else (self.SERVER, self.CLIENT)
        sport, dport = (40000, self.server_port) if from_client else (self.server_port, 40000)
        self.frames.append(
            (delay_us, from_client, bytes(Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload))
        )

    def template(self, name: str, weight: int) -> Template:
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether
        from scapy.layers.vxlan import VXLAN
        from scapy.packet import Raw

        chunks, ts_at, delays, ip_at, port_at, vni_at = [], [], [], [], [], []
        offset = 0
        for delay_us, from_client, inner in self.frames:
            outer = bytes(
                Ether()
                / IP(src="10.0.0.5", dst="10.0.0.9")
                / UDP(sport=49152, dport=4789)
                / VXLAN(vni=VNIS[0], flags=0x08)
                / Raw(inner)
            )
            header = struct.pack("<IIII", 0, 0, len(outer), len(outer))
            ts_at.append(offset)
            delays.append(delay_us)
            frame_at = offset + 16
            ip_at.append(frame_at + INNER_IP_AT + (12 if from_client else 16))
            port_at.append(frame_at + INNER_L4_AT + (0 if from_client else 2))
            vni_at.append(frame_at + VNI_AT)
            chunks.append(header + outer)
            offset += len(header) + len(outer)
        self.truth.packets = len(self.frames)
        return Template(
            name=name,
            weight=weight,
            data=np.frombuffer(b"".join(chunks), dtype=np.uint8),
            ts_at=np.array(ts_at),
            delay_us=np.array(delays),
            client_ip_at=np.array(ip_at),
            client_port_at=np.array(port_at),
            vni_at=np.array(vni_at),
            truth=self.truth,
        )


def _http(
    method: str, path: str, status: int, body_bytes: int, *, retransmit: bool = False, reset: bool = False
) -> _Exchange:
    exchange = _Exchange(80)
    exchange.tcp(0, True, "S")
    exchange.tcp(400, False, "SA")
    exchange.tcp(800, True, "A")
    request = f"{method} {path} HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n".encode()
    body = b"x" * body_bytes
    response = (
        f"HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    exchange.tcp(1000, True, "PA", request)
    exchange.tcp(1200, False, "A")
    exchange.tcp(3000 + status * 5, False, "PA", response)
    if retransmit:
        exchange.seq[False] -= len(response)
        exchange.tcp(3500 + status * 5, False, "PA", response)
        exchange.truth.retransmissions += 1
    exchange.tcp(6000, True, "A")
    if reset:
        exchange.tcp(6500, True, "RA")
    else:
        exchange.tcp(7000, True, "FA")
        exchange.tcp(7400, False, "FA")
        exchange.tcp(7800, True, "A")
    exchange.truth.requests_by_method[method] += 1
    exchange.truth.responses_by_status[status] += 1
    if status >= 400:
        exchange.truth.error_paths[f"{status} {method} {path}"] += 1
    return exchange


def _dns(name: str, qtype: int, rcode: int) -> _Exchange:
    exchange = _Exchange(53, udp=True)
    question = (
        b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
        + b"\0"
        + struct.pack(">HH", qtype, 1)
    )
    exchange.datagram(0, True, struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + question)
    exchange.datagram(900, False, struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, 1, 0, 0, 0) + question)
    exchange.truth.dns_queries += 1
    exchange.truth.dns_rcodes[{0: "NOERROR", 3: "NXDOMAIN", 2: "SERVFAIL"}[rcode]] += 1
    return exchange


def _database_stream(segments: int) -> _Exchange:
    exchange = _Exchange(5432)
    exchange.tcp(0, True, "S")
    exchange.tcp(300, False, "SA")
    exchange.tcp(600, True, "A")
    exchange.tcp(700, True, "PA", b"Q" + b"select * from orders where id = $1;".ljust(200, b" "))
    for number in range(segments):
        exchange.tcp(1000 + number * 100, False, "PA", b"D" * 1400)
    exchange.tcp(3000, True, "A")
    exchange.tcp(3100, True, "FA")
    exchange.tcp(3200, False, "FA")
    exchange.tcp(3300, True, "A")
    return exchange


def build_templates() -> list[Template]:
    return [
        _http("GET", "/api/products", 200, 900).template("get-products-200", 30),
        _http("POST", "/api/orders", 201, 120).template("post-orders-201", 10),
        _http("POST", "/api/orders", 500, 80).template("post-orders-500", 3),
        _http("GET", "/api/users/me", 404, 40).template("get-user-404", 4),
        _http("GET", "/static/app.js", 200, 1300).template("get-static-200", 10),
        _http("GET", "/api/products", 200, 900, retransmit=True).template("get-products-retransmitted", 2),
        _http("GET", "/api/cart", 503, 60, reset=True).template("get-cart-503-reset", 2),
        _dns("shop.example", 1, 0).template("dns-a-noerror", 15),
        _dns("api.internal.example", 28, 3).template("dns-aaaa-nxdomain", 3),
        _database_stream(6).template("database-stream", 6),
    ]


# --- Writing a capture -----------------------------------------------------------------------------------


def generate(path: Path, target_bytes: int, seed: int = 7) -> Truth:
    """Write a pcap of about `target_bytes` and return its ground truth."""
    templates = build_templates()
    weights = np.array([template.weight for template in templates], dtype=float)
    mean_size = float(np.dot(weights / weights.sum(), [len(template.data) for template in templates]))
    exchanges = max(1, int((target_bytes - len(PCAP_HEADER)) / mean_size))
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(templates), size=exchanges, p=weights / weights.sum())
    truth = Truth()
    for number, template in enumerate(templates):
        truth.add(template.truth, int(np.count_nonzero(kinds == number)))
    block = 20_000
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        for first in range(0, exchanges, block):
            out.write(_block(templates, kinds[first : first + block], first))
        # On disk before any tool is timed: the first one would otherwise share the machine with the
        # kernel writing the file back.
        out.flush()
        os.fsync(out.fileno())
    return truth


def _block(templates: list[Template], kinds: np.ndarray, first: int) -> bytes:
    rows: list[np.ndarray | None] = [None] * len(kinds)
    for number, template in enumerate(templates):
        where = np.flatnonzero(kinds == number)
        if not len(where):
            continue
        copies = np.tile(template.data, (len(where), 1))
        index = first + where  # the exchange's number in the file: its time slot, client and VNI
        start_us = START_SECONDS * 1_000_000 + index[:, None] * TRANSACTION_SPACING_US + template.delay_us[None, :]
        _patch(copies, template.ts_at, start_us // 1_000_000, 4, "<")
        _patch(copies, template.ts_at + 4, start_us % 1_000_000, 4, "<")
        client_ip = (10 << 24) | (1 << 16) | (1 + index // 50_000)
        _patch(copies, template.client_ip_at, np.repeat(client_ip[:, None], len(template.ts_at), axis=1), 4, ">")
        port = 1024 + index % 50_000
        _patch(copies, template.client_port_at, np.repeat(port[:, None], len(template.ts_at), axis=1), 2, ">")
        vni = np.array(VNIS)[index % len(VNIS)]
        _patch(
            copies, template.vni_at, np.repeat(vni[:, None] << 8, len(template.ts_at), axis=1), 4, ">", keep_last=True
        )
        for row, position in zip(copies, where, strict=True):
            rows[position] = row
    return np.concatenate(rows).tobytes()


def _patch(
    rows: np.ndarray, offsets: np.ndarray, values: np.ndarray, width: int, endian: str, keep_last: bool = False
) -> None:
    """Write `values` (copies x len(offsets)) as `width`-byte integers at `offsets` of every row."""
    raw = np.ascontiguousarray(values, dtype=f"{endian}u{width}").view(np.uint8).reshape(len(rows), len(offsets), width)
    columns = offsets[:, None] + np.arange(width)
    if keep_last:  # the VXLAN VNI is 3 bytes followed by a reserved byte that must stay
        raw, columns = raw[:, :, :3], columns[:, :3]
    rows[:, columns] = raw


# --- Running the tools -----------------------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    seconds: float
    peak_rss_mb: float
    output: str
    exit_code: int


# Each tool runs under this small launcher, which times it and measures its memory. A tool started
# straight from this (large) benchmark process would report the benchmark's own peak RSS: Linux carries
# the high-water mark from before exec into ru_maxrss. And wait4's ru_maxrss is the largest of the tool's
# processes, not their sum, so a thread of the launcher also adds up the resident memory of the tool and
# every process it starts (the report reads ahead in a second process), every few milliseconds; the
# figure is the larger of the two. The sum counts memory that processes share once for each of them, so
# it errs on the high side.
LAUNCHER = """
import os, subprocess, sys, threading, time

def resident_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0

def children_of(pids):
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent in pids:
                found.add(int(entry))
    return found

def sample(pid, done, peak):
    # Reading two status files costs microseconds; a walk of /proc for new processes costs a millisecond
    # or two, so it is done less often: the sampling must not take CPU time from the tool.
    tree, polls = {pid}, 0
    while not done.is_set():
        if polls % 20 == 0:
            tree |= children_of(tree)
        peak[0] = max(peak[0], sum(resident_kb(member) for member in tree))
        polls += 1
        done.wait(0.01)

started = time.perf_counter()
process = subprocess.Popen(sys.argv[2:])
done, peak = threading.Event(), [0]
sampler = threading.Thread(target=sample, args=(process.pid, done, peak))
sampler.start()
_pid, status, usage = os.wait4(process.pid, 0)
seconds = time.perf_counter() - started
done.set()
sampler.join()
with open(sys.argv[1], "w") as report:
    report.write(f"{seconds} {max(usage.ru_maxrss, peak[0])} {os.waitstatus_to_exitcode(status)}")
"""


def read_through(path: Path) -> None:
    """Reads the whole file, so that each tool reads it from the page cache: the host may reclaim
    pages of a file not read for a while, and reading them back from disk would time the disk."""
    with open(path, "rb", buffering=0) as capture:
        while capture.read(8 << 20):
            pass


def run_measured(tool: str, command: list[str], workdir: Path) -> Run:
    """Run `command` in its own process: wall time, peak RSS, output and exit code."""
    output_path, measure_path = workdir / f"{tool}.out", workdir / f"{tool}.measure"
    with open(output_path, "w") as output:
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(measure_path), *command],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=True,
        )
    seconds, peak_kb, exit_code = measure_path.read_text().split()
    return Run(tool, float(seconds), int(peak_kb) / 1024, output_path.read_text(), int(exit_code))


def report_command(capture: Path, summary_path: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "mirrorcap_tools.cli", "report", str(capture), "--json", str(summary_path), *options]


def tshark_command(capture: Path) -> list[str]:
    # tshark decodes UDP 4789 as VXLAN by default; -n avoids name lookups.
    return [TSHARK, "-n", "-q", "-r", str(capture), "-z", "http,stat,"]


def report_mismatches(summary_path: Path, truth: Truth) -> list[str]:
    summary = json.loads(summary_path.read_text())
    http, tcp, dns = summary["http"], summary["tcp"], summary["dns"]
    checks = {
        "packets": (summary["totals"]["packets"], truth.packets),
        "requests by method": (http["requests_by_method"], dict(truth.requests_by_method)),
        "responses by status": (http["responses_by_status"], {str(k): v for k, v in truth.responses_by_status.items()}),
        "error paths": ({e["label"]: e["count"] for e in http["error_paths"]}, dict(truth.error_paths)),
        "retransmissions": (tcp["retransmissions"], truth.retransmissions),
        "SYN": (tcp["syn"], truth.syn),
        "RST": (tcp["rst"], truth.rst),
        "DNS queries": (dns["queries"], truth.dns_queries),
        "DNS response codes": (dns["responses_by_rcode"], dict(truth.dns_rcodes)),
    }
    return [f"{name}: got {got}, expected {want}" for name, (got, want) in checks.items() if got != want]


def tshark_mismatches(output: str, truth: Truth) -> list[str]:
    statuses: Counter[int] = Counter()
    methods: Counter[str] = Counter()
    section = None
    for line in output.splitlines():
        if "Response Status Codes" in line:
            section = "status"
        elif "Request Methods" in line:
            section = "method"
        elif section == "status" and (match := re.match(r"\s+(\d{3}) .*?(\d+)\s*$", line)):
            statuses[int(match[1])] += int(match[2])
        elif section == "method" and (match := re.match(r"\s+([A-Z]+)\s+(\d+)\s*$", line)):
            methods[match[1]] += int(match[2])
    problems = []
    if statuses != truth.responses_by_status:
        problems.append(f"responses by status: got {dict(statuses)}, expected {dict(truth.responses_by_status)}")
    if methods != truth.requests_by_method:
        problems.append(f"requests by method: got {dict(methods)}, expected {dict(truth.requests_by_method)}")
    return problems


def mismatches(run: Run, truth: Truth, summary_path: Path) -> list[str]:
    """What this run of either tool got wrong: its exit code, or counts that differ from the truth."""
    if run.exit_code:
        return [f"exit code {run.exit_code}: {run.output[-500:]}"]
    if run.tool == "tshark":
        return tshark_mismatches(run.output, truth)
    return report_mismatches(summary_path, truth)


# --- The run ----------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[str]:
    sizes = [size.strip() for size in text.split(",") if size.strip()]
    unknown = [size for size in sizes if size not in SIZES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", type=parse_sizes, default=list(FULL_SIZES), help=f"comma-separated, of {', '.join(SIZES)}"
    )
    parser.add_argument("--workdir", type=Path, help="where to write the captures (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated captures")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each tool per size; the table gives the median (default 3)"
    )
    parser.add_argument("--smoke", action="store_true", help="1MB, one run of each tool (needs tshark)")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.repeat = ["1MB"], 1
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    have_tshark = Path(TSHARK).exists()
    if args.smoke and not have_tshark:
        print(f"{TSHARK} is not installed (scripts/install-system-packages.sh installs it): the smoke run needs it")
        return 1
    if not have_tshark:
        print(f"{TSHARK} is not installed (scripts/install-system-packages.sh installs it): tshark rows skipped")
    workdir = Path(tempfile.mkdtemp(prefix="mirrorcap-bench-", dir=args.workdir))
    rows: list[tuple[str, str, float, str, float, float, float, str, str]] = []
    problems: list[str] = []
    try:
        for size in args.sizes:
            capture = workdir / f"bench-{size}.pcap"
            started = time.perf_counter()
            truth = generate(capture, SIZES[size])
            megabytes = capture.stat().st_size / 1e6
            took = time.perf_counter() - started
            print(
                f"generated {capture.name}: {megabytes:.0f} MB, {truth.packets:,} packets in {took:.1f} s", flush=True
            )

            summary_path = workdir / f"summary-{size}.json"
            tools = {
                "mirrorcap": report_command(capture, summary_path),
                # Without the read-ahead process: the figure for a machine (or Lambda size) with one CPU.
                "mirrorcap-1p": report_command(capture, summary_path, "--one-process"),
            }
            if have_tshark:
                tools["tshark"] = tshark_command(capture)
            runs: dict[str, list[Run]] = {tool: [] for tool in tools}
            wrong: dict[str, list[str]] = {tool: [] for tool in tools}
            for _round in range(args.repeat):  # the tools take turns, so all see the same machine
                for tool, command in tools.items():
                    read_through(capture)
                    run = run_measured(tool, command, workdir)
                    runs[tool].append(run)
                    wrong[tool] += mismatches(run, truth, summary_path)
            medians = {tool: statistics.median(run.seconds for run in tool_runs) for tool, tool_runs in runs.items()}
            slowest = max(medians.values())
            for tool, tool_runs in runs.items():
                problems += [f"{size} {tool} {item}" for item in dict.fromkeys(wrong[tool])]
                seconds = medians[tool]
                rows.append(
                    (
                        size,
                        tool,
                        seconds,
                        f"{min(run.seconds for run in tool_runs):.2f}-{max(run.seconds for run in tool_runs):.2f}",
                        megabytes / seconds,
                        truth.packets / seconds,
                        max(run.peak_rss_mb for run in tool_runs),
                        "NO" if wrong[tool] else "yes",
                        f"{slowest / seconds:.1f}x",
                    )
                )
            each = {tool: " ".join(f"{run.seconds:.2f}" for run in tool_runs) for tool, tool_runs in runs.items()}
            print("  " + ", ".join(f"{tool} {seconds} s" for tool, seconds in each.items()), flush=True)
            if not args.keep:
                capture.unlink()  # the next size needs the disk space
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    header = (
        f"{'size':<6} {'tool':<12} {'seconds':>8} {'range':>11} {'MB/s':>8} {'packets/s':>11} {'peak RSS':>9} "
        f"{'counts exact':>13} {'speed':>7}"
    )
    print(
        f"median of {args.repeat} runs per tool; range: fastest-slowest run; peak RSS: the highest, of all of"
        " the tool's processes together"
    )
    print(header)
    print("-" * len(header))
    for size, tool, seconds, spread, rate, packet_rate, rss, exact, speed in rows:
        print(
            f"{size:<6} {tool:<12} {seconds:>8.2f} {spread:>11} {rate:>8.1f} {packet_rate:>11,.0f} {rss:>7.0f}MB "
            f"{exact:>13} {speed:>7}"
        )
    for problem in problems:
        print(f"mismatch: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

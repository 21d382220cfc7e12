"""Capture loss: what the collector's capture script keeps of VXLAN traffic offered at increasing rates.

The namespace lab of the capture tests (mirrorcap_tools.netns): tcpreplay in the source namespace sends
pre-built VXLAN frames (UDP 4789, the session's VNI, IMIX inner frames by default) at a fixed packet rate
to the collector, which runs the exact commands SSM would run (render_run_command) with real tcpdump and
uploads to S3 (moto) on its loopback, as in production. Per rate it prints what was offered (tcpreplay's
count), what arrived at the collector's interface, what libpcap received, what tcpdump wrote to the pcaps
(the manifest's count), and the kernel's drops; then the first rate at which anything was lost.

    .venv/bin/python bench/capture_loss.py                          # 10k, 50k, 100k, 200k packets/s
    .venv/bin/python bench/capture_loss.py --rates 100000,300000 --seconds 10 --inner-bytes 64
    .venv/bin/python bench/capture_loss.py --smoke                  # CI: 2,000 packets/s for 1 s, seconds

--smoke runs one rate that the capture keeps whole on any machine and fails (exit 1) if a packet is lost
or none was captured: it checks that the benchmark still runs the capture script end to end, not the
figures.

Needs root, iproute2, ethtool, tcpdump and tcpreplay (scripts/install-system-packages.sh). Each rate is
bounded: tcpreplay stops after 3x the planned sending time, the capture after its own deadline.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mirrorcap.collector import command
from mirrorcap.collector.command import CaptureScriptSpec, max_object_bytes, render_run_command, render_stop_command
from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureManifest
from mirrorcap_tools import netns
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

VNI = 4242
BUCKET = "mirrorcap-bench"
DEFAULT_RATES = (10_000, 50_000, 100_000, 200_000)
# --smoke: a rate far below where loss was ever seen (none up to 200k packets/s), for one second.
SMOKE_RATE, SMOKE_SECONDS = 2_000, 1
# Simple IMIX by inner frame length: 7 x 64, 4 x 594, 1 x 1518 bytes (362 bytes on average).
IMIX = (64,) * 7 + (594,) * 4 + (1518,)
VXLAN_OVERHEAD = 50  # outer Ethernet, IPv4, UDP and VXLAN headers
CAPTURE_DEADLINE_SECONDS = 180  # after sending: the stop, the drain, the last upload and the manifest


@dataclass(frozen=True)
class Step:
    target_pps: int
    offered: int
    sending_seconds: float
    arrived: int
    received: int | None
    captured: int
    dropped: int
    status: str
    load: float  # 1-minute load average after the step: other work on the machine skews the generator

    @property
    def lost(self) -> int:
        return self.offered - self.captured

    @property
    def lossless(self) -> bool:
        return self.lost == 0 and self.dropped == 0


def main() -> int:
    args = parse_args()
    reason = netns.unavailable_reason() or (None if shutil.which("tcpreplay") else "tcpreplay is not installed")
    if reason:
        print(f"capture-loss benchmark cannot run here: {reason}", file=sys.stderr)
        return 1
    sizes = IMIX if args.inner_bytes == "imix" else (int(args.inner_bytes),)
    print(header(args, sizes), flush=True)
    with tempfile.TemporaryDirectory(prefix="mirrorcap-bench-") as scratch:
        steps = run_all(args, sizes, Path(scratch))
    print(table(steps))
    print(verdict(steps))
    if args.smoke:
        return smoke_verdict(steps)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)), help="packets/s, comma-separated")
    parser.add_argument("--seconds", type=int, default=5, help="sending time per rate")
    parser.add_argument("--inner-bytes", default="imix", help="inner frame length, or 'imix'")
    parser.add_argument("--snaplen", type=int, default=0)
    parser.add_argument("--rotate-megabytes", type=int, default=100)
    parser.add_argument(
        "--smoke", action="store_true", help=f"{SMOKE_RATE} packets/s for {SMOKE_SECONDS} s; exit 1 on any loss"
    )
    args = parser.parse_args()
    if args.smoke:
        args.rates, args.seconds = str(SMOKE_RATE), SMOKE_SECONDS
    args.rates = [int(rate) for rate in args.rates.split(",")]
    return args


def run_all(args: argparse.Namespace, sizes: tuple[int, ...], scratch: Path) -> list[Step]:
    steps = []
    with netns.mirror_lab(VNI) as lab, netns.lab_s3(lab, BUCKET, scratch / "moto.log"):
        frames = scratch / "frames.pcap"
        write_frames(lab, sizes, frames)
        for rate in args.rates:
            step = run_step(lab, args, rate, frames, scratch / f"rate-{rate}")
            print(
                f"  {rate:>7} pps: offered {step.offered}, captured {step.captured}, dropped {step.dropped}", flush=True
            )
            steps.append(step)
    return steps


def write_frames(lab: netns.Lab, sizes: tuple[int, ...], path: Path) -> None:
    """What a mirror target receives: the source's frames in VXLAN to the collector's interface."""
    outer = Ether(src=lab.link_mac(lab.source, "mir0"), dst=lab.link_mac(lab.collector, lab.collector_ifname)) / IP(
        src=netns.MIRROR_SOURCE_IP, dst=netns.COLLECTOR_IP
    )
    frames = []
    for flow, size in enumerate(sizes):
        inner = Ether() / IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=40000 + flow, dport=443, flags="A")
        inner = inner / bytes(max(0, size - len(inner)))
        frames.append(outer / UDP(sport=49152 + flow, dport=netns.VXLAN_PORT) / VXLAN(vni=VNI) / inner)
    wrpcap(str(path), frames)


def run_step(lab: netns.Lab, args: argparse.Namespace, rate: int, frames: Path, scratch: Path) -> Step:
    capture_id = f"mc-bench-{rate}-{secrets.token_hex(3)}"
    spec = CaptureScriptSpec(
        capture_id=capture_id,
        bucket=BUCKET,
        key_prefix=f"captures/{capture_id}/",
        duration_seconds=args.seconds * 3 + 60,  # never the limit: the step stops the capture itself
        vni=VNI,
        snaplen=args.snaplen,
        rotate_megabytes=args.rotate_megabytes,
    )
    # The upload grant StartCapture would mint, signed for the lab's S3 (moto on the collector's loopback).
    grant = netns.lab_grant(spec.bucket, spec.key_prefix, max_object_bytes(spec))
    run = netns.CollectorRun(lab, render_run_command(spec, grant), scratch / "disk", capture_id)
    run.wait_listening()
    arrived_before = lab.rx_packets(lab.collector, lab.collector_ifname)
    offered, sending_seconds = replay(lab, frames, rate, args.seconds)
    arrived = lab.rx_packets(lab.collector, lab.collector_ifname) - arrived_before
    stop = render_stop_command(spec, wait_seconds=CAPTURE_DEADLINE_SECONDS)
    run.run_commands(stop, timeout=CAPTURE_DEADLINE_SECONDS + 30)
    run.wait(timeout=30)
    manifest = CaptureManifest.model_validate_json((run.work_dir / MANIFEST_NAME).read_bytes())
    shutil.rmtree(scratch, ignore_errors=True)  # the pcaps are in S3; keep the disk free for the next rate
    return Step(
        target_pps=rate,
        offered=offered,
        sending_seconds=sending_seconds,
        arrived=arrived,
        received=manifest.packets_received_by_filter,
        captured=manifest.packets_captured,
        dropped=manifest.packets_dropped_by_kernel,
        status=manifest.status,
        load=os.getloadavg()[0],
    )


def replay(lab: netns.Lab, frames: Path, rate: int, seconds: int) -> tuple[int, float]:
    """Send rate x seconds frames at `rate` packets/s; give up after 3x the time. Returns (sent, seconds)."""
    argv = [
        "tcpreplay",
        "-i",
        "mir0",
        f"--pps={rate}",
        f"--limit={rate * seconds}",
        f"--duration={seconds * 3}",
        "--loop=0",
        "--preload-pcap",
        str(frames),
    ]
    done = lab.run(lab.source, argv, timeout=seconds * 3 + 30)
    match = re.search(r"Actual: (\d+) packets .*? sent in ([\d.]+) seconds", done.stdout)
    if match is None:
        raise RuntimeError(f"unexpected tcpreplay output:\n{done.stdout}\n{done.stderr}")
    return int(match[1]), float(match[2])


def header(args: argparse.Namespace, sizes: tuple[int, ...]) -> str:
    script = Path(command.__file__).with_name("capture.sh").read_text()
    buffer_kib = re.search(r"^readonly SOCKET_BUFFER_KIB=(\d+)", script, re.MULTILINE)[1]
    frames = "IMIX 7x64/4x594/1x1518" if len(sizes) > 1 else f"{sizes[0]} bytes"
    average = sum(sizes) / len(sizes) + VXLAN_OVERHEAD
    return (
        f"capture loss: capture.sh's tcpdump -B {buffer_kib} (KiB) -s {args.snaplen} -C {args.rotate_megabytes}"
        f" -G {CaptureScriptSpec.model_fields['rotate_seconds'].default}, no -U, no --immediate-mode;"
        f" uploads to S3 (moto) as files close\n"
        f"inner frames {frames}, {average:.0f} bytes on the wire on average; {args.seconds} s per rate;"
        f" {os.cpu_count()} CPUs (generator, capture and uploads share them)"
    )


def table(steps: list[Step]) -> str:
    columns = (
        "target pps",
        "offered",
        "achieved pps",
        "arrived",
        "received",
        "captured",
        "dropped (kernel)",
        "lost",
        "status",
        "load",
    )
    rows = [
        (
            f"{s.target_pps:,}",
            f"{s.offered:,}",
            f"{s.offered / s.sending_seconds:,.0f}",
            f"{s.arrived:,}",
            f"{s.received:,}" if s.received is not None else "?",
            f"{s.captured:,}",
            f"{s.dropped:,}",
            f"{s.lost:,}",
            s.status,
            f"{s.load:.1f}",
        )
        for s in steps
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = [" | ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def verdict(steps: list[Step]) -> str:
    lossy = [s for s in steps if not s.lossless]
    if not lossy:
        top = max(steps, key=lambda s: s.target_pps)
        return (
            f"loss begins: not within the rates measured (nothing lost up to {top.target_pps:,} packets/s"
            f" asked, {top.offered / top.sending_seconds:,.0f} achieved)"
        )
    first = min(lossy, key=lambda s: s.target_pps)
    return (
        f"loss begins at {first.target_pps:,} packets/s asked ({first.offered / first.sending_seconds:,.0f}"
        f" achieved): {first.lost:,} of {first.offered:,} not captured ({first.dropped:,} dropped by the"
        f" kernel)"
    )


def smoke_verdict(steps: list[Step]) -> int:
    """At the smoke rate the capture must keep every packet it was offered; anything else is a fault of
    the capture path (or of the benchmark), not a measurement."""
    failed = [s for s in steps if s.captured == 0 or not s.lossless or s.status != "stopped_early"]
    for step in failed:
        print(
            f"smoke: FAILED at {step.target_pps:,} packets/s: offered {step.offered:,}, captured {step.captured:,},"
            f" dropped {step.dropped:,}, status {step.status}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

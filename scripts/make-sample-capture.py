"""Make the offline demo's sample capture with the real capture path, and describe how it was made.

Builds the namespace lab (mirrorcap_tools.netns): a source resolves a name against a DNS server and
fetches two pages over HTTP while its traffic is mirrored, VXLAN on UDP 4789 with VNI 4242, to a collector
that runs the exact commands SSM would run (mirrorcap.collector.command.render_run_command) with real
tcpdump, uploading to S3 (moto) on the collector's loopback. The pcap the script delivered replaces
tools/mirrorcap_tools/offline/data/sample-capture.pcap, and sample-capture.md beside it is rewritten.

Run as root from the repository root:  .venv/bin/python scripts/make-sample-capture.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mirrorcap.collector.command import CaptureScriptSpec, max_object_bytes, render_run_command
from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureManifest, summarize_pcap_file
from mirrorcap_tools import netns

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tools" / "mirrorcap_tools" / "offline" / "data"
COMMAND = ".venv/bin/python scripts/make-sample-capture.py"
CAPTURE_ID = "mc-sample-capture"
VNI = 4242
BUCKET = "mirrorcap-sample"
SITE_NAME = "web.mirrorcap.test"
MAX_BYTES = 200_000
SITE = {
    "index.html": "<!doctype html>\n<title>mirrorcap sample</title>\n<h1>Hello from the mirrored server</h1>\n",
    "status.json": '{"service": "web", "status": "ok"}\n',
}


def main() -> int:
    reason = netns.unavailable_reason()
    if reason:
        print(f"cannot make the sample capture here: {reason}", file=sys.stderr)
        return 1
    spec = CaptureScriptSpec(
        capture_id=CAPTURE_ID,
        bucket=BUCKET,
        key_prefix=f"captures/{CAPTURE_ID}/",
        duration_seconds=4,
        vni=VNI,
    )
    with tempfile.TemporaryDirectory(prefix="mirrorcap-sample-") as scratch:
        manifest, pcap = capture(spec, Path(scratch))
        data = pcap.read_bytes()
    if len(data) > MAX_BYTES:
        print(f"the capture is {len(data)} bytes, more than {MAX_BYTES}: not replacing the sample", file=sys.stderr)
        return 1
    (DATA / "sample-capture.pcap").write_bytes(data)
    summary = summarize_pcap_file(DATA / "sample-capture.pcap", "sample-capture.pcap")
    (DATA / "sample-capture.md").write_text(describe(spec, manifest, summary))
    print(f"wrote {DATA / 'sample-capture.pcap'}: {summary.packets} packets, {summary.bytes} bytes")
    return 0


def capture(spec: CaptureScriptSpec, scratch: Path) -> tuple[CaptureManifest, Path]:
    site = scratch / "site"
    site.mkdir()
    for name, text in SITE.items():
        (site / name).write_text(text)
    with (
        netns.mirror_lab(VNI) as lab,
        netns.services(lab, site, SITE_NAME, scratch / "services.log"),
        netns.lab_s3(lab, BUCKET, scratch / "moto.log") as s3,
    ):
        grant = netns.lab_grant(spec.bucket, spec.key_prefix, max_object_bytes(spec))
        run = netns.CollectorRun(lab, render_run_command(spec, grant), scratch / "disk", spec.capture_id)
        run.wait_listening()
        netns.dns_query(lab, SITE_NAME)
        netns.http_get(lab, "/", SITE_NAME)
        netns.http_get(lab, "/status.json", SITE_NAME)
        exit_code = run.wait(timeout=120)
        if exit_code != 0:
            raise RuntimeError(f"the capture script exited {exit_code}:\n{run.output()}")
        objects = s3.download(spec.key_prefix, scratch / "s3")
    manifest = CaptureManifest.model_validate_json(objects[f"{spec.key_prefix}{MANIFEST_NAME}"].path.read_bytes())
    if len(manifest.files) != 1:
        raise RuntimeError(f"expected one pcap, the capture delivered {len(manifest.files)}")
    return manifest, objects[manifest.files[0].key].path


def describe(spec: CaptureScriptSpec, manifest: CaptureManifest, summary) -> str:
    return f"""# sample-capture.pcap

A real capture, made by `scripts/make-sample-capture.py` (run as root from the repository root):

    {COMMAND}

It is what the capture script delivered to S3 for one run, byte for byte. The script builds the network
namespace lab of `tools/mirrorcap_tools/netns.py` (the same one `tests/capture` uses): a source
({netns.SOURCE_IP}) and a server ({netns.SERVER_IP}); every frame in and out of the source is mirrored
by `tc mirred` into a Linux `vxlan` device (VNI {spec.vni}, UDP {netns.VXLAN_PORT}) towards a collector
({netns.COLLECTOR_IP}, interface `{manifest.interface}`), which is what a Traffic Mirroring target receives.
The collector runs the exact commands `render_run_command` renders for AWS-RunShellScript (real
tcpdump, a {spec.duration_seconds} s window), uploading to S3 served by moto on the collector's loopback.

What the source did while it was captured:

1. DNS: `A {SITE_NAME}?` to {netns.SERVER_IP}:{netns.DNS_PORT}, answered `{netns.SERVER_IP}`.
2. HTTP: `GET /` and `GET /status.json` to {netns.SERVER_IP}:{netns.HTTP_PORT} (`Host: {SITE_NAME}`),
   each on its own connection, answered by Python's `http.server`.

Every packet in the file is outer Ethernet / IPv4 {netns.MIRROR_SOURCE_IP} -> {netns.COLLECTOR_IP} /
UDP -> {netns.VXLAN_PORT} / VXLAN VNI {spec.vni} / the mirrored frame (capture filter
`{manifest.bpf_filter}`).

| | |
| --- | --- |
| packets | {summary.packets} |
| bytes | {summary.bytes} |
| sha256 | `{summary.sha256}` |
| captured at | {manifest.started_at.isoformat()} |
| dropped by kernel | {manifest.packets_dropped_by_kernel} |

The offline demo delivers this file in place of the collector's capture (tcpdump cannot run in the
emulation), so its VNI ({spec.vni}) is not the demo capture's own.
"""


if __name__ == "__main__":
    sys.exit(main())

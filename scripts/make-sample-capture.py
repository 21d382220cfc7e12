"""Make the offline demo's sample capture with the real capture path, and describe how it was made.

The demo starts from the alarm `mirrorcap-web-1-high-5xx`, so the sample is what such an alarm is about:
a web service answering some requests with 5xx (and a few with 4xx) among its 2xx. It builds the
namespace lab (mirrorcap_tools.netns) and plays web-1 in the *source* namespace, the one whose traffic is
mirrored: an HTTP/1.1 service that looks up its backends by name (one answered, one NXDOMAIN, so its
checkout answers 503). Its clients and the DNS server are in the server namespace; one client resets its
connection. Every frame in and out of web-1 is mirrored, VXLAN on UDP 4789 with VNI 4242, to a collector
that runs the exact commands SSM would run (mirrorcap.collector.command.render_run_command) with real
tcpdump, uploading to S3 (moto) on the collector's loopback. The pcap the script delivered replaces
tools/mirrorcap_tools/offline/data/sample-capture.pcap, and sample-capture.md beside it is rewritten.

Run as root from the repository root:  .venv/bin/python scripts/make-sample-capture.py

(`serve-web` and `clients` are the two halves that run inside the namespaces; not for use by hand.)
"""

from __future__ import annotations

import http.client
import http.server
import json
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mirrorcap.collector.command import CaptureScriptSpec, max_object_bytes, render_run_command
from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureManifest, ManifestFile, summarize_pcap_file
from mirrorcap_tools import netns

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tools" / "mirrorcap_tools" / "offline" / "data"
COMMAND = ".venv/bin/python scripts/make-sample-capture.py"
CAPTURE_ID = "mc-sample-capture"
VNI = 4242
BUCKET = "mirrorcap-sample"
SITE_NAME = "web-1.mirrorcap.test"
# The DNS server (netns dns-serve) answers this one name and NXDOMAIN to every other.
CATALOG_NAME = "catalog.mirrorcap.test"
PAYMENTS_NAME = "payments.mirrorcap.test"
MAX_BYTES = 200_000
CAPTURE_SECONDS = 6
REQUEST_SPACING_SECONDS = 0.08  # so the report's timeline spreads the requests out

# What web-1's clients ask, in order, and what web-1 answers (the description and the tests read this).
# "reset": the client reads the answer, then aborts the connection (SO_LINGER 0: a RST, not a FIN), as
# a client that gives up on an error does.
REQUESTS: tuple[tuple[str, str, int, bool], ...] = (
    ("GET", "/", 200, False),
    ("GET", "/api/products", 200, False),
    ("GET", "/static/app.js", 200, False),
    ("POST", "/api/checkout", 503, False),
    ("GET", "/api/cart", 200, False),
    ("POST", "/api/checkout", 503, False),
    ("GET", "/favicon.ico", 404, False),
    ("GET", "/api/products", 200, False),
    ("POST", "/api/checkout", 503, True),
    ("GET", "/api/orders/1001", 404, False),
    ("GET", "/api/recommendations", 500, False),
    ("GET", "/api/cart", 200, False),
    ("POST", "/api/checkout", 503, False),
    ("GET", "/", 200, False),
)


def main() -> int:
    if sys.argv[1:] == ["serve-web"]:
        serve_web()
        return 0
    if sys.argv[1:] == ["clients"]:
        return clients()
    if sys.argv[1:]:
        print(f"usage: {COMMAND}", file=sys.stderr)
        return 2
    reason = netns.unavailable_reason()
    if reason:
        print(f"cannot make the sample capture here: {reason}", file=sys.stderr)
        return 1
    spec = CaptureScriptSpec(
        capture_id=CAPTURE_ID,
        bucket=BUCKET,
        key_prefix=f"captures/{CAPTURE_ID}/",
        duration_seconds=CAPTURE_SECONDS,
        vni=VNI,
    )
    with tempfile.TemporaryDirectory(prefix="mirrorcap-sample-") as scratch:
        manifest, pcap, answered = capture(spec, Path(scratch))
        data = pcap.read_bytes()
    if len(data) > MAX_BYTES:
        print(f"the capture is {len(data)} bytes, more than {MAX_BYTES}: not replacing the sample", file=sys.stderr)
        return 1
    (DATA / "sample-capture.pcap").write_bytes(data)
    summary = summarize_pcap_file(DATA / "sample-capture.pcap", "sample-capture.pcap")
    (DATA / "sample-capture.md").write_text(describe(spec, manifest, summary, answered))
    print(f"wrote {DATA / 'sample-capture.pcap'}: {summary.packets} packets, {summary.bytes} bytes")
    return 0


def capture(spec: CaptureScriptSpec, scratch: Path) -> tuple[CaptureManifest, Path, list[int]]:
    """Run web-1, the DNS server and the capture; play the clients; return the manifest, the pcap the
    script delivered and the status of each request as the clients saw it."""
    with (
        netns.mirror_lab(VNI) as lab,
        netns.lab_s3(lab, BUCKET, scratch / "moto.log") as s3,
        open(scratch / "services.log", "ab") as log,
    ):
        services = [
            lab.popen(lab.source, [sys.executable, __file__, "serve-web"], stdout=log, stderr=subprocess.STDOUT),
            lab.popen(lab.server, netns.helper("dns-serve", CATALOG_NAME), stdout=log, stderr=subprocess.STDOUT),
        ]
        try:
            wait_listening(lab, lab.source, "tcp", netns.HTTP_PORT)
            wait_listening(lab, lab.server, "udp", netns.DNS_PORT)
            grant = netns.lab_grant(spec.bucket, spec.key_prefix, max_object_bytes(spec))
            run = netns.CollectorRun(lab, render_run_command(spec, grant), scratch / "disk", spec.capture_id)
            run.wait_listening()
            played = lab.run(lab.server, [sys.executable, __file__, "clients"], timeout=60)
            answered = json.loads(played.stdout)
            exit_code = run.wait(timeout=120)
        finally:
            for process in services:
                process.kill()
                process.wait()
        if exit_code != 0:
            raise RuntimeError(f"the capture script exited {exit_code}:\n{run.output()}")
        objects = s3.download(spec.key_prefix, scratch / "s3")
    wanted = [status for _method, _path, status, _reset in REQUESTS]
    if answered != wanted:
        raise RuntimeError(f"web-1 answered {answered}, not {wanted}:\n{(scratch / 'services.log').read_text()}")
    manifest = CaptureManifest.model_validate_json(objects[f"{spec.key_prefix}{MANIFEST_NAME}"].path.read_bytes())
    if len(manifest.files) != 1:
        raise RuntimeError(f"expected one pcap, the capture delivered {len(manifest.files)}")
    return manifest, objects[manifest.files[0].key].path, answered


def wait_listening(lab: netns.Lab, ns: str, protocol: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = subprocess.run(netns.in_ns(ns, ["ss", "-Hltun"]), capture_output=True, text=True).stdout
        if any(line.split()[0] == protocol and line.split()[4].endswith(f":{port}") for line in listening.splitlines()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {protocol} {port} in {ns} after {timeout}s")


# --- web-1, in the source namespace ------------------------------------------------------------------------


def resolve(name: str) -> str | None:
    """One A lookup against the lab's DNS server: the address, or None for NXDOMAIN (or no answer)."""
    from scapy.layers.dns import DNS, DNSQR  # imported by serve_web already: no import time in a request

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        query = DNS(id=secrets.randbelow(65536), rd=1, qd=DNSQR(qname=name))
        sock.sendto(bytes(query), (netns.SERVER_IP, netns.DNS_PORT))
        reply = DNS(sock.recv(2048))
    return next((str(record.rdata) for record in reply.an or [] if record.type == 1), None)


class WebOne(http.server.BaseHTTPRequestHandler):
    """The shop's web tier: pages and a JSON API. Lookups are cached for the process (answers and
    NXDOMAIN alike, as a resolver caches within the TTL), so each backend name is looked up once."""

    protocol_version = "HTTP/1.1"
    server_version = "shop-web/1.4"
    sys_version = ""
    resolved: dict[str, str | None] = {}

    def backend(self, name: str) -> str | None:
        if name not in self.resolved:
            self.resolved[name] = resolve(name)
        return self.resolved[name]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.route()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.route()

    def route(self) -> None:
        path = self.path
        if self.command == "POST" and path == "/api/checkout":
            if self.backend(PAYMENTS_NAME) is None:
                self.answer(503, {"error": f"payments backend {PAYMENTS_NAME} does not resolve"})
            else:
                self.answer(201, {"order": 1002})
        elif path == "/":
            self.answer(200, "<!doctype html>\n<title>shop</title>\n<h1>shop</h1>\n", "text/html")
        elif path == "/static/app.js":
            self.answer(200, "document.title = 'shop';\n" * 20, "application/javascript")
        elif path == "/api/products":
            self.backend(CATALOG_NAME)
            self.answer(200, {"products": [{"id": n, "name": f"item {n}"} for n in range(1, 6)]})
        elif path == "/api/cart":
            self.answer(200, {"items": [{"id": 3, "quantity": 1}]})
        elif path == "/api/recommendations":
            self.answer(500, {"error": "internal error"})
        else:
            self.answer(404, {"error": "not found"})

    def answer(self, status: int, body: object, content_type: str = "application/json") -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        sys.stderr.write(f"web-1: {format % args}\n")


def serve_web() -> None:
    # scapy takes a good part of a second to import: done here, it would make the first request that
    # looks a name up that much slower in the capture's latencies.
    import scapy.layers.dns  # noqa: F401

    http.server.HTTPServer((netns.SOURCE_IP, netns.HTTP_PORT), WebOne).serve_forever()


# --- web-1's clients, in the server namespace --------------------------------------------------------------


def clients() -> int:
    """Each request on its own connection, one after the other; prints the statuses as JSON."""
    statuses = []
    for method, path, _status, reset in REQUESTS:
        connection = http.client.HTTPConnection(netns.SOURCE_IP, netns.HTTP_PORT, timeout=10)
        body = json.dumps({"cart": 7}) if method == "POST" else None
        headers = {"Host": SITE_NAME, "User-Agent": "shop-client/2.0", "Accept": "*/*"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=body, headers=headers)
        if reset and connection.sock is not None:
            # Linger on with a zero timeout: the socket's close sends a RST instead of a FIN. Set before the
            # response: http.client hands a `Connection: close` response the socket and lets go of it.
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
        response.close()
        connection.close()
        time.sleep(REQUEST_SPACING_SECONDS)
    print(json.dumps(statuses))
    return 0


# --- the description ---------------------------------------------------------------------------------------


def describe(spec: CaptureScriptSpec, manifest: CaptureManifest, summary: ManifestFile, answered: list[int]) -> str:
    requests = "\n".join(
        f"   {number}. `{method} {path}` -> {status}" + (", then the client resets the connection" if reset else "")
        for number, ((method, path, _status, reset), status) in enumerate(zip(REQUESTS, answered, strict=True), 1)
    )
    return f"""# sample-capture.pcap

A real capture, made by `scripts/make-sample-capture.py` (run as root from the repository root):

    {COMMAND}

It is what the capture script delivered to S3 for one run, byte for byte. The script builds the network
namespace lab of `tools/mirrorcap_tools/netns.py` (the same one `tests/capture` uses). The source
namespace ({netns.SOURCE_IP}) plays web-1, the instance the demo's alarm (`mirrorcap-web-1-high-5xx`)
names; the server namespace ({netns.SERVER_IP}) holds its clients and its DNS server. Every frame in and
out of web-1 is mirrored by `tc mirred` into a Linux `vxlan` device (VNI {spec.vni}, UDP {netns.VXLAN_PORT})
towards a collector ({netns.COLLECTOR_IP}, interface `{manifest.interface}`), which is what a Traffic
Mirroring target receives. The collector runs the exact commands `render_run_command` renders for
AWS-RunShellScript (real tcpdump, a {spec.duration_seconds} s window), uploading to S3 served by moto on the
collector's loopback.

What was on the wire while it was captured:

1. HTTP: web-1 (HTTP/1.1 on {netns.SOURCE_IP}:{netns.HTTP_PORT}, Python's `http.server`) answers its
   clients (`Host: {SITE_NAME}`), each request on its own connection:
{requests}
2. DNS: web-1 looks up its backends at {netns.SERVER_IP}:{netns.DNS_PORT}, once each: `A {CATALOG_NAME}?`
   (answered `{netns.SERVER_IP}`) for the products, and `A {PAYMENTS_NAME}?` (NXDOMAIN) for the first
   checkout: so every checkout answers 503, the 5xx the alarm is about.
3. TCP: the one reset above (the client's RST after the 503); every other connection closes with FINs.

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

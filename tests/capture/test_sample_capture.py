"""The offline demo's sample capture is what its description says: a small real capture of VXLAN on 4789
(VNI 4242) wrapping web-1's HTTP service answering some requests with 5xx and 4xx among its 2xx, its two
DNS lookups (one NXDOMAIN) and one client's reset. The demo starts from a 5xx alarm; this is what its
report must show. No root needed."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import mirrorcap_tools.offline
from mirrorcap.collector.manifest import summarize_pcap_file
from mirrorcap.report import analyze_captures
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

DATA = Path(mirrorcap_tools.offline.__file__).parent / "data"
PCAP = DATA / "sample-capture.pcap"
DESCRIPTION = DATA / "sample-capture.md"
METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ")


def described_requests() -> list[tuple[str, int, bool]]:
    """[(request line without the version, status, reset?)] from the description's numbered list."""
    found = re.findall(r"^\s+\d+\. `([A-Z]+ \S+)` -> (\d{3})(, then the client resets)?", DESCRIPTION.read_text(), re.M)
    return [(request, int(status), bool(reset)) for request, status, reset in found]


def inner_frames() -> list:
    return [frame[VXLAN].payload for frame in rdpcap(str(PCAP))]


def payload(frame) -> bytes:
    return bytes(frame[TCP].payload) if TCP in frame else b""


def test_it_is_small_whole_and_described_exactly():
    summary = summarize_pcap_file(PCAP, "sample-capture.pcap")
    assert summary.bytes < 200_000
    text = DESCRIPTION.read_text()
    assert "scripts/make-sample-capture.py" in text
    assert f"| sha256 | `{summary.sha256}` |" in text
    assert f"| packets | {summary.packets} |" in text
    assert f"| bytes | {summary.bytes} |" in text


def test_every_packet_is_vxlan_on_4789_with_the_described_vni():
    vni = int(re.search(r"VNI (\d+)", DESCRIPTION.read_text())[1])
    for frame in rdpcap(str(PCAP)):
        assert frame[UDP].dport == 4789
        assert frame[VXLAN].vni == vni


def test_the_story_is_a_service_failing_with_5xx_among_4xx_and_2xx():
    statuses = Counter(status // 100 for _request, status, _reset in described_requests())
    assert statuses[5] >= 2 and statuses[4] >= 1 and statuses[2] > statuses[5]


def test_web_1_answers_the_described_requests_in_order():
    web_1 = re.search(r"web-1 \(HTTP/1\.1 on ([\d.]+):(\d+)", DESCRIPTION.read_text())
    inner = inner_frames()
    requests = [frame for frame in inner if payload(frame).startswith(METHODS)]
    responses = [frame for frame in inner if payload(frame).startswith(b"HTTP/1.")]
    assert [payload(frame).split(b" HTTP/1.1\r\n", 1)[0].decode() for frame in requests] == [
        request for request, _status, _reset in described_requests()
    ]
    assert [int(payload(frame).split(b" ")[1]) for frame in responses] == [
        status for _request, status, _reset in described_requests()
    ]
    assert {(frame[IP].dst, frame[TCP].dport) for frame in requests} == {(web_1[1], int(web_1[2]))}
    assert {(frame[IP].src, frame[TCP].sport) for frame in responses} == {(web_1[1], int(web_1[2]))}


def test_it_wraps_one_answered_lookup_and_one_nxdomain_by_web_1():
    text = DESCRIPTION.read_text()
    answered, missing = re.findall(r"`A (\S+)\?`\s+\((answered `[\d.]+`|NXDOMAIN)\)", text)
    dns = [frame for frame in inner_frames() if DNS in frame]
    assert [d[DNS].qr for d in dns] == [0, 1, 0, 1]
    queries, replies = dns[0::2], dns[1::2]
    assert [q[DNS].qd[0].qname.decode().rstrip(".") for q in queries] == [answered[0], missing[0]]
    assert [r[DNS].rcode for r in replies] == [0, 3]
    assert f"answered `{replies[0][DNS].an[0].rdata}`" == answered[1]
    web_1 = re.search(r"web-1 \(HTTP/1\.1 on ([\d.]+)", text)[1]
    assert {q[IP].src for q in queries} == {web_1}


def test_the_one_reset_is_the_client_s_on_the_described_connection():
    inner = inner_frames()
    resets = [frame for frame in inner if TCP in frame and frame[TCP].flags.R]
    assert len(resets) == 1
    (reset,) = resets
    (described,) = [request for request, _status, reset in described_requests() if reset]
    # The client's port identifies the connection; its request is the described one.
    client = (reset[IP].src, reset[TCP].sport)
    sent = [f for f in inner if TCP in f and (f[IP].src, f[TCP].sport) == client and payload(f)]
    assert payload(sent[0]).startswith(f"{described} HTTP/1.1\r\n".encode())


def test_the_report_shows_what_the_alarm_was_about():
    """The demo's report (the real analysis) counts the described 5xx, 4xx, RST and NXDOMAIN."""
    summary = analyze_captures([PCAP], read_ahead=False)
    described = described_requests()
    errors = Counter(f"{status} {request}" for request, status, _reset in described if status >= 400)
    assert summary.http.requests == summary.http.responses == len(described)
    assert summary.http.responses_by_status == dict(Counter(str(status) for _r, status, _reset in described))
    assert summary.http.error_paths[0].label == errors.most_common(1)[0][0]
    assert summary.http.error_paths[0].count == errors.most_common(1)[0][1]
    assert summary.tcp.rst == 1
    assert summary.dns.responses_by_rcode == {"NOERROR": 1, "NXDOMAIN": 1}

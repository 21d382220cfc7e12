"""The offline demo's sample capture is what its description says: a small real capture of VXLAN on 4789
(VNI 4242) wrapping a DNS lookup and two HTTP exchanges. No root needed."""

from __future__ import annotations

import re
from pathlib import Path

import mirrorcap_tools.offline
from mirrorcap.collector.manifest import summarize_pcap_file
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

DATA = Path(mirrorcap_tools.offline.__file__).parent / "data"
PCAP = DATA / "sample-capture.pcap"
DESCRIPTION = DATA / "sample-capture.md"


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


def test_it_wraps_a_dns_lookup_and_http_exchanges_with_the_server_it_named():
    inner = [frame[VXLAN].payload for frame in rdpcap(str(PCAP))]
    dns = [frame[DNS] for frame in inner if DNS in frame]
    assert [d.qr for d in dns] == [0, 1]
    gets = [frame for frame in inner if TCP in frame and bytes(frame[TCP].payload).startswith(b"GET ")]
    assert [bytes(frame[TCP].payload).split(b"\r\n", 1)[0] for frame in gets] == [
        b"GET / HTTP/1.1",
        b"GET /status.json HTTP/1.1",
    ]
    assert {frame[IP].dst for frame in gets} == {dns[1].an[0].rdata}
    responses = [frame for frame in inner if TCP in frame and bytes(frame[TCP].payload).startswith(b"HTTP/1.0 200")]
    assert len(responses) == 2

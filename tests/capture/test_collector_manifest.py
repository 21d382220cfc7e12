"""summarize_pcap_file and the manifest model. No root needed."""

from __future__ import annotations

import hashlib
import struct

import pytest
from mirrorcap.collector.manifest import CaptureManifest, summarize_pcap_file
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

KEY = "captures/mc-test-1/mc-test-1-20261124T160000Z-00000.pcap"


def packets(n: int):
    return [Ether() / IP(dst="10.0.0.2") / UDP(dport=4789) / bytes(i % 200) for i in range(n)]


def test_counts_what_scapy_wrote(tmp_path):
    path = tmp_path / "a.pcap"
    wrpcap(str(path), packets(25))
    summary = summarize_pcap_file(path, KEY)
    data = path.read_bytes()
    assert summary.key == KEY
    assert summary.bytes == len(data)
    assert summary.sha256 == hashlib.sha256(data).hexdigest()
    assert summary.packets == 25


def test_an_empty_capture_has_no_packets(tmp_path):
    path = tmp_path / "empty.pcap"
    wrpcap(str(path), [])
    assert summarize_pcap_file(path, KEY).packets == 0


@pytest.mark.parametrize("magic", [0xA1B2C3D4, 0xA1B23C4D])  # microsecond and nanosecond
@pytest.mark.parametrize("order", ["<", ">"])
def test_reads_either_byte_order_and_precision(tmp_path, magic, order):
    header = struct.pack(f"{order}IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    records = b"".join(struct.pack(f"{order}IIII", 1, 2, size, size) + b"\xab" * size for size in (60, 0, 1514))
    path = tmp_path / "x.pcap"
    path.write_bytes(header + records)
    assert summarize_pcap_file(path, KEY).packets == 3


def test_a_file_cut_inside_a_packet_is_refused(tmp_path):
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), packets(3))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="ends inside packet 3"):
        summarize_pcap_file(path, KEY)


def test_a_file_cut_inside_a_record_header_is_refused(tmp_path):
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), packets(1))
    path.write_bytes(path.read_bytes() + b"\x00" * 7)
    with pytest.raises(ValueError, match="inside a record header"):
        summarize_pcap_file(path, KEY)


@pytest.mark.parametrize("content", [b"", b"\x0a\x0d\x0d\x0a" + b"\x00" * 40, b"not a pcap at all, not at all"])
def test_other_formats_are_refused(tmp_path, content):
    path = tmp_path / "other"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a classic pcap"):
        summarize_pcap_file(path, KEY)


# What capture.sh writes (shape copied from a real run in the namespace lab; the capture tests check real ones).
SCRIPT_MANIFEST = """{
  "capture_id": "mc-dev-0001",
  "status": "stopped_early",
  "interface": "ens5",
  "vni": 4242,
  "started_at": "2026-11-24T16:32:34Z",
  "ended_at": "2026-11-24T16:32:43Z",
  "files": [
    {"key": "captures/mc-dev-0001/mc-dev-0001-20261124T163234Z-00000.pcap", "bytes": 1000736,
     "sha256": "2d7cb3d6cb9f839d3ebcb68e565f4d3a04409affa12558117a9c2bc2e91159c6", "packets": 947}
  ],
  "packets_captured": 947,
  "packets_received_by_filter": null,
  "packets_dropped_by_kernel": 0,
  "bpf_filter": "udp dst port 4789 and udp[12:4] >> 8 = 4242",
  "not_delivered": [],
  "exit_code": 3,
  "error": null
}"""


def test_the_model_reads_what_the_script_writes():
    manifest = CaptureManifest.model_validate_json(SCRIPT_MANIFEST)
    assert manifest.status == "stopped_early"
    assert manifest.files[0].packets == 947
    assert manifest.started_at.tzinfo is not None


def test_the_model_refuses_an_unknown_status():
    with pytest.raises(ValueError):
        CaptureManifest.model_validate_json(SCRIPT_MANIFEST.replace('"stopped_early"', '"partial"'))

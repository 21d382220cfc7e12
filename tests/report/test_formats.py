"""Every container format and byte order gives the same report; unreadable files raise a clear error;
damage inside a file is counted, never raised."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mirrorcap.report import UnreadableCapture, analyze_captures, decapsulate, render_html
from scapy.utils import wrpcapng

from tests.support.pcap_crafting import START, TcpConversation, known_records, record, vxlan, write_pcap, write_pcapng

RECORDS = known_records()  # the capture most tests read: contents listed in known_records


def _essentials(summary) -> dict:
    """Everything that must not depend on the container format."""
    return summary.model_dump(mode="json", exclude={"generated_at", "files"})


def test_classic_pcap_reports_the_known_contents(tmp_path: Path) -> None:
    summary = analyze_captures([write_pcap(tmp_path / "c.pcap", RECORDS)], capture_id="cap-1")
    assert summary.capture_id == "cap-1"
    assert summary.totals.packets == len(RECORDS) == summary.totals.vxlan_packets
    assert summary.vnis[0].vni == 101 and summary.vnis[0].packets == len(RECORDS)
    assert summary.http.requests == 3 and summary.http.responses == 3
    assert summary.http.responses_by_status == {"200": 2, "500": 1}
    assert [error.label for error in summary.http.error_paths] == ["500 POST /api/orders"]
    assert summary.http.requests_by_method == {"GET": 2, "POST": 1}
    assert {host.host: host.requests for host in summary.http.requests_by_host} == {"shop.example": 2, "api.example": 1}
    assert summary.tcp.syn == 2 and summary.tcp.syn_ack == 2 and summary.tcp.fin == 4 and summary.tcp.rst == 0
    assert summary.tcp.retransmissions == 0
    assert summary.tcp.handshake_rtt_ms.count == 2
    assert summary.tcp.handshake_rtt_ms.max == pytest.approx(4.0, abs=0.01)
    assert summary.dns.queries == 2 and summary.dns.responses_by_rcode == {"NOERROR": 1, "NXDOMAIN": 1}
    assert summary.dns.failures[0].name == "missing.example"
    assert summary.malformed.total == 0
    assert sum(summary.timeline.packets) == len(RECORDS)
    assert summary.window.start.timestamp() == pytest.approx(START)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_classic_pcap_byte_orders_and_resolutions_agree(tmp_path: Path, big_endian: bool, nanoseconds: bool) -> None:
    reference = analyze_captures([write_pcap(tmp_path / "ref.pcap", RECORDS)])
    variant = write_pcap(tmp_path / "v.pcap", RECORDS, big_endian=big_endian, nanoseconds=nanoseconds)
    summary = analyze_captures([variant])
    assert summary.files[0].byte_order == ("big" if big_endian else "little")
    assert summary.files[0].timestamp_resolution == ("ns" if nanoseconds else "us")
    assert _essentials(summary) == _essentials(reference)


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("tsresol", [6, 9])
def test_pcapng_agrees_with_classic_pcap(tmp_path: Path, big_endian: bool, tsresol: int) -> None:
    reference = analyze_captures([write_pcap(tmp_path / "ref.pcap", RECORDS)])
    summary = analyze_captures([write_pcapng(tmp_path / "c.pcapng", RECORDS, big_endian=big_endian, tsresol=tsresol)])
    assert summary.files[0].format == "pcapng"
    assert _essentials(summary) == _essentials(reference)


def test_pcapng_written_by_scapy(tmp_path: Path) -> None:
    conversation = TcpConversation()
    conversation.handshake(START, rtt=0.002)
    packets = []
    for ts, frame in conversation.sent:
        packet = vxlan(frame)
        packet.time = ts
        packets.append(packet)
    path = tmp_path / "scapy.pcapng"
    wrpcapng(str(path), packets)
    summary = analyze_captures([path])
    assert summary.totals.packets == 3
    assert summary.tcp.syn == 1 and summary.tcp.handshake_rtt_ms.count == 1


def test_gzip_compressed_capture(tmp_path: Path) -> None:
    plain = write_pcap(tmp_path / "c.pcap", RECORDS)
    compressed = tmp_path / "c.pcap.gz"
    compressed.write_bytes(gzip.compress(plain.read_bytes()))
    assert _essentials(analyze_captures([compressed])) == _essentials(analyze_captures([plain]))


def test_rotated_files_are_one_capture_in_time_order(tmp_path: Path) -> None:
    whole = analyze_captures([write_pcap(tmp_path / "whole.pcap", RECORDS)])
    third = len(RECORDS) // 3
    parts = [
        write_pcap(tmp_path / "part2.pcap", RECORDS[third : 2 * third]),
        write_pcapng(tmp_path / "part3.pcapng", RECORDS[2 * third :]),
        write_pcap(tmp_path / "part1.pcap", RECORDS[:third], big_endian=True),
    ]
    summary = analyze_captures(parts)
    assert [entry.name for entry in summary.files] == ["part1.pcap", "part2.pcap", "part3.pcapng"]
    assert _essentials(summary) == _essentials(whole)


@pytest.mark.parametrize("chunk_bytes", [64, 257, 1000, 4096])
def test_chunk_boundaries_change_nothing(tmp_path: Path, chunk_bytes: int) -> None:
    path = write_pcap(tmp_path / "c.pcap", RECORDS)
    assert _essentials(analyze_captures([path], chunk_bytes=chunk_bytes)) == _essentials(analyze_captures([path]))


def test_header_only_capture_is_an_empty_report(tmp_path: Path) -> None:
    summary = analyze_captures([write_pcap(tmp_path / "none.pcap", [])])
    assert summary.totals.packets == 0 and summary.window.start is None
    assert summary.timeline.packets == [] and summary.http.requests == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "not a pcap or pcapng"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "too short"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x00\x00\x00\x00", "byte-order magic"),
    ],
)
def test_unreadable_files_raise_a_clear_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(UnreadableCapture, match=reason) as raised:
        analyze_captures([path])
    assert "bad.pcap" in str(raised.value)


def test_a_missing_file_raises_before_any_analysis(tmp_path: Path) -> None:
    good = write_pcap(tmp_path / "good.pcap", RECORDS)
    with pytest.raises(UnreadableCapture, match="missing.pcap: cannot open"):
        analyze_captures([good, tmp_path / "missing.pcap"])


def test_file_cut_mid_record_counts_the_rest_and_one_malformed(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "cut.pcap", RECORDS)
    path.write_bytes(path.read_bytes()[:-10])
    summary = analyze_captures([path])
    assert summary.totals.packets == len(RECORDS) - 1
    assert summary.malformed.by_reason == {"record_cut_short": 1}
    assert "ends" in summary.files[0].problems[0]


def test_corrupt_record_header_stops_that_file_only(tmp_path: Path) -> None:
    damaged = bytearray(write_pcap(tmp_path / "a.pcap", RECORDS[:5]).read_bytes())
    damaged += b"\x00" * 8 + b"\xff\xff\xff\x7f" * 2  # a record header claiming 2 GB
    (tmp_path / "a.pcap").write_bytes(bytes(damaged))
    later = [record(vxlan(TcpConversation().frame(True, "S", b"", 1, 0)), START + 10)]
    summary = analyze_captures([tmp_path / "a.pcap", write_pcap(tmp_path / "b.pcap", later)])
    assert summary.totals.packets == 6
    assert summary.malformed.by_reason == {"corrupt_record_header": 1}


def test_packets_truncated_by_snaplen_count_their_original_length(tmp_path: Path) -> None:
    full = analyze_captures([write_pcap(tmp_path / "full.pcap", RECORDS)])
    snapped = [type(item)(item.ts_ns, item.data[:110], item.origlen) for item in RECORDS]
    summary = analyze_captures([write_pcap(tmp_path / "snap.pcap", snapped, snaplen=110)])
    assert summary.totals.wire_bytes == full.totals.wire_bytes
    assert summary.totals.traffic_bytes == full.totals.traffic_bytes
    assert summary.vnis == full.vnis
    assert summary.totals.truncated_packets == sum(1 for item in RECORDS if len(item.data) > 110)
    assert summary.tcp.syn == full.tcp.syn


def test_packets_cut_by_mirror_packet_length_count_the_inner_ip_length(tmp_path: Path) -> None:
    # VPC Traffic Mirroring's PacketLength cuts the packet before the collector sees it: the record's
    # original length is the cut length, and only the inner IP header still knows the real size.
    full = analyze_captures([write_pcap(tmp_path / "full.pcap", RECORDS)])
    cut = [record(item.data[:110], item.ts_ns / 1e9) for item in RECORDS]
    summary = analyze_captures([write_pcap(tmp_path / "cut.pcap", cut)])
    assert summary.totals.traffic_bytes == full.totals.traffic_bytes
    assert summary.totals.truncated_packets == sum(1 for item in RECORDS if len(item.data) > 110)
    assert summary.http.requests == 0  # the payloads were cut away, the headers were not
    assert summary.tcp.syn == full.tcp.syn and summary.malformed.total == 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    pcapng=st.booleans(),
    chunk_bytes=st.sampled_from([64, 300, 1 << 16]),
)
def test_damaged_files_never_crash(tmp_path: Path, data, pcapng: bool, chunk_bytes: int) -> None:
    """Random byte damage and truncation anywhere: a report, or UnreadableCapture, and nothing else."""
    writer = write_pcapng if pcapng else write_pcap
    content = bytearray(writer(tmp_path / "ok", RECORDS[:8]).read_bytes())
    for _ in range(data.draw(st.integers(1, 12))):
        content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "damaged"
    path.write_bytes(bytes(content[: data.draw(st.integers(0, len(content)))]))
    try:
        summary = analyze_captures([path], chunk_bytes=chunk_bytes)
    except UnreadableCapture:
        return
    assert summary.totals.packets >= summary.malformed.total - len(summary.malformed.by_reason)
    render_html(summary)
    decapsulate([path], tmp_path / "out.pcap", chunk_bytes=chunk_bytes)

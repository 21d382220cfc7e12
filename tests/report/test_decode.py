"""Header decoding: the inner frame of VXLAN through VLAN tags, IPv6, fragments and truncation; plain
packets; damage counted by reason; and the fast path always agreeing with the general decoder."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mirrorcap.report import analyze_captures
from mirrorcap.report.decode import Decoded, decode, decode_general
from mirrorcap.report.formats import CaptureReader
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from tests.support.pcap_crafting import START, record, vxlan, write_pcap

INNER = Ether() / IP(src="192.168.1.10", dst="192.168.1.20") / TCP(sport=40000, dport=80, flags="S")


def _summary(tmp_path: Path, packets: list, **options):
    records = [record(packet, START + number * 0.001) for number, packet in enumerate(packets)]
    return analyze_captures([write_pcap(tmp_path / "c.pcap", records, **options)])


def test_inner_vlan_tags_are_skipped(tmp_path: Path) -> None:
    tagged = Ether() / Dot1Q(vlan=10) / Dot1Q(vlan=20) / INNER[IP]
    summary = _summary(tmp_path, [vxlan(tagged), vxlan(Ether() / Dot1Q(vlan=5) / INNER[IP])])
    assert summary.totals.vlan_tagged_packets == 2
    assert summary.tcp.syn == 2 and summary.malformed.total == 0
    assert summary.top_conversations[0].port_b == 80


def test_inner_ipv6_and_outer_ipv6(tmp_path: Path) -> None:
    inner6 = Ether() / IPv6(src="2001:db8::10", dst="2001:db8::20") / TCP(sport=40000, dport=443, flags="S")
    summary = _summary(tmp_path, [vxlan(inner6), vxlan(INNER, outer_ipv6=True)])
    assert summary.totals.ipv6_packets == 1 and summary.totals.ipv4_packets == 1
    assert summary.totals.vxlan_packets == 2
    assert {talker.address for talker in summary.top_talkers} >= {"2001:db8::10", "192.168.1.10"}
    assert {entry.protocol for entry in summary.applications} == {"https", "http"}


def test_ip_fragments_are_counted_and_only_the_first_has_ports(tmp_path: Path) -> None:
    datagram = IP(src="192.168.1.10", dst="192.168.1.20") / UDP(sport=5000, dport=6000) / Raw(b"x" * 3000)
    pieces = fragment(datagram, fragsize=1000)
    summary = _summary(tmp_path, [vxlan(Ether() / piece) for piece in pieces])
    assert summary.totals.fragments == len(pieces) > 1
    assert summary.malformed.total == 0
    ports = {(c.port_a, c.port_b) for c in summary.top_conversations}
    assert ports == {(5000, 6000), (0, 0)}


def test_non_vxlan_packets_are_analysed_as_they_are(tmp_path: Path) -> None:
    arp = Ether() / ARP()
    summary = _summary(tmp_path, [INNER, arp, vxlan(INNER, vni=7)])
    assert summary.totals.other_packets == 2 and summary.totals.vxlan_packets == 1
    assert {entry.vni: entry.packets for entry in summary.vnis} == {None: 2, 7: 1}
    assert {entry.protocol: entry.packets for entry in summary.protocols} == {"tcp": 2, "arp": 1}
    assert summary.tcp.syn == 2


def test_linux_cooked_capture_is_read(tmp_path: Path) -> None:
    # tcpdump -i any writes LINKTYPE_LINUX_SLL: 16-byte header, protocol at offset 14.
    sll = b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 6 + b"\x00\x00" + b"\x08\x00"
    outer = vxlan(INNER)[IP]
    summary = _summary(tmp_path, [sll + bytes(outer)], linktype=113)
    assert summary.totals.vxlan_packets == 1 and summary.tcp.syn == 1


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (bytes(vxlan(INNER))[:60], "vxlan_truncated"),
        (Ether() / IP(dst="10.0.0.9") / UDP(sport=1, dport=4789) / VXLAN(flags=0) / INNER, "vxlan_flags_invalid"),
        (vxlan(Ether(type=0x0800) / Raw(b"\x55" + bytes(INNER[IP])[1:])), "ip_header_invalid"),
        (vxlan(Ether() / IP(ihl=3) / TCP()), "ip_header_invalid"),
        (vxlan(Ether() / IP() / TCP(dataofs=15)), "tcp_header_invalid"),
        (bytes(vxlan(INNER))[: 14 + 20 + 8 + 8 + 14 + 20 + 10], "transport_header_truncated"),
        (Ether(type=0x0800) / Raw(b"\x45\x00"), "ip_header_truncated"),
    ],
)
def test_bad_packets_are_counted_by_reason(tmp_path: Path, packet, reason: str) -> None:
    summary = _summary(tmp_path, [packet, vxlan(INNER)])
    assert summary.totals.packets == 2
    assert summary.malformed.by_reason == {reason: 1}
    assert summary.tcp.syn == 1


def test_unsupported_link_type_is_counted(tmp_path: Path) -> None:
    summary = _summary(tmp_path, [bytes(INNER)], linktype=147)
    assert summary.malformed.by_reason == {"unsupported_link_type": 1}


# --- The fast path agrees with the general decoder ------------------------------------------------------

VARIETY = [
    vxlan(INNER),
    vxlan(Ether() / IP(src="192.168.1.10", dst="192.168.1.2") / UDP(sport=53000, dport=53) / Raw(b"\x00" * 20)),
    vxlan(
        Ether()
        / IP(src="1.2.3.4", dst="5.6.7.8", options=b"\x01\x01\x01\x00")
        / TCP(flags="PA")
        / Raw(b"GET / HTTP/1.1\r\n\r\n")
    ),
    vxlan(
        Ether()
        / IP()
        / TCP(
            dataofs=8,
            options=[("MSS", 1460), ("NOP", None), ("WScale", 7), ("NOP", None), ("NOP", None), ("NOP", None)],
        )
    ),
    vxlan(Ether() / IPv6() / UDP()),
    vxlan(Ether() / Dot1Q(vlan=3) / IP() / UDP(dport=4789)),
    INNER,
    Ether() / IP() / UDP(dport=4789) / Raw(b"short"),
    Ether() / ARP(),
    bytes(vxlan(INNER))[:90],
    bytes(vxlan(Ether() / IP(src="10.1.1.1", dst="10.1.1.2") / TCP() / Raw(b"x" * 600)))[:120],
]


def _decode_both(tmp_path: Path, packets: list[bytes]) -> tuple[Decoded, Decoded]:
    path = write_pcap(tmp_path / "v.pcap", [record(bytes(p), START) for p in packets])
    with CaptureReader(path) as reader:
        batch = next(reader.batches())
        return decode(batch), decode_general(batch)


def _assert_same(fast: Decoded, general: Decoded) -> None:
    for field in fields(Decoded):
        values = getattr(fast, field.name)
        if isinstance(values, np.ndarray):
            np.testing.assert_array_equal(values, getattr(general, field.name), err_msg=field.name)


def test_fast_path_agrees_with_the_general_decoder(tmp_path: Path) -> None:
    _assert_same(*_decode_both(tmp_path, VARIETY))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    choice=st.integers(0, len(VARIETY) - 1),
    flips=st.lists(st.tuples(st.integers(0, 140), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(1, 200),
)
def test_damaged_packets_decode_the_same_both_ways(tmp_path: Path, choice: int, flips, cut: int) -> None:
    data = bytearray(bytes(VARIETY[choice]))
    for position, value in flips:
        if position < len(data):
            data[position] = value
    _assert_same(*_decode_both(tmp_path, [bytes(data[:cut]), bytes(data)]))

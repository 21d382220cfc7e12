"""Crafting captures with known contents for the report tests.

Frames are built with scapy; files are written byte by byte here, so each test controls exactly what the
reader sees: byte order, timestamp resolution, pcapng options, truncation, a record cut in half.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
COLLECTOR = "10.0.0.9"
SOURCE_ENI = "10.0.0.5"


@dataclass(frozen=True)
class Record:
    """One packet as it will be written: capture time, bytes, and the original length on the wire."""

    ts_ns: int
    data: bytes
    origlen: int


def record(packet: Packet | bytes, ts: float, *, snaplen: int | None = None, origlen: int | None = None) -> Record:
    data = bytes(packet)
    length = len(data) if origlen is None else origlen
    # Whole microseconds, so that micro- and nanosecond files of the same records are identical.
    return Record(ts_ns=round(ts * 1e6) * 1000, data=data[:snaplen] if snaplen else data, origlen=length)


def vxlan(inner: Packet, vni: int = 101, *, outer_ipv6: bool = False) -> Packet:
    """`inner` as a VPC Traffic Mirroring target receives it: outer Ethernet/IP/UDP 4789/VXLAN."""
    outer_ip = IPv6(src="fd00::5", dst="fd00::9") if outer_ipv6 else IP(src=SOURCE_ENI, dst=COLLECTOR)
    return Ether() / outer_ip / UDP(sport=49152, dport=4789) / VXLAN(vni=vni, flags=0x08) / inner


@dataclass
class TcpConversation:
    """Both directions of one TCP connection with correct sequence numbers, as inner frames."""

    client: str = "192.168.1.10"
    server: str = "192.168.1.20"
    client_port: int = 40000
    server_port: int = 80
    ipv6: bool = False
    vlan: int | None = None
    client_seq: int = 1000
    server_seq: int = 5000
    sent: list[tuple[float, Packet]] = field(default_factory=list)

    def frame(self, from_client: bool, flags: str, payload: bytes, seq: int, ack: int) -> Packet:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        sport, dport = (self.client_port, self.server_port) if from_client else (self.server_port, self.client_port)
        ip = IPv6(src=src, dst=dst) if self.ipv6 else IP(src=src, dst=dst)
        l2 = Ether() / Dot1Q(vlan=self.vlan) if self.vlan is not None else Ether()
        segment = ip / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
        return l2 / segment / Raw(payload) if payload else l2 / segment

    def send(self, ts: float, from_client: bool, flags: str = "PA", payload: bytes = b"") -> Packet:
        seq, ack = (self.client_seq, self.server_seq) if from_client else (self.server_seq, self.client_seq)
        frame = self.frame(from_client, flags, payload, seq, ack if "A" in flags else 0)
        consumed = len(payload) + ("S" in flags) + ("F" in flags)
        if from_client:
            self.client_seq = (self.client_seq + consumed) % 2**32
        else:
            self.server_seq = (self.server_seq + consumed) % 2**32
        self.sent.append((ts, frame))
        return frame

    def handshake(self, ts: float, rtt: float) -> None:
        self.send(ts, True, "S")
        self.send(ts + rtt / 2, False, "SA")
        self.send(ts + rtt, True, "A")

    def close(self, ts: float) -> None:
        self.send(ts, True, "FA")
        self.send(ts + 0.001, False, "FA")
        self.send(ts + 0.002, True, "A")


def http_exchange(
    conversation: TcpConversation,
    ts: float,
    method: str = "GET",
    path: str = "/",
    status: int = 200,
    host: str = "shop.example",
    latency: float = 0.010,
    body: bytes = b"ok",
) -> None:
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test\r\n\r\n".encode()
    response = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    conversation.send(ts, True, "PA", request)
    conversation.send(ts + latency, False, "PA", response)
    conversation.send(ts + latency + 0.0005, True, "A")


def dns_query(
    name: str, ts: float, rcode: int = 0, qtype: str = "A", client_port: int = 53000
) -> list[tuple[float, Packet]]:
    query = DNS(id=7, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    answer = DNS(id=7, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype))
    return [
        (ts, Ether() / IP(src="192.168.1.10", dst="192.168.1.2") / UDP(sport=client_port, dport=53) / query),
        (ts + 0.002, Ether() / IP(src="192.168.1.2", dst="192.168.1.10") / UDP(sport=53, dport=client_port) / answer),
    ]


def encapsulate(frames: Iterable[tuple[float, Packet]], vni: int = 101) -> list[Record]:
    return [record(vxlan(frame, vni), ts) for ts, frame in frames]


def known_records() -> list[Record]:
    """Two HTTP connections (one 500 on POST /api/orders), a DNS lookup that fails and one that works,
    all inside VXLAN with VNI 101: 25 packets."""
    shop = TcpConversation(client_port=40000)
    shop.handshake(START, rtt=0.004)
    http_exchange(shop, START + 0.010, "POST", "/api/orders?id=7", 500, latency=0.050)
    http_exchange(shop, START + 0.100, "GET", "/api/orders", 200, latency=0.020)
    shop.close(START + 0.200)
    health = TcpConversation(client_port=40001)
    health.handshake(START + 1.0, rtt=0.002)
    http_exchange(health, START + 1.010, "GET", "/health", 200, host="api.example", latency=0.005)
    health.close(START + 1.100)
    lookups = dns_query("shop.example", START + 1.5) + dns_query(
        "missing.example", START + 1.6, rcode=3, client_port=53001
    )
    return encapsulate(sorted(shop.sent + health.sent + lookups, key=lambda item: item[0]))


# --- File writers -----------------------------------------------------------------------------------------


def write_pcap(
    path: Path,
    records: Iterable[Record],
    *,
    big_endian: bool = False,
    nanoseconds: bool = False,
    linktype: int = 1,
    snaplen: int = 262144,
) -> Path:
    endian = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    chunks = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for item in records:
        seconds, fraction = divmod(item.ts_ns, 1_000_000_000)
        fraction = fraction if nanoseconds else fraction // 1000
        chunks.append(struct.pack(endian + "IIII", seconds, fraction, len(item.data), item.origlen) + item.data)
    path.write_bytes(b"".join(chunks))
    return path


def _pcapng_block(endian: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(endian + "II", block_type, length) + body + struct.pack(endian + "I", length)


def write_pcapng(
    path: Path,
    records: Iterable[Record],
    *,
    big_endian: bool = False,
    tsresol: int = 6,
    linktype: int = 1,
) -> Path:
    """A section header, one interface (with if_tsresol unless it is the default 6) and enhanced packet
    blocks; a name-resolution block in between shows that unknown blocks are skipped."""
    endian = ">" if big_endian else "<"
    section = _pcapng_block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = b""
    if tsresol != 6:
        options = struct.pack(endian + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(endian + "HH", 0, 0)
    interface = _pcapng_block(endian, 1, struct.pack(endian + "HHI", linktype, 0, 262144) + options)
    names = _pcapng_block(endian, 4, struct.pack(endian + "HH", 0, 0))
    blocks = [section, interface, names]
    for item in records:
        units = item.ts_ns // 10 ** (9 - tsresol) if tsresol <= 9 else item.ts_ns * 10 ** (tsresol - 9)
        header = struct.pack(endian + "IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(item.data), item.origlen)
        blocks.append(_pcapng_block(endian, 6, header + item.data))
    path.write_bytes(b"".join(blocks))
    return path

"""Vectorised header decode of one batch of records.

Outer link layer, IP, UDP and VXLAN first; then the *traffic frame*: the Ethernet frame inside VXLAN,
or the packet itself when it is not VXLAN (so the report also works on an ordinary capture). That frame
is decoded through VLAN tags, IPv4/IPv6 (extension headers, fragments), TCP and UDP. Each step is one
numpy gather per field at a per-packet offset; a packet whose headers end early is marked with a
`Malformed` reason and is never read past its captured bytes.

Nearly every packet of a mirror capture has the same layout, so a fast path decodes those from one
gather of their headers, every field at a fixed offset, and only the other packets take the general,
layer-by-layer way. A property test checks that both ways always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np

from mirrorcap.report.fields import RawBytes, big_endian, gather_address, gather_bytes, gather_uint
from mirrorcap.report.formats import RecordBatch

VXLAN_PORT = 4789
VXLAN_HEADER_BYTES = 8
ETHERNET_HEADER_BYTES = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_ARP = 0x0806
VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)
MAX_VLAN_TAGS = 2
IPV6_EXTENSION_HEADERS = (0, 43, 44, 51, 60)  # hop-by-hop, routing, fragment, AH, destination options
MAX_IPV6_EXTENSION_HEADERS = 4
IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_ICMPV6 = 1, 6, 17, 58

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# BSD loopback address families that mean IPv6 (they differ by OS); 2 is IPv4 everywhere.
NULL_FAMILIES_IPV6 = (24, 28, 30)


class Kind(IntEnum):
    """What the traffic frame carries, for the protocol mix."""

    TCP = 0
    UDP = 1
    ICMP = 2
    ICMPV6 = 3
    OTHER_IP = 4
    ARP = 5
    OTHER_ETHERTYPE = 6
    UNDECODED = 7


class Malformed(IntEnum):
    """Why a packet could not be decoded as far as its headers claim; the first reason found wins."""

    NONE = 0
    BAD_RECORD = 1
    UNSUPPORTED_LINK_TYPE = 2
    LINK_HEADER_TRUNCATED = 3
    VXLAN_TRUNCATED = 4
    VXLAN_FLAGS_INVALID = 5
    IP_HEADER_TRUNCATED = 6
    IP_HEADER_INVALID = 7
    TRANSPORT_HEADER_TRUNCATED = 8
    TCP_HEADER_INVALID = 9
    UDP_HEADER_INVALID = 10


@dataclass
class Decoded:
    """Per-packet header fields of one batch; every array has one entry per packet."""

    buf: np.ndarray
    raw: RawBytes  # the same bytes as `buf`, for byte-string searches
    ts_ns: np.ndarray
    wire_len: np.ndarray  # original length of the captured packet
    data_start: np.ndarray  # where the captured packet starts in buf
    caplen: np.ndarray
    vxlan: np.ndarray  # bool
    vni: np.ndarray  # -1 when the packet is not VXLAN
    frame_offset: np.ndarray  # where the traffic frame starts, relative to data_start
    frame_len: np.ndarray  # original length of the traffic frame: the bytes the report counts
    kind: np.ndarray  # Kind
    malformed: np.ndarray  # Malformed
    vlan_tagged: np.ndarray  # bool: the traffic frame carries 802.1Q/802.1ad tags
    ip_version: np.ndarray  # int8: 0, 4 or 6
    fragment: np.ndarray  # bool: part of a fragmented IP datagram
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    proto: np.ndarray  # IP protocol number, -1 when not IP
    has_ports: np.ndarray  # bool: a TCP or UDP header was decoded
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    seq: np.ndarray  # TCP sequence number as int64
    payload_start: np.ndarray  # absolute position in buf of the TCP/UDP payload
    payload_len: np.ndarray  # payload length claimed by the IP and transport headers
    payload_caplen: np.ndarray  # how much of the payload was captured

    def __len__(self) -> int:
        return len(self.ts_ns)


class _Frames:
    """Gathers fields at per-packet offsets, clipped to each packet's captured bytes so that no offset,
    however damaged the headers it came from, reads outside the buffer (the reader leaves slack)."""

    def __init__(self, buf: np.ndarray, start: np.ndarray, caplen: np.ndarray) -> None:
        self.buf, self.start, self.caplen = buf, start, caplen

    def subset(self, selector: np.ndarray) -> _Frames:
        return _Frames(self.buf, self.start[selector], self.caplen[selector])

    def position(self, offset: np.ndarray | int, delta: int) -> np.ndarray:
        return self.start + np.minimum(offset, self.caplen) + delta

    def uint(self, offset: np.ndarray | int, delta: int, width: int) -> np.ndarray:
        return gather_uint(self.buf, self.position(offset, delta), width)

    def has(self, offset: np.ndarray | int, length: int) -> np.ndarray:
        return self.caplen >= np.asarray(offset) + length


def _mark(malformed: np.ndarray, mask: np.ndarray, reason: Malformed) -> None:
    malformed[mask & (malformed == Malformed.NONE)] = reason


def decode(batch: RecordBatch) -> Decoded:
    """Headers of every packet: the common layout through the fast path, the rest the general way."""
    fast = _fast_path(batch)
    if fast is None:
        return decode_general(batch)
    usual, decoded = fast
    unusual = np.flatnonzero(~usual)
    if len(unusual):
        general = decode_general(batch.subset(unusual))
        for field in fields(Decoded):
            values = getattr(decoded, field.name)
            if isinstance(values, np.ndarray) and values.shape == (len(batch),):
                values[unusual] = getattr(general, field.name)
    return decoded


# The layout of nearly every packet a mirror target captures: Ethernet, IPv4 without options, UDP to
# 4789, VXLAN, then an untagged Ethernet frame with IPv4 without options carrying TCP or UDP (or that
# same frame on its own, in an ordinary capture). Every field then sits at a fixed offset.
OUTER_FRAME_BYTES = 14 + 20 + 8 + VXLAN_HEADER_BYTES
# The traffic frame's Ethernet, IPv4 and TCP headers, up to the TCP flags.
FRAME_HEADER_BYTES = 14 + 20 + 14
# Ethertype IPv4, then IP version 4 with a 20-byte header, as the 3 top bytes of a big-endian uint32.
_IPV4_NO_OPTIONS = ((ETHERTYPE_IPV4 << 8) | 0x45) << 8


def _fast_path(batch: RecordBatch) -> tuple[np.ndarray, Decoded] | None:
    """(which packets have the usual layout, their decode); None when the link type is not Ethernet.
    One gather copies the headers of every packet; each field is then read at its fixed offset."""
    if not (batch.linktype == LINKTYPE_ETHERNET).all():
        return None
    start, caplen, origlen = batch.data_start, batch.caplen, batch.origlen
    width = OUTER_FRAME_BYTES + FRAME_HEADER_BYTES
    if batch.head is not None and batch.head.shape[1] >= width:  # gathered already, with the record headers
        headers = batch.head[:, :width]
    else:
        headers = gather_bytes(batch.raw, start, width)
    vxlan = (
        (big_endian(headers, 12, 4, np.uint32) & 0xFFFFFF00 == _IPV4_NO_OPTIONS)
        # Not a fragment (offset and more-fragments flag), and UDP.
        & (big_endian(headers, 20, 4, np.uint32) & 0x3FFF00FF == IP_PROTO_UDP)
        & (big_endian(headers, 36, 2) == VXLAN_PORT)
        & (headers[:, 42] & 0x08 != 0)  # the VNI-valid flag
    )
    frame = vxlan * OUTER_FRAME_BYTES
    if vxlan.all():
        inner = headers[:, OUTER_FRAME_BYTES:]
    elif not vxlan.any():
        inner = headers
    else:
        inner = gather_bytes(batch.raw, start + frame, FRAME_HEADER_BYTES)
    total = big_endian(inner, 16, 2)
    proto = inner[:, 23].astype(np.int64)
    tcp, udp = proto == IP_PROTO_TCP, proto == IP_PROTO_UDP
    dport = big_endian(inner, 36, 2)
    minimum_header = 8 + 12 * tcp  # UDP's, or TCP's without options
    header = np.where(tcp, (inner[:, 46] >> 4).astype(np.int64) * 4, 8)
    l4_len = total - 20
    usual = (
        (big_endian(inner, 12, 4, np.uint32) & 0xFFFFFF00 == _IPV4_NO_OPTIONS)
        & (big_endian(inner, 20, 2) & 0x3FFF == 0)
        & (tcp | udp)
        & (caplen >= frame + 34 + minimum_header)
        & (header >= minimum_header)
        & (header <= l4_len)
        & ~batch.bad_record
        # Not VXLAN yet sent to its port: the general path says why (truncated, bad flags, ...).
        & ~(~vxlan & udp & (dport == VXLAN_PORT))
    )
    payload_offset = frame + 34 + header
    payload_len = l4_len - header
    n = len(batch)
    mapped = np.uint64(0xFFFF << 32)
    decoded = Decoded(
        buf=batch.buf,
        raw=batch.raw,
        ts_ns=batch.ts_ns,
        wire_len=origlen,
        data_start=start,
        caplen=caplen,
        vxlan=vxlan,
        vni=np.where(vxlan, big_endian(headers, 46, 4) >> 8, -1),
        frame_offset=frame,
        frame_len=np.where(vxlan, np.maximum(origlen - OUTER_FRAME_BYTES, ETHERNET_HEADER_BYTES + total), origlen),
        kind=udp.astype(np.int8),  # Kind.TCP is 0, Kind.UDP 1; unusual packets are decoded again
        malformed=np.zeros(n, dtype=np.int8),
        vlan_tagged=np.zeros(n, dtype=bool),
        ip_version=np.full(n, 4, dtype=np.int8),
        fragment=np.zeros(n, dtype=bool),
        src_hi=np.zeros(n, dtype=np.uint64),
        src_lo=big_endian(inner, 26, 4, np.uint64) | mapped,
        dst_hi=np.zeros(n, dtype=np.uint64),
        dst_lo=big_endian(inner, 30, 4, np.uint64) | mapped,
        proto=proto,
        has_ports=np.ones(n, dtype=bool),
        sport=big_endian(inner, 34, 2),
        dport=dport,
        tcp_flags=np.multiply(inner[:, 47], tcp, dtype=np.int64),
        seq=big_endian(inner, 38, 4) * tcp,
        payload_start=start + payload_offset,
        payload_len=payload_len,
        payload_caplen=np.clip(caplen - payload_offset, 0, payload_len),
    )
    return usual, decoded


def decode_general(batch: RecordBatch) -> Decoded:
    frames = _Frames(batch.buf, batch.data_start, batch.caplen)
    n = len(batch)
    malformed = np.zeros(n, dtype=np.int8)
    _mark(malformed, batch.bad_record, Malformed.BAD_RECORD)

    ethertype, l3, outer_tagged = _link_layer(frames, batch.linktype, malformed)
    vxlan, vni, inner = _vxlan(frames, ethertype, l3, malformed)
    inner_ethertype, inner_l3, inner_tagged = _ethernet(frames, inner, vxlan)
    _mark(malformed, vxlan & ~frames.has(inner, ETHERNET_HEADER_BYTES), Malformed.VXLAN_TRUNCATED)
    ethertype = np.where(vxlan, inner_ethertype, ethertype)
    l3 = np.where(vxlan, inner_l3, l3)
    frame_offset = np.where(vxlan, inner, 0)

    alive = malformed == Malformed.NONE
    ip = _ip(frames, ethertype, l3, alive, malformed)
    transport = _transport(frames, ip, malformed)

    # Mirror truncation (PacketLength) cuts the packet before the collector sees it, so the record's
    # original length is already short: the inner IP length is then the only record of the real size.
    recorded = batch.origlen - frame_offset
    from_ip = np.where(ip.good, l3 - frame_offset + ip.total_len, 0)
    frame_len = np.where(vxlan, np.maximum(recorded, from_ip), batch.origlen)

    kind = np.full(n, Kind.OTHER_ETHERTYPE, dtype=np.int8)
    kind[ethertype == ETHERTYPE_ARP] = Kind.ARP
    kind[ip.good] = Kind.OTHER_IP
    for proto, proto_kind in (
        (IP_PROTO_TCP, Kind.TCP),
        (IP_PROTO_UDP, Kind.UDP),
        (IP_PROTO_ICMP, Kind.ICMP),
        (IP_PROTO_ICMPV6, Kind.ICMPV6),
    ):
        kind[ip.good & (ip.proto == proto)] = proto_kind
    kind[~alive | (ip.is_ip & ~ip.good)] = Kind.UNDECODED

    return Decoded(
        buf=batch.buf,
        raw=batch.raw,
        ts_ns=batch.ts_ns,
        wire_len=batch.origlen,
        data_start=batch.data_start,
        caplen=batch.caplen,
        vxlan=vxlan,
        vni=vni,
        frame_offset=frame_offset,
        frame_len=frame_len,
        kind=kind,
        malformed=malformed,
        vlan_tagged=np.where(vxlan, inner_tagged, outer_tagged),
        ip_version=np.where(ip.good, ip.version, 0).astype(np.int8),
        fragment=ip.fragment,
        src_hi=ip.src_hi,
        src_lo=ip.src_lo,
        dst_hi=ip.dst_hi,
        dst_lo=ip.dst_lo,
        proto=np.where(ip.good, ip.proto, -1),
        has_ports=transport.has_ports,
        sport=transport.sport,
        dport=transport.dport,
        tcp_flags=transport.tcp_flags,
        seq=transport.seq,
        payload_start=batch.data_start + transport.payload_offset,
        payload_len=transport.payload_len,
        payload_caplen=transport.payload_caplen,
    )


def _link_layer(
    frames: _Frames, linktype: np.ndarray, malformed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ethertype, L3 offset, VLAN-tagged) of the outer packet, whatever the link type."""
    n = len(linktype)
    ethertype = np.zeros(n, dtype=np.int64)
    l3 = np.zeros(n, dtype=np.int64)
    tagged = np.zeros(n, dtype=bool)
    # With return_counts, np.unique does not load numpy.ma to check for a masked array.
    types = np.unique(linktype, return_counts=True)[0]
    for value in types:
        selector = slice(None) if len(types) == 1 else linktype == value
        part = frames if isinstance(selector, slice) else frames.subset(selector)
        found = _one_link_type(part, int(value))
        if found is None:
            malformed[selector] = np.where(
                malformed[selector] == Malformed.NONE, Malformed.UNSUPPORTED_LINK_TYPE, malformed[selector]
            )
            continue
        ethertype[selector], l3[selector], tagged[selector], header_bytes = found
        short = np.zeros(n, dtype=bool)
        short[selector] = ~part.has(0, header_bytes)
        _mark(malformed, short, Malformed.LINK_HEADER_TRUNCATED)
    return ethertype, l3, tagged


def _one_link_type(frames: _Frames, linktype: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | bool, int] | None:
    """(ethertype, L3 offset, VLAN-tagged, bytes the link header needs) for one link type; None if the
    link type is not supported."""
    zero = np.zeros(len(frames.start), dtype=np.int64)
    if linktype == LINKTYPE_ETHERNET:
        ethertype, l3, tagged = _ethernet(frames, zero, np.ones(len(zero), dtype=bool))
        return ethertype, l3, tagged, ETHERNET_HEADER_BYTES
    if linktype == LINKTYPE_LINUX_SLL:
        return frames.uint(zero, 14, 2), zero + 16, False, 16
    if linktype == LINKTYPE_LINUX_SLL2:
        return frames.uint(zero, 0, 2), zero + 20, False, 20
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        version = frames.uint(zero, 0, 1) >> 4
        ethertype = np.where(version == 6, ETHERTYPE_IPV6, np.where(version == 4, ETHERTYPE_IPV4, 0))
        return ethertype, zero, False, 1
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        # NULL stores the family in the writer's byte order, LOOP in network order: accept either.
        word = frames.uint(zero, 0, 4)
        family = np.where(word > 0xFFFF, word >> 24, word)
        ethertype = np.where(
            family == 2, ETHERTYPE_IPV4, np.where(np.isin(family, NULL_FAMILIES_IPV6), ETHERTYPE_IPV6, 0)
        )
        return ethertype, zero + 4, False, 4
    return None


def _ethernet(frames: _Frames, offset: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ethertype, L3 offset, tagged) of an Ethernet header at `offset`, through up to two VLAN tags."""
    ethertype = np.where(wanted, frames.uint(offset, 12, 2), 0)
    l3 = offset + ETHERNET_HEADER_BYTES
    tagged = np.zeros(len(offset), dtype=bool)
    for _ in range(MAX_VLAN_TAGS):
        tag = np.isin(ethertype, VLAN_ETHERTYPES) & frames.has(l3, 4)
        if not tag.any():
            break
        ethertype = np.where(tag, frames.uint(l3, 2, 2), ethertype)
        l3 = np.where(tag, l3 + 4, l3)
        tagged |= tag
    return ethertype, l3, tagged


def _vxlan(
    frames: _Frames, ethertype: np.ndarray, l3: np.ndarray, malformed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is VXLAN, VNI or -1, offset of the inner Ethernet frame) from the outer IP/UDP headers."""
    alive = malformed == Malformed.NONE
    first = frames.uint(l3, 0, 1)
    ihl = (first & 0x0F) * 4
    ipv4 = (
        alive
        & (ethertype == ETHERTYPE_IPV4)
        & frames.has(l3, 20)
        & (first >> 4 == 4)
        & (ihl >= 20)
        & (frames.uint(l3, 9, 1) == IP_PROTO_UDP)
        & (frames.uint(l3, 6, 2) & 0x3FFF == 0)  # a fragment's payload is not a whole VXLAN packet
    )
    ipv6 = (
        alive
        & (ethertype == ETHERTYPE_IPV6)
        & frames.has(l3, 40)
        & (first >> 4 == 6)
        & (frames.uint(l3, 6, 1) == IP_PROTO_UDP)
    )
    udp = np.where(ipv4, l3 + ihl, l3 + 40)
    candidate = (ipv4 | ipv6) & frames.has(udp, 4) & (frames.uint(udp, 2, 2) == VXLAN_PORT)
    complete = frames.has(udp, 8 + VXLAN_HEADER_BYTES)
    flags_ok = (frames.uint(udp, 8, 1) & 0x08) != 0  # the I flag: the VNI is valid
    _mark(malformed, candidate & ~complete, Malformed.VXLAN_TRUNCATED)
    _mark(malformed, candidate & complete & ~flags_ok, Malformed.VXLAN_FLAGS_INVALID)
    vxlan = candidate & complete & flags_ok
    vni = np.where(vxlan, frames.uint(udp, 12, 4) >> 8, -1)
    return vxlan, vni, udp + 8 + VXLAN_HEADER_BYTES


@dataclass
class _IpFields:
    is_ip: np.ndarray
    good: np.ndarray
    version: np.ndarray
    total_len: np.ndarray  # header + payload, as the IP header says
    proto: np.ndarray
    fragment: np.ndarray
    later_fragment: np.ndarray  # a fragment other than the first: no transport header
    l4: np.ndarray
    l4_len: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray


def _ip(frames: _Frames, ethertype: np.ndarray, l3: np.ndarray, alive: np.ndarray, malformed: np.ndarray) -> _IpFields:
    is4 = alive & (ethertype == ETHERTYPE_IPV4)
    is6 = alive & (ethertype == ETHERTYPE_IPV6)
    _mark(malformed, (is4 & ~frames.has(l3, 20)) | (is6 & ~frames.has(l3, 40)), Malformed.IP_HEADER_TRUNCATED)
    first = frames.uint(l3, 0, 1)
    version = first >> 4

    ihl = (first & 0x0F) * 4
    total4 = frames.uint(l3, 2, 2)
    good4 = is4 & frames.has(l3, 20) & (version == 4) & (ihl >= 20) & (total4 >= ihl)
    flags_fragment = frames.uint(l3, 6, 2)
    fragment_offset4 = flags_fragment & 0x1FFF
    fragment4 = good4 & ((fragment_offset4 != 0) | (flags_fragment & 0x2000 != 0))

    good6 = is6 & frames.has(l3, 40) & (version == 6)
    total6 = 40 + frames.uint(l3, 4, 2)
    next_header = frames.uint(l3, 6, 1)
    l4_6 = l3 + 40
    fragment6 = np.zeros(len(l3), dtype=bool)
    later6 = np.zeros(len(l3), dtype=bool)
    for _ in range(MAX_IPV6_EXTENSION_HEADERS):
        extension = good6 & np.isin(next_header, IPV6_EXTENSION_HEADERS) & frames.has(l4_6, 8)
        if not extension.any():
            break
        length_field = frames.uint(l4_6, 1, 1)
        header_len = np.where(
            next_header == 44, 8, np.where(next_header == 51, (length_field + 2) * 4, (length_field + 1) * 8)
        )
        is_fragment_header = extension & (next_header == 44)
        fragment_field = frames.uint(l4_6, 2, 2)
        fragment6 |= is_fragment_header & (fragment_field & 0xFFF9 != 0)
        later6 |= is_fragment_header & (fragment_field >> 3 != 0)
        next_header = np.where(extension, frames.uint(l4_6, 0, 1), next_header)
        l4_6 = np.where(extension, l4_6 + header_len, l4_6)

    _mark(malformed, (is4 & ~good4) | (is6 & ~good6), Malformed.IP_HEADER_INVALID)
    # An extension header chain we could not follow to its end leaves the transport header unknown.
    _mark(malformed, good6 & np.isin(next_header, IPV6_EXTENSION_HEADERS), Malformed.TRANSPORT_HEADER_TRUNCATED)

    src4 = gather_address(frames.buf, frames.position(l3, 12), 4)
    dst4 = gather_address(frames.buf, frames.position(l3, 16), 4)
    src6 = gather_address(frames.buf, frames.position(l3, 8), 16)
    dst6 = gather_address(frames.buf, frames.position(l3, 24), 16)
    good = good4 | good6
    total_len = np.where(good4, total4, total6)
    l4 = np.where(good4, l3 + ihl, l4_6)
    return _IpFields(
        is_ip=is4 | is6,
        good=good,
        version=np.where(good4, 4, 6),
        total_len=total_len,
        proto=np.where(good4, frames.uint(l3, 9, 1), next_header),
        fragment=fragment4 | fragment6,
        later_fragment=(good4 & (fragment_offset4 != 0)) | later6,
        l4=l4,
        l4_len=total_len - (l4 - l3),
        src_hi=np.where(good4, src4[0], src6[0]),
        src_lo=np.where(good4, src4[1], src6[1]),
        dst_hi=np.where(good4, dst4[0], dst6[0]),
        dst_lo=np.where(good4, dst4[1], dst6[1]),
    )


@dataclass
class _TransportFields:
    has_ports: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    seq: np.ndarray
    payload_offset: np.ndarray
    payload_len: np.ndarray
    payload_caplen: np.ndarray


def _transport(frames: _Frames, ip: _IpFields, malformed: np.ndarray) -> _TransportFields:
    l4, l4_len = ip.l4, ip.l4_len
    carries = ip.good & ~ip.later_fragment & (malformed == Malformed.NONE)
    tcp = carries & (ip.proto == IP_PROTO_TCP)
    udp = carries & (ip.proto == IP_PROTO_UDP)
    _mark(malformed, (tcp & ~frames.has(l4, 20)) | (udp & ~frames.has(l4, 8)), Malformed.TRANSPORT_HEADER_TRUNCATED)

    data_offset = (frames.uint(l4, 12, 1) >> 4) * 4
    tcp_good = tcp & frames.has(l4, 20) & (data_offset >= 20) & (data_offset <= l4_len)
    udp_good = udp & frames.has(l4, 8) & (l4_len >= 8)
    _mark(malformed, tcp & ~tcp_good, Malformed.TCP_HEADER_INVALID)
    _mark(malformed, udp & ~udp_good, Malformed.UDP_HEADER_INVALID)

    has_ports = tcp_good | udp_good
    header_len = np.where(tcp_good, data_offset, 8)
    payload_offset = np.where(has_ports, l4 + header_len, 0)
    payload_len = np.where(has_ports, l4_len - header_len, 0)
    return _TransportFields(
        has_ports=has_ports,
        sport=np.where(has_ports, frames.uint(l4, 0, 2), 0),
        dport=np.where(has_ports, frames.uint(l4, 2, 2), 0),
        tcp_flags=np.where(tcp_good, frames.uint(l4, 13, 1), 0),
        seq=np.where(tcp_good, frames.uint(l4, 4, 4), 0),
        payload_offset=payload_offset,
        payload_len=payload_len,
        payload_caplen=np.clip(frames.caplen - payload_offset, 0, payload_len),
    )

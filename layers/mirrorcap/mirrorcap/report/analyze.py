"""`analyze_captures`: one pass over the capture's files, batch by batch, into a `CaptureSummary`."""

from __future__ import annotations

import ipaddress
import math
import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mirrorcap.report.counting import distribution, most_common
from mirrorcap.report.decode import Decoded, Kind, Malformed
from mirrorcap.report.dns import DnsAnalyzer
from mirrorcap.report.flows import FlowTable, KeyIndex
from mirrorcap.report.formats import DEFAULT_CHUNK_BYTES, CaptureReader, FileInfo, capture_bytes
from mirrorcap.report.http import OTHER_REQUEST, HttpAnalyzer
from mirrorcap.report.pipeline import decoded_batches
from mirrorcap.report.readahead import spare_cpu
from mirrorcap.report.summary import (
    CaptureSummary,
    Conversation,
    Distribution,
    DnsFailure,
    DnsName,
    DnsSummary,
    ErrorPath,
    FileSummary,
    HostCount,
    HttpSummary,
    MalformedSummary,
    ProtocolTraffic,
    RequestCount,
    Talker,
    TcpHealth,
    Timeline,
    Totals,
    VniTraffic,
    Window,
)

TOP_TALKERS = 10
TOP_CONVERSATIONS = 10
TOP_LIST = 20
# A capture spanning more than this many seconds gets wider timeline bins, so the JSON stays small.
MAX_TIMELINE_BINS = 3600
PEEK_CHUNK_BYTES = 1 << 16
READ_AHEAD_MIN_CHUNKS = 4
NO_VNI = 0xFFFFFFFF  # how "not VXLAN" is stored in a conversation key

PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 47: "gre", 50: "esp", 132: "sctp"}
KIND_NAMES = {
    Kind.TCP: "tcp",
    Kind.UDP: "udp",
    Kind.ICMP: "icmp",
    Kind.ICMPV6: "icmpv6",
    Kind.OTHER_IP: "other-ip",
    Kind.ARP: "arp",
    Kind.OTHER_ETHERTYPE: "other-ethertype",
    Kind.UNDECODED: "undecoded",
}
# Well-known server ports, for the application mix: a packet belongs to the service on either port.
SERVICE_PORTS = {
    "http": (80, 8000, 8080),
    "https": (443, 8443),
    "dns": (53,),
    "ssh": (22,),
    "ntp": (123,),
    "smtp": (25, 465, 587),
    "mysql": (3306,),
    "postgresql": (5432,),
    "redis": (6379,),
    "memcached": (11211,),
    "kafka": (9092,),
    "mongodb": (27017,),
}
# "other-tcp" and "other-udp" are numbered like Kind.TCP and Kind.UDP: a port of no listed service
# counts under its packet's kind.
SERVICES = ["other-tcp", "other-udp", *SERVICE_PORTS]
NO_SERVICE = len(SERVICES)  # not TCP or UDP with ports


def _service_by_port() -> np.ndarray:
    """Index into SERVICES for every port number (0 for ports of no listed service)."""
    table = np.zeros(65536, dtype=np.int8)
    for number, name in enumerate(SERVICES):
        table[list(SERVICE_PORTS.get(name, ()))] = number
    return table


_SERVICE_BY_PORT = _service_by_port()


def analyze_captures(
    paths: Sequence[str | os.PathLike[str]],
    *,
    capture_id: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    read_ahead: bool | None = None,
) -> CaptureSummary:
    """One report for all files of a capture (e.g. tcpdump's rotated files), read in time order.

    `read_ahead`: read and decode each file in a second process, chunks ahead of the analysis; by
    default, for files of several chunks when a second CPU is free. The summary is the same either way.

    Raises UnreadableCapture, before any analysis, if a file is missing, empty or not a capture.
    """
    analyzer = CaptureAnalyzer(chunk_bytes, read_ahead=spare_cpu() if read_ahead is None else read_ahead)
    for path in files_in_time_order(paths):
        analyzer.add_file(path)
    return analyzer.summary(capture_id)


def files_in_time_order(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files sorted by their first packet's timestamp; files without packets go last."""
    first_seen: list[tuple[float, int, Path]] = []
    for position, path in enumerate(map(Path, paths)):
        with CaptureReader(path, PEEK_CHUNK_BYTES) as reader:
            first = next((int(batch.ts_ns[0]) for batch in reader.batches() if len(batch)), math.inf)
        first_seen.append((first, position, path))
    return [path for _first, _position, path in sorted(first_seen)]


class CaptureAnalyzer:
    """Accumulates batches from any number of files; `summary()` turns the totals into the report."""

    def __init__(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES, *, read_ahead: bool = False) -> None:
        self._chunk_bytes = chunk_bytes
        self._read_ahead = read_ahead
        self._files: list[FileSummary] = []
        self._totals: Counter[str] = Counter()
        self._vni_packets: Counter[int] = Counter()
        self._vni_bytes: Counter[int] = Counter()
        # Per Kind and service (or NO_SERVICE), both of the protocol mixes in one table.
        self._traffic_packets = np.zeros((len(Kind), NO_SERVICE + 1), dtype=np.int64)
        self._traffic_bytes = np.zeros((len(Kind), NO_SERVICE + 1), dtype=np.int64)
        self._malformed = np.zeros(len(Malformed), dtype=np.int64)
        self._file_damage: Counter[str] = Counter()
        self._second_packets: Counter[int] = Counter()
        self._second_bytes: Counter[int] = Counter()
        self._first_ns: int | None = None
        self._last_ns: int | None = None
        self.flows = FlowTable()
        self.http = HttpAnalyzer()
        self.dns = DnsAnalyzer()

    def add_file(self, path: str | os.PathLike[str]) -> None:
        packets_before, wire_bytes_before = self._totals["packets"], self._totals["wire_bytes"]
        first_ns: int | None = None
        last_ns: int | None = None
        # A file of a chunk or two would not gain what starting the second process costs.
        read_ahead = self._read_ahead and capture_bytes(path) >= READ_AHEAD_MIN_CHUNKS * self._chunk_bytes
        with CaptureReader(path, self._chunk_bytes) as reader:
            for decoded, version_tokens in decoded_batches(reader, read_ahead=read_ahead):
                batch_first, batch_last = self._add_batch(decoded, version_tokens)
                first_ns = _earliest(first_ns, batch_first)
                last_ns = _latest(last_ns, batch_last)
            info = reader.info
        for reason, _detail in info.damage:
            self._file_damage[reason] += 1
        packets = self._totals["packets"] - packets_before
        wire_bytes = self._totals["wire_bytes"] - wire_bytes_before
        self._files.append(_file_summary(info, packets, wire_bytes, first_ns, last_ns))

    def _add_batch(self, decoded: Decoded, version_tokens: np.ndarray | None) -> tuple[int, int]:
        """Analyses one batch; returns the timestamps of its first and last packets."""
        first_ns, last_ns = self._count(decoded)
        tcp = self.flows.analyse_tcp(decoded, self.flows.assign(decoded))
        self.http.add(decoded, tcp, version_tokens)
        self.dns.add(decoded)
        return first_ns, last_ns

    def _count(self, decoded: Decoded) -> tuple[int, int]:
        totals = self._totals
        frame_len, wire_len, caplen = decoded.frame_len, decoded.wire_len, decoded.caplen
        totals["packets"] += len(decoded)
        totals["wire_bytes"] += int(wire_len.sum())
        totals["captured_bytes"] += int(caplen.sum())
        totals["traffic_bytes"] += int(frame_len.sum())
        totals["vxlan_packets"] += int(np.count_nonzero(decoded.vxlan))
        truncated = (caplen < wire_len) | (frame_len > wire_len - decoded.frame_offset)
        totals["truncated_packets"] += int(np.count_nonzero(truncated))
        totals["vlan_tagged_packets"] += int(np.count_nonzero(decoded.vlan_tagged))
        totals["ipv4_packets"] += int(np.count_nonzero(decoded.ip_version == 4))
        totals["ipv6_packets"] += int(np.count_nonzero(decoded.ip_version == 6))
        totals["fragments"] += int(np.count_nonzero(decoded.fragment))

        for vni, packets, byte_count in _sums_by_value(decoded.vni, frame_len):
            self._vni_packets[vni] += packets
            self._vni_bytes[vni] += byte_count

        self._malformed += np.bincount(decoded.malformed, minlength=len(Malformed))
        self._count_traffic(decoded)

        for second, packets, byte_count in sums_per_second(decoded.ts_ns, frame_len):
            self._second_packets[second] += packets
            self._second_bytes[second] += byte_count
        first_ns, last_ns = int(decoded.ts_ns.min()), int(decoded.ts_ns.max())
        self._first_ns = _earliest(self._first_ns, first_ns)
        self._last_ns = _latest(self._last_ns, last_ns)
        return first_ns, last_ns

    def _count_traffic(self, decoded: Decoded) -> None:
        """Packets and bytes by what the traffic frame carries and, for TCP and UDP, by service."""
        kind = decoded.kind.astype(np.intp)
        by_port = np.maximum(_SERVICE_BY_PORT[decoded.sport], _SERVICE_BY_PORT[decoded.dport])
        has_service = decoded.has_ports & (kind <= Kind.UDP)
        service = np.where(has_service, np.where(by_port > 0, by_port, kind), NO_SERVICE)
        cell = kind * (NO_SERVICE + 1) + service
        size = self._traffic_packets.size
        self._traffic_packets += np.bincount(cell, minlength=size).reshape(self._traffic_packets.shape)
        byte_sums = np.bincount(cell, weights=decoded.frame_len, minlength=size).astype(np.int64)
        self._traffic_bytes += byte_sums.reshape(self._traffic_bytes.shape)

    def summary(self, capture_id: str | None = None) -> CaptureSummary:
        totals = self._totals
        malformed = self._malformed_reasons()
        return CaptureSummary(
            capture_id=capture_id,
            generated_at=datetime.now(UTC),
            files=self._files,
            window=self._window(),
            totals=Totals(
                packets=totals["packets"],
                wire_bytes=totals["wire_bytes"],
                captured_bytes=totals["captured_bytes"],
                traffic_bytes=totals["traffic_bytes"],
                vxlan_packets=totals["vxlan_packets"],
                other_packets=totals["packets"] - totals["vxlan_packets"],
                truncated_packets=totals["truncated_packets"],
                vlan_tagged_packets=totals["vlan_tagged_packets"],
                ipv4_packets=totals["ipv4_packets"],
                ipv6_packets=totals["ipv6_packets"],
                fragments=totals["fragments"],
                malformed_packets=sum(malformed.values()),
            ),
            malformed=MalformedSummary(total=sum(malformed.values()), by_reason=malformed),
            vnis=[
                VniTraffic(vni=None if vni < 0 else vni, packets=packets, bytes=self._vni_bytes[vni])
                for vni, packets in sorted(self._vni_packets.items(), key=lambda item: (-item[1], item[0]))
            ],
            protocols=_traffic_list(
                [KIND_NAMES[Kind(number)] for number in range(len(Kind))],
                self._traffic_packets.sum(axis=1),
                self._traffic_bytes.sum(axis=1),
            ),
            applications=_traffic_list(
                SERVICES,
                self._traffic_packets[:, :NO_SERVICE].sum(axis=0),
                self._traffic_bytes[:, :NO_SERVICE].sum(axis=0),
            ),
            top_talkers=self._top_talkers(),
            top_conversations=self._top_conversations(),
            conversations=self.flows.index.count,
            tcp=self._tcp(),
            http=self._http(),
            dns=self._dns(),
            timeline=self._timeline(),
        )

    def _malformed_reasons(self) -> dict[str, int]:
        reasons = {
            Malformed(number).name.lower(): int(count)
            for number, count in enumerate(self._malformed.tolist())
            if number != Malformed.NONE and count
        }
        for reason, count in self._file_damage.items():
            reasons[reason] = reasons.get(reason, 0) + count
        return dict(sorted(reasons.items()))

    def _window(self) -> Window:
        if self._first_ns is None or self._last_ns is None:
            return Window(start=None, end=None, duration_seconds=0.0)
        return Window(
            start=_datetime(self._first_ns),
            end=_datetime(self._last_ns),
            duration_seconds=round((self._last_ns - self._first_ns) / 1e9, 6),
        )

    def _timeline(self) -> Timeline:
        if not self._second_packets:
            return Timeline(start=None, bin_seconds=1, packets=[], bytes=[])
        first, last = min(self._second_packets), max(self._second_packets)
        bin_seconds = max(1, math.ceil((last - first + 1) / MAX_TIMELINE_BINS))
        bins = (last - first) // bin_seconds + 1
        packets, byte_counts = [0] * bins, [0] * bins
        for second, count in self._second_packets.items():
            packets[(second - first) // bin_seconds] += count
            byte_counts[(second - first) // bin_seconds] += self._second_bytes[second]
        return Timeline(
            start=_datetime(first * 1_000_000_000), bin_seconds=bin_seconds, packets=packets, bytes=byte_counts
        )

    def _top_conversations(self) -> list[Conversation]:
        flows = self.flows
        size = flows.index.count
        flows.counters.ensure(size)
        columns = flows.counters
        packets_ab, packets_ba = columns.packets_ab[:size], columns.packets_ba[:size]
        bytes_ab, bytes_ba = columns.bytes_ab[:size], columns.bytes_ba[:size]
        byte_total = bytes_ab + bytes_ba
        packet_total = packets_ab + packets_ba
        top = _largest(byte_total, packet_total, TOP_CONVERSATIONS)
        keys = flows.index.keys
        conversations = []
        for row in top.tolist():
            a_hi, a_lo, b_hi, b_lo, ports_vni, proto = (int(value) for value in keys[row])
            has_ports = proto in (6, 17)
            vni = ports_vni & 0xFFFFFFFF
            conversations.append(
                Conversation(
                    vni=None if vni == NO_VNI else vni,
                    protocol=PROTOCOL_NAMES.get(proto, f"ip-proto-{proto}"),
                    address_a=format_address(a_hi, a_lo),
                    port_a=(ports_vni >> 48) if has_ports else None,
                    address_b=format_address(b_hi, b_lo),
                    port_b=(ports_vni >> 32) & 0xFFFF if has_ports else None,
                    packets=int(packet_total[row]),
                    bytes=int(byte_total[row]),
                    packets_a_to_b=int(packets_ab[row]),
                    packets_b_to_a=int(packets_ba[row]),
                    bytes_a_to_b=int(bytes_ab[row]),
                    bytes_b_to_a=int(bytes_ba[row]),
                )
            )
        return conversations

    def _top_talkers(self) -> list[Talker]:
        flows = self.flows
        size = flows.index.count
        if not size:
            return []
        flows.counters.ensure(size)
        columns = flows.counters
        keys = flows.index.keys
        packets = columns.packets_ab[:size] + columns.packets_ba[:size]
        bytes_ab, bytes_ba = columns.bytes_ab[:size], columns.bytes_ba[:size]
        talkers = KeyIndex(2)
        # Endpoint a of every conversation, then endpoint b: what one sends, the other receives.
        a_present, a_local = talkers.ids([keys[:, 0], keys[:, 1]])
        b_present, b_local = talkers.ids([keys[:, 2], keys[:, 3]])
        a_ids, b_ids = a_present[a_local], b_present[b_local]
        count = talkers.count

        def per_talker(a_values: np.ndarray, b_values: np.ndarray) -> np.ndarray:
            return (
                np.bincount(a_ids, weights=a_values, minlength=count)
                + np.bincount(b_ids, weights=b_values, minlength=count)
            ).astype(np.int64)

        packet_sum = per_talker(packets, packets)
        sent_sum = per_talker(bytes_ab, bytes_ba)
        received_sum = per_talker(bytes_ba, bytes_ab)
        total = sent_sum + received_sum
        top = _largest(total, packet_sum, TOP_TALKERS)
        return [
            Talker(
                address=format_address(int(talkers.keys[row, 0]), int(talkers.keys[row, 1])),
                packets=int(packet_sum[row]),
                bytes=int(total[row]),
                bytes_sent=int(sent_sum[row]),
                bytes_received=int(received_sum[row]),
            )
            for row in top.tolist()
        ]

    def _tcp(self) -> TcpHealth:
        counts = self.flows.tcp_counts
        rtt = distribution(self.flows.handshake_rtt_ms())
        return TcpHealth(
            segments=self.flows.tcp_segments,
            syn=counts["syn"],
            syn_ack=counts["syn_ack"],
            rst=counts["rst"],
            fin=counts["fin"],
            retransmissions=counts["retransmissions"],
            **self.flows.connection_counts(),
            handshake_rtt_ms=Distribution(**rtt) if rtt else None,
        )

    def _http(self) -> HttpSummary:
        http = self.http
        by_request: Counter[tuple[str, str, str]] = Counter()
        for key, count in http.request_counts():
            by_request[(key.method, key.host, key.path)] += count
        other = http.other_requests()
        by_method: Counter[str] = Counter()
        by_host: Counter[str] = Counter()
        for (method, host, _path), count in by_request.items():
            by_method[method] += count
            by_host[host] += count
        errors: Counter[tuple[int, str, str, str]] = Counter()
        for (status, request_id), count in http.errors.items():
            request = http.key(request_id) if request_id != OTHER_REQUEST and request_id >= 0 else None
            errors[(status, request.method, request.host, request.path) if request else (status, "", "", "")] += count
        return HttpSummary(
            requests=sum(by_request.values()) + other,
            responses=http.responses,
            requests_by_method=dict(most_common(by_method, len(by_method))),
            requests_by_host=[HostCount(host=host, requests=count) for host, count in most_common(by_host, TOP_LIST)],
            top_requests=[
                RequestCount(method=method, host=host, path=path, requests=count)
                for (method, host, path), count in most_common(by_request, TOP_LIST)
            ],
            responses_by_status={str(code): count for code, count in sorted(http.by_status.items())},
            error_paths=[_error_path(key, count) for key, count in most_common(errors, TOP_LIST)],
            latency_ms_by_status_class={
                status_class: Distribution(**stats) for status_class, stats in http.latency_by_class().items()
            },
            unanswered_requests=http.unanswered_requests(),
            responses_without_request=http.responses_without_request,
            requests_in_other_paths=other,
        )

    def _dns(self) -> DnsSummary:
        dns = self.dns
        names, undecodable = dns.queries_by_name()
        by_type: Counter[str] = Counter()
        for (_name, qtype), count in names.items():
            by_type[qtype] += count
        return DnsSummary(
            queries=dns.queries,
            responses=dns.responses,
            queries_by_type=dict(most_common(by_type, len(by_type))),
            responses_by_rcode=dict(most_common(dns.by_rcode, len(dns.by_rcode))),
            top_queries=[
                DnsName(name=name, qtype=qtype, queries=count) for (name, qtype), count in most_common(names, TOP_LIST)
            ],
            failures=[
                DnsFailure(name=name, rcode=rcode, responses=count)
                for (name, rcode), count in most_common(dns.failures_by_name(), TOP_LIST)
            ],
            undecodable_names=undecodable,
        )


def _largest(first: np.ndarray, second: np.ndarray, limit: int) -> np.ndarray:
    """Rows of the `limit` largest (first, second) pairs, largest first, ties by row. Only the rows
    that reach the `limit`-th largest `first` value are sorted."""
    if len(first) > limit:
        threshold = np.partition(first, len(first) - limit)[len(first) - limit]
        rows = np.flatnonzero(first >= threshold)
    else:
        rows = np.arange(len(first))
    return rows[np.lexsort((rows, -second[rows], -first[rows]))[:limit]]


def _error_path(key: tuple[int, str, str, str], count: int) -> ErrorPath:
    status, method, host, path = key
    if not method:
        return ErrorPath(
            status=status, method=None, host=None, path=None, count=count, label=f"{status} (request not captured)"
        )
    return ErrorPath(status=status, method=method, host=host, path=path, count=count, label=f"{status} {method} {path}")


def sums_per_second(ts_ns: np.ndarray, weights: np.ndarray) -> list[tuple[int, int, int]]:
    """(second, packets, sum of weights) per second of the epoch with packets. Packets usually come in
    time order: then each second's packets are found by a binary search for its first nanosecond,
    without dividing every timestamp."""
    if not (ts_ns[1:] >= ts_ns[:-1]).all():
        return _sums_by_value(ts_ns // 1_000_000_000, weights)
    first, last = int(ts_ns[0]) // 1_000_000_000, int(ts_ns[-1]) // 1_000_000_000
    if last - first >= 4096:
        return _sums_by_value(ts_ns // 1_000_000_000, weights)
    seconds = np.arange(first, last + 2)
    bounds = np.searchsorted(ts_ns, seconds * 1_000_000_000)
    running = np.zeros(len(weights) + 1, dtype=np.int64)
    np.cumsum(weights, out=running[1:])
    packets, sums = np.diff(bounds), np.diff(running[bounds])
    present = np.flatnonzero(packets)
    return list(zip((present + first).tolist(), packets[present].tolist(), sums[present].tolist(), strict=True))


def _sums_by_value(values: np.ndarray, weights: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, count, sum of weights) per distinct value; a bincount when the values are close together
    (VNIs, seconds of one batch), a sort otherwise."""
    low, high = int(values.min()), int(values.max())
    if high - low < 4096:
        counts = np.bincount(values - low)
        sums = np.bincount(values - low, weights=weights)
        present = np.flatnonzero(counts)
        return list(
            zip(
                (present + low).tolist(), counts[present].tolist(), sums[present].astype(np.int64).tolist(), strict=True
            )
        )
    distinct, which = np.unique(values, return_inverse=True)
    sums = np.bincount(which, weights=weights).astype(np.int64)
    return list(zip(distinct.tolist(), np.bincount(which).tolist(), sums.tolist(), strict=True))


def format_address(high: int, low: int) -> str:
    if high == 0 and low >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(low & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((high << 64) | low))


def _traffic_list(names: list[str], packets: np.ndarray, byte_counts: np.ndarray) -> list[ProtocolTraffic]:
    rows = [
        ProtocolTraffic(protocol=name, packets=int(count), bytes=int(byte_count))
        for name, count, byte_count in zip(names, packets.tolist(), byte_counts.tolist(), strict=True)
        if count
    ]
    return sorted(rows, key=lambda row: (-row.bytes, row.protocol))


def _file_summary(
    info: FileInfo, packets: int, wire_bytes: int, first_ns: int | None, last_ns: int | None
) -> FileSummary:
    return FileSummary(
        name=info.name,
        format=info.format,  # type: ignore[arg-type]
        byte_order=info.byte_order,  # type: ignore[arg-type]
        timestamp_resolution=info.timestamp_resolution,
        link_types=sorted(info.link_types),
        packets=packets,
        wire_bytes=wire_bytes,
        first_packet=None if first_ns is None else _datetime(first_ns),
        last_packet=None if last_ns is None else _datetime(last_ns),
        problems=[detail for _reason, detail in info.damage],
    )


def _datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _earliest(current: int | None, candidate: int) -> int:
    return candidate if current is None else min(current, candidate)


def _latest(current: int | None, candidate: int) -> int:
    return candidate if current is None else max(current, candidate)

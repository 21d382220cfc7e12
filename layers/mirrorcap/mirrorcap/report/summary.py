"""The capture summary: what `summary.json` holds. docs/summary-schema.md documents every field; bump
SCHEMA_VERSION on any change that is not a pure addition."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSummary(_Model):
    name: str
    format: Literal["pcap", "pcapng"]
    byte_order: Literal["little", "big"]
    timestamp_resolution: str
    link_types: list[int]
    packets: int
    wire_bytes: int
    first_packet: datetime | None
    last_packet: datetime | None
    problems: list[str] = Field(default_factory=list)


class Window(_Model):
    start: datetime | None
    end: datetime | None
    duration_seconds: float


class Totals(_Model):
    packets: int
    wire_bytes: int = Field(description="original length of every captured packet, VXLAN wrapper included")
    captured_bytes: int = Field(description="bytes actually in the files (less than wire_bytes if truncated)")
    traffic_bytes: int = Field(description="original length of the traffic frames (inside VXLAN)")
    vxlan_packets: int
    other_packets: int = Field(description="packets that are not VXLAN, analysed as they are")
    truncated_packets: int
    vlan_tagged_packets: int
    ipv4_packets: int
    ipv6_packets: int
    fragments: int
    malformed_packets: int


class MalformedSummary(_Model):
    total: int
    by_reason: dict[str, int]


class VniTraffic(_Model):
    vni: int | None = Field(description="VXLAN network identifier; null for packets that are not VXLAN")
    packets: int
    bytes: int


class ProtocolTraffic(_Model):
    protocol: str
    packets: int
    bytes: int


class Talker(_Model):
    address: str
    packets: int
    bytes: int
    bytes_sent: int
    bytes_received: int


class Conversation(_Model):
    vni: int | None
    protocol: str
    address_a: str
    port_a: int | None
    address_b: str
    port_b: int | None
    packets: int
    bytes: int
    packets_a_to_b: int
    packets_b_to_a: int
    bytes_a_to_b: int
    bytes_b_to_a: int


class Distribution(_Model):
    count: int
    p50: float
    p90: float
    p99: float
    max: float


class TcpHealth(_Model):
    segments: int
    syn: int = Field(description="SYN packets without ACK (connection attempts, retries included)")
    syn_ack: int
    rst: int
    fin: int
    retransmissions: int
    connections_attempted: int
    connections_unanswered: int = Field(description="conversations with a SYN but no SYN-ACK")
    connections_reset: int
    handshake_rtt_ms: Distribution | None


class HostCount(_Model):
    host: str
    requests: int


class RequestCount(_Model):
    method: str
    host: str
    path: str
    requests: int


class ErrorPath(_Model):
    status: int
    method: str | None
    host: str | None
    path: str | None
    count: int
    label: str = Field(description='e.g. "500 POST /api/orders"')


class HttpSummary(_Model):
    requests: int
    responses: int
    requests_by_method: dict[str, int]
    requests_by_host: list[HostCount]
    top_requests: list[RequestCount]
    responses_by_status: dict[str, int]
    error_paths: list[ErrorPath]
    latency_ms_by_status_class: dict[str, Distribution]
    unanswered_requests: int
    responses_without_request: int
    requests_in_other_paths: int = Field(description="requests to paths first seen after the path table was full")


class DnsName(_Model):
    name: str
    qtype: str
    queries: int


class DnsFailure(_Model):
    name: str
    rcode: str
    responses: int


class DnsSummary(_Model):
    queries: int
    responses: int
    queries_by_type: dict[str, int]
    responses_by_rcode: dict[str, int]
    top_queries: list[DnsName]
    failures: list[DnsFailure]
    undecodable_names: int


class Timeline(_Model):
    start: datetime | None
    bin_seconds: int
    packets: list[int]
    bytes: list[int]


class CaptureSummary(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    capture_id: str | None
    generated_at: datetime
    files: list[FileSummary]
    window: Window
    totals: Totals
    malformed: MalformedSummary
    vnis: list[VniTraffic]
    protocols: list[ProtocolTraffic]
    applications: list[ProtocolTraffic]
    top_talkers: list[Talker]
    top_conversations: list[Conversation]
    conversations: int
    tcp: TcpHealth
    http: HttpSummary
    dns: DnsSummary
    timeline: Timeline

"""TCP health, HTTP and DNS counts on crafted conversations whose answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest
from mirrorcap.report import analyze_captures

from tests.support.pcap_crafting import START, TcpConversation, dns_query, encapsulate, http_exchange, write_pcap


def _analyze(tmp_path: Path, frames, chunk_bytes: int | None = None):
    path = write_pcap(tmp_path / "c.pcap", encapsulate(sorted(frames, key=lambda item: item[0])))
    options = {"chunk_bytes": chunk_bytes} if chunk_bytes else {}
    return analyze_captures([path], **options)


def _resend(conversation: TcpConversation, index: int, ts: float) -> None:
    """The segment sent as `index`, sent again (a retransmission) at `ts`."""
    conversation.sent.append((ts, conversation.sent[index][1].copy()))


def test_tcp_flags_rtt_and_unanswered_syns(tmp_path: Path) -> None:
    good = TcpConversation(client_port=1000)
    good.handshake(START, rtt=0.010)
    good.send(START + 0.02, True, "RA")
    refused = TcpConversation(client_port=1001)
    refused.send(START + 0.1, True, "S")
    refused.send(START + 0.101, False, "RA")
    silent = TcpConversation(client_port=1002)
    silent.send(START + 0.2, True, "S")
    _resend(silent, 0, START + 1.2)  # the SYN retried: a retransmission
    summary = _analyze(tmp_path, good.sent + refused.sent + silent.sent)
    tcp = summary.tcp
    assert (tcp.syn, tcp.syn_ack, tcp.rst, tcp.fin) == (4, 1, 2, 0)
    assert tcp.retransmissions == 1
    assert tcp.connections_attempted == 3 and tcp.connections_unanswered == 2 and tcp.connections_reset == 2
    assert tcp.handshake_rtt_ms.count == 1 and tcp.handshake_rtt_ms.p50 == pytest.approx(10.0, abs=0.01)


def test_retransmissions_and_sequence_wraparound(tmp_path: Path) -> None:
    conversation = TcpConversation(client_seq=2**32 - 150)
    conversation.handshake(START, rtt=0.002)
    for number in range(4):  # crosses the 32-bit wrap on the second segment
        conversation.send(START + 0.01 + number * 0.001, True, "PA", b"y" * 100)
    _resend(conversation, 4, START + 0.5)  # the second data segment again
    conversation.send(START + 0.6, True, "A")  # a keep-alive probe is not a retransmission ...
    conversation.sent[-1] = (START + 0.6, conversation.frame(True, "A", b"", (conversation.client_seq - 1) % 2**32, 0))
    summary = _analyze(tmp_path, conversation.sent, chunk_bytes=300)
    assert summary.tcp.retransmissions == 1


def test_http_status_line_mid_segment_is_not_counted_twice_on_retransmission(tmp_path: Path) -> None:
    """Two responses in one segment (the second status line mid-segment), that segment retransmitted,
    plus a retransmission that overlaps old and new bytes: every response is counted exactly once."""
    conversation = TcpConversation()
    conversation.handshake(START, rtt=0.002)
    conversation.send(
        START + 0.010, True, "PA", b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    second = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
    conversation.send(START + 0.020, False, "PA", first + second)
    _resend(conversation, 4, START + 0.300)
    conversation.send(START + 0.400, True, "PA", b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
    third = b"HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n"
    resend_seq = conversation.server_seq - len(second)
    conversation.send(START + 0.410, False, "PA", third)
    overlapping = conversation.frame(False, "PA", second + third, resend_seq, conversation.client_seq)
    conversation.sent.append((START + 0.700, overlapping))
    for chunk_bytes in (None, 200):
        summary = _analyze(tmp_path, conversation.sent, chunk_bytes=chunk_bytes)
        http = summary.http
        assert http.requests == 3 and http.responses == 3
        assert http.responses_by_status == {"200": 1, "404": 1, "503": 1}
        assert {error.label: error.count for error in http.error_paths} == {"503 GET /b": 1, "404 GET /c": 1}
        assert summary.tcp.retransmissions == 2
        assert http.unanswered_requests == 0


def test_http_breakdowns_latency_and_pairing(tmp_path: Path) -> None:
    frames = []
    for number in range(5):
        conversation = TcpConversation(client_port=2000 + number)
        conversation.handshake(START + number, rtt=0.002)
        status = 500 if number < 2 else 200
        http_exchange(conversation, START + number + 0.01, "POST", "/api/orders", status, latency=0.1 * (number + 1))
        frames += conversation.sent
    interim = TcpConversation(client_port=3000)
    interim.handshake(START + 10, rtt=0.002)
    interim.send(
        START + 10.01, True, "PA", b"PUT /upload HTTP/1.1\r\nhost: Files.Example:8080\r\nExpect: 100-continue\r\n\r\n"
    )
    interim.send(START + 10.02, False, "PA", b"HTTP/1.1 100 Continue\r\n\r\n")
    interim.send(START + 10.50, False, "PA", b"HTTP/1.1 201 Created\r\n\r\n")
    orphan = TcpConversation(client_port=3001)
    orphan.send(START + 11, False, "PA", b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
    waiting = TcpConversation(client_port=3002)
    waiting.send(START + 12, True, "PA", b"DELETE http://proxy.example/api/x?y=1 HTTP/1.1\r\n\r\n")
    summary = _analyze(tmp_path, frames + interim.sent + orphan.sent + waiting.sent)
    http = summary.http
    assert http.requests_by_method == {"POST": 5, "PUT": 1, "DELETE": 1}
    assert http.responses_by_status == {"100": 1, "200": 3, "201": 1, "500": 2, "502": 1}
    assert {(r.method, r.host, r.path): r.requests for r in http.top_requests} == {
        ("POST", "shop.example", "/api/orders"): 5,
        ("PUT", "files.example:8080", "/upload"): 1,
        ("DELETE", "", "/api/x"): 1,
    }
    assert {e.label: e.count for e in http.error_paths} == {"500 POST /api/orders": 2, "502 (request not captured)": 1}
    latency = http.latency_ms_by_status_class
    assert latency["5xx"].count == 2 and latency["5xx"].max == pytest.approx(200.0, abs=0.01)
    assert latency["2xx"].count == 4 and latency["2xx"].max == pytest.approx(500.0, abs=0.01)
    assert latency["2xx"].p50 == pytest.approx(400.0, abs=0.01)
    assert http.unanswered_requests == 1 and http.responses_without_request == 1


def test_dns_queries_types_and_response_codes(tmp_path: Path) -> None:
    frames = (
        dns_query("shop.example", START)
        + dns_query("shop.example", START + 1, qtype="AAAA")
        + dns_query("Missing.Example", START + 2, rcode=3, client_port=53001)
        + dns_query("broken.example", START + 3, rcode=2, client_port=53002)
    )
    dns = _analyze(tmp_path, frames).dns
    assert dns.queries == 4 and dns.responses == 4
    assert dns.queries_by_type == {"A": 3, "AAAA": 1}
    assert dns.responses_by_rcode == {"NOERROR": 2, "NXDOMAIN": 1, "SERVFAIL": 1}
    assert {(f.name, f.rcode) for f in dns.failures} == {
        ("missing.example", "NXDOMAIN"),
        ("broken.example", "SERVFAIL"),
    }
    assert {(q.name, q.qtype, q.queries) for q in dns.top_queries} == {
        ("shop.example", "A", 1),
        ("shop.example", "AAAA", 1),
        ("missing.example", "A", 1),
        ("broken.example", "A", 1),
    }


def test_top_talkers_and_conversations(tmp_path: Path) -> None:
    big = TcpConversation(client="10.0.1.1", server="10.0.2.2", client_port=5000, server_port=5432)
    big.handshake(START, rtt=0.001)
    for number in range(10):
        big.send(START + 0.01 + number * 0.001, False, "PA", b"z" * 1000)
    small = TcpConversation(client="10.0.1.3", server="10.0.2.2", client_port=5001, server_port=5432)
    small.handshake(START, rtt=0.001)
    summary = _analyze(tmp_path, big.sent + small.sent)
    assert [talker.address for talker in summary.top_talkers] == ["10.0.2.2", "10.0.1.1", "10.0.1.3"]
    server = summary.top_talkers[0]
    assert server.bytes_sent > 10_000 and server.bytes == server.bytes_sent + server.bytes_received
    top = summary.top_conversations[0]
    assert (top.address_a, top.port_a, top.address_b, top.port_b) == ("10.0.1.1", 5000, "10.0.2.2", 5432)
    assert top.packets == 13 and top.bytes_b_to_a > 10_000 and summary.conversations == 2
    assert {entry.protocol for entry in summary.applications} == {"postgresql"}


def test_many_dns_messages_in_one_batch_are_counted_as_one_by_one(tmp_path: Path) -> None:
    """Enough messages in one batch that alike ones are read once per group: failures grouped with their
    response code, and queries with a question too long for the grouping window (every query is then
    read on its own)."""
    long_name = "x" * 60 + ".example"
    frames = []
    for number in range(300):
        name, failure = [("shop.example", 3), ("api.internal.example", 2), (long_name, 0)][number % 3]
        rcode = failure if number % 2 else 0
        frames += dns_query(name, START + number * 0.01, rcode=rcode, client_port=40000 + number)
    small, large = (_analyze(tmp_path, frames, chunk_bytes).dns for chunk_bytes in (4096, None))
    assert large == small
    assert large.queries == 300 and large.responses == 300
    assert {(q.name, q.queries) for q in large.top_queries} == {
        ("shop.example", 100),
        ("api.internal.example", 100),
        (long_name, 100),
    }
    assert large.responses_by_rcode == {"NOERROR": 200, "SERVFAIL": 50, "NXDOMAIN": 50}
    assert {(f.name, f.rcode, f.responses) for f in large.failures} == {
        ("shop.example", "NXDOMAIN", 50),
        ("api.internal.example", "SERVFAIL", 50),
    }


def test_many_requests_in_one_batch_with_a_key_longer_than_the_window(tmp_path: Path) -> None:
    """Alike requests are read once per group, unless a key reaches past the grouping window: then
    every request of the batch is read on its own. Counts are the same either way."""
    conversation = TcpConversation()
    long_path = "/search/" + "q" * 150
    for number in range(120):
        path = long_path if number == 70 else f"/item/{number % 4}"
        http_exchange(conversation, START + number * 0.05, path=path, status=200 + (number % 3 == 0) * 200)
    small, large = (_analyze(tmp_path, conversation.sent, chunk_bytes).http for chunk_bytes in (4096, None))
    assert large == small
    assert large.requests == 120 and large.responses == 120
    assert {(request.path, request.requests) for request in large.top_requests} == {
        ("/item/0", 30),
        ("/item/1", 30),
        ("/item/2", 29),
        ("/item/3", 30),
        (long_path, 1),
    }
    assert large.responses_by_status == {"200": 80, "400": 40}

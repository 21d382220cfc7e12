"""What the workflow publishes: decapsulated.pcap, summary.json, report.html, the notification; and the
`mirrorcap report` command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mirrorcap.report import CaptureSummary, analyze_captures, decapsulate, notification_message, render_html
from mirrorcap_tools.cli import main
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from tests.support.pcap_crafting import START, TcpConversation, known_records, record, vxlan, write_pcap

RECORDS = known_records()  # the capture most tests read: contents listed in known_records


def test_decapsulated_pcap_holds_exactly_the_inner_frames(tmp_path: Path) -> None:
    conversation = TcpConversation()
    conversation.handshake(START, rtt=0.002)
    conversation.send(START + 0.01, True, "PA", b"x" * 300)
    inner = [frame for _ts, frame in conversation.sent]
    records = [record(vxlan(frame, vni=5), ts) for ts, frame in conversation.sent]
    records.insert(2, record(Ether() / ARP(), START + 0.0011))  # not VXLAN: left out
    records.append(record(vxlan(inner[-1]), START + 0.02, snaplen=120))  # truncated: kept, as cut
    path = write_pcap(tmp_path / "in.pcap", records, nanoseconds=True)
    out = tmp_path / "decapsulated.pcap"

    stats = decapsulate([path], out, chunk_bytes=200)

    assert stats.as_dict() == {
        "packets_read": 6,
        "packets_written": 5,
        "packets_not_vxlan": 1,
        "bytes_written": out.stat().st_size,
    }
    assert out.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")  # nanosecond input stays nanosecond
    frames = rdpcap(str(out))
    assert [bytes(frame) for frame in frames[:4]] == [bytes(frame) for frame in inner]
    assert bytes(frames[4]) == bytes(inner[-1])[: 120 - 50]
    assert frames[4].wirelen == len(inner[-1])
    assert float(frames[0].time) == pytest.approx(START)
    assert analyze_captures([out]).tcp.syn == 1  # and the report reads its own output


def test_summary_json_round_trips(tmp_path: Path) -> None:
    summary = analyze_captures([write_pcap(tmp_path / "c.pcap", RECORDS)])
    assert CaptureSummary.model_validate_json(summary.model_dump_json()) == summary
    assert json.loads(summary.model_dump_json())["schema_version"] == 1


def test_report_page_is_self_contained_and_escapes_what_it_shows(tmp_path: Path) -> None:
    conversation = TcpConversation()
    conversation.handshake(START, rtt=0.002)
    conversation.send(START + 0.01, True, "PA", b'GET /<script>alert(1)</script> HTTP/1.1\r\nHost: "evil"\r\n\r\n')
    conversation.send(START + 0.02, False, "PA", b"HTTP/1.1 500 Oops\r\n\r\n")
    path = write_pcap(tmp_path / "c.pcap", [record(vxlan(frame), ts) for ts, frame in conversation.sent])
    page = render_html(analyze_captures([path], capture_id="cap-xss"))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert page.count("<svg") == 3


def test_notification_subject_and_body(tmp_path: Path) -> None:
    summary = analyze_captures([write_pcap(tmp_path / "c.pcap", RECORDS)], capture_id="cap-20250101-abc")
    links = {"report": "https://bucket.s3.amazonaws.com/r.html?X-Amz-Signature=1", "capture-000.pcap": "https://x/p"}
    subject, body = notification_message(summary, links)
    assert subject == "mirrorcap cap-20250101-abc: 25 packets, HTTP 5xx 1, 4xx 0, TCP RST 0"
    assert "HTTP: 3 requests, 3 responses, 5xx 1 (33.3%)" in body
    assert "500 POST /api/orders: 1" in body
    assert "DNS: 2 queries, 1 failed responses, NXDOMAIN 1" in body
    assert "  report: https://bucket.s3.amazonaws.com/r.html?X-Amz-Signature=1\n" in body
    assert body.index("report:") < body.index("capture-000.pcap:")


def test_notification_subject_fits_sns(tmp_path: Path) -> None:
    summary = analyze_captures([write_pcap(tmp_path / "c.pcap", RECORDS)], capture_id="c" * 120)
    subject, body = notification_message(summary, {})
    assert len(subject) <= 100 and subject.endswith("...") and subject.isascii()
    assert "Links" not in body


def test_cli_prints_a_text_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pcap(tmp_path / "c.pcap", RECORDS)
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "HTTP: 3 requests" in out and "500 POST /api/orders: 1" in out and "Top talkers:" in out


def test_cli_writes_the_three_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pcap(tmp_path / "c.pcap", RECORDS)
    outputs = [tmp_path / "summary.json", tmp_path / "report.html", tmp_path / "decap.pcap"]
    arguments = ["report", str(path), "--json", str(outputs[0]), "--html", str(outputs[1]), "--decap", str(outputs[2])]
    assert main(arguments) == 0
    assert json.loads(outputs[0].read_text())["totals"]["packets"] == len(RECORDS)
    assert outputs[1].read_text().startswith("<!DOCTYPE html>")
    assert len(rdpcap(str(outputs[2]))) == len(RECORDS)
    assert "decapsulated:" in capsys.readouterr().out


def test_cli_reports_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert main(["report", str(bad)]) == 2
    assert "notes.txt: not a pcap or pcapng file" in capsys.readouterr().err

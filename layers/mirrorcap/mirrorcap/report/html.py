"""`render_html`: the summary as one self-contained page (inline CSS, JS and SVG; a Content-Security-
Policy forbids any network access), laid out for an on-call engineer: the verdict first, then charts,
then the detail tables. Charts are drawn here as SVG so the page reads fine even without JavaScript."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from html import escape
from importlib import resources
from string import Template

from mirrorcap.report.summary import CaptureSummary, Distribution, Talker, Timeline
from mirrorcap.report.text import dns_failures, endpoint, http_errors, human_bytes, percent, thousands

TIMELINE_SIZE = (1180, 240)
TIMELINE_MARGIN = {"left": 70, "right": 12, "top": 12, "bottom": 28}
HALF_CHART_WIDTH = 570
STATUS_CHART_HEIGHT = 240
TALKER_ROW_HEIGHT = 24
RETRANSMISSION_WARN, RETRANSMISSION_BAD = 0.01, 0.05


def render_html(summary: CaptureSummary) -> str:
    package = resources.files(__package__)
    template = Template(package.joinpath("report.html").read_text(encoding="utf-8"))
    title = f"Capture report{f' · {summary.capture_id}' if summary.capture_id else ''}"
    timeline_svg, timeline_data = _timeline_chart(summary.timeline)
    return template.substitute(
        title=escape(title),
        subtitle=escape(_subtitle(summary)),
        style=package.joinpath("report.css").read_text(encoding="utf-8"),
        script=package.joinpath("report.js").read_text(encoding="utf-8"),
        cards="\n".join(_cards(summary)),
        charts=_charts(summary, timeline_svg),
        sections="\n".join(_sections(summary)),
        generated=escape(f"{summary.generated_at:%Y-%m-%d %H:%M:%S} UTC"),
        timeline_json=json.dumps(timeline_data).replace("</", "<\\/"),
    )


def _subtitle(summary: CaptureSummary) -> str:
    window = summary.window
    files = f"{len(summary.files)} file{'s' if len(summary.files) != 1 else ''}"
    if window.start is None or window.end is None:
        return f"No packets in {files}"
    return (
        f"{window.start:%Y-%m-%d %H:%M:%S} to {window.end:%H:%M:%S} UTC · "
        f"{window.duration_seconds:.1f} s · {files} · {thousands(summary.totals.packets)} packets"
    )


# --- At a glance --------------------------------------------------------------------------------------


def _card(label: str, value: str, detail: str, tone: str = "") -> str:
    return (
        f'<div class="card {tone}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="detail">{escape(detail)}</div></div>'
    )


def _cards(summary: CaptureSummary) -> list[str]:
    totals, http, tcp, dns = summary.totals, summary.http, summary.tcp, summary.dns
    client_errors, server_errors = http_errors(summary)
    retransmit_share = tcp.retransmissions / tcp.segments if tcp.segments else 0.0
    retransmit_tone = (
        "bad" if retransmit_share > RETRANSMISSION_BAD else "warn" if retransmit_share > RETRANSMISSION_WARN else "ok"
    )
    failed_dns = dns_failures(summary)
    rtt = tcp.handshake_rtt_ms
    return [
        _card("Packets", thousands(totals.packets), f"{human_bytes(totals.traffic_bytes)} of traffic"),
        _card("Duration", f"{summary.window.duration_seconds:.1f} s", f"{len(summary.vnis)} VNI(s)"),
        _card("HTTP requests", thousands(http.requests), f"{thousands(http.responses)} responses"),
        _card(
            "HTTP 5xx",
            thousands(server_errors),
            f"{percent(server_errors, http.responses)} of responses",
            "bad" if server_errors else "ok",
        ),
        _card(
            "HTTP 4xx",
            thousands(client_errors),
            f"{percent(client_errors, http.responses)} of responses",
            "warn" if client_errors else "ok",
        ),
        _card(
            "Retransmissions",
            thousands(tcp.retransmissions),
            f"{percent(tcp.retransmissions, tcp.segments)} of TCP segments",
            retransmit_tone,
        ),
        _card(
            "TCP resets",
            thousands(tcp.rst),
            f"{thousands(tcp.connections_unanswered)} unanswered SYN",
            "warn" if tcp.rst or tcp.connections_unanswered else "ok",
        ),
        _card(
            "Handshake RTT p50",
            f"{rtt.p50:.1f} ms" if rtt else "n/a",
            f"p99 {rtt.p99:.1f} ms over {thousands(rtt.count)}" if rtt else "no complete handshake",
        ),
        _card(
            "DNS failures",
            thousands(failed_dns),
            f"of {thousands(dns.responses)} responses",
            "warn" if failed_dns else "ok",
        ),
        _card(
            "Malformed",
            thousands(summary.malformed.total),
            "packets not fully decodable",
            "warn" if summary.malformed.total else "ok",
        ),
    ]


# --- Charts -------------------------------------------------------------------------------------------


def _charts(summary: CaptureSummary, timeline_svg: str) -> str:
    traffic = (
        '<section class="panel"><figure id="traffic-figure" class="show-bytes">'
        '<div class="chart-head"><h2>Traffic over time</h2>'
        '<div class="toggle" role="group" aria-label="Series">'
        '<button type="button" data-series="bytes" aria-pressed="true">Bytes/s</button>'
        '<button type="button" data-series="packets" aria-pressed="false">Packets/s</button></div></div>'
        f'{timeline_svg}<div class="tooltip"></div>'
        f'<p class="note">{escape(_timeline_note(summary.timeline))}</p></figure></section>'
    )
    status = (
        f'<section class="panel"><h2>HTTP status codes</h2>{_status_chart(summary.http.responses_by_status)}</section>'
    )
    talkers = f'<section class="panel"><h2>Top talkers</h2>{_talker_chart(summary.top_talkers)}</section>'
    return f'{traffic}\n<div class="grid-2">{status}{talkers}</div>'


def _timeline_note(timeline: Timeline) -> str:
    if timeline.bin_seconds == 1:
        return "One bar per second. Bytes are the mirrored frames (without the VXLAN wrapper)."
    return f"One bar per {timeline.bin_seconds} seconds (average rate). Bytes exclude the VXLAN wrapper."


def _timeline_chart(timeline: Timeline) -> tuple[str, dict[str, object]]:
    width, height = TIMELINE_SIZE
    margin = TIMELINE_MARGIN
    plot_width = width - margin["left"] - margin["right"]
    plot_height = height - margin["top"] - margin["bottom"]
    bins = len(timeline.packets)
    bin_width = plot_width / max(bins, 1)
    data: dict[str, object] = {
        "startMs": timeline.start.timestamp() * 1000 if timeline.start else 0,
        "binSeconds": timeline.bin_seconds,
        "packets": timeline.packets,
        "bytes": timeline.bytes,
        "plot": {"left": margin["left"], "width": width, "binWidth": bin_width},
    }
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Traffic over time">']
    if not bins or timeline.start is None:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">No packets</text></svg>')
        return "".join(parts), data
    baseline = margin["top"] + plot_height
    for series, values, formatter in (
        ("bytes", timeline.bytes, lambda value: f"{human_bytes(value)}/s"),
        ("packets", timeline.packets, lambda value: f"{thousands(round(value))}/s"),
    ):
        rates = [value / timeline.bin_seconds for value in values]
        top = _nice_ceiling(max(rates))
        parts.append(f'<g class="{series}">')
        for tick in range(5):
            y = baseline - plot_height * tick / 4
            label = escape(formatter(top * tick / 4))
            parts.append(
                f'<line class="axis" x1="{margin["left"]}" x2="{width - margin["right"]}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text x="{margin["left"] - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
            )
        gap = 0.15 * bin_width if bin_width > 3 else 0
        for index, rate in enumerate(rates):
            if rate:
                bar = plot_height * rate / top
                parts.append(
                    f'<rect x="{margin["left"] + index * bin_width + gap / 2:.2f}" y="{baseline - bar:.2f}" '
                    f'width="{max(bin_width - gap, 0.5):.2f}" height="{bar:.2f}"/>'
                )
        parts.append("</g>")
    for tick in _time_ticks(bins):
        x = margin["left"] + (tick + 0.5) * bin_width
        label = (timeline.start + timedelta(seconds=tick * timeline.bin_seconds)).strftime("%H:%M:%S")
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{label}</text>')
    parts.append(f'<line class="hover-line" x1="0" x2="0" y1="{margin["top"]}" y2="{baseline}"/></svg>')
    return "".join(parts), data


def _time_ticks(bins: int, wanted: int = 7) -> list[int]:
    step = max(1, math.ceil(bins / wanted))
    return list(range(0, bins, step))


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if value <= step * power)


def _status_chart(by_status: dict[str, int]) -> str:
    if not by_status:
        return '<p class="empty">No HTTP responses seen.</p>'
    width, height = HALF_CHART_WIDTH, STATUS_CHART_HEIGHT
    left, bottom, top_margin = 12, 26, 18
    plot_height = height - bottom - top_margin
    slot = (width - 2 * left) / len(by_status)
    bar_width = min(slot * 0.7, 70)
    highest = max(by_status.values())
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="HTTP status codes">']
    for index, (code, count) in enumerate(by_status.items()):
        bar = max(plot_height * count / highest, 1)
        x = left + index * slot + (slot - bar_width) / 2
        y = height - bottom - bar
        parts.append(
            f'<rect class="s{escape(code[0])}xx" x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{bar:.1f}">'
            f"<title>{escape(code)}: {thousands(count)}</title></rect>"
            f'<text class="value" x="{x + bar_width / 2:.1f}" y="{y - 4:.1f}" '
            f'text-anchor="middle">{thousands(count)}</text>'
            f'<text x="{x + bar_width / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(code)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _talker_chart(talkers: list[Talker]) -> str:
    if not talkers:
        return '<p class="empty">No IP traffic seen.</p>'
    width = HALF_CHART_WIDTH
    label_width, value_width = 180, 80
    height = TALKER_ROW_HEIGHT * len(talkers) + 8
    bar_space = width - label_width - value_width
    highest = max(talker.bytes for talker in talkers) or 1
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Top talkers by bytes">']
    for index, talker in enumerate(talkers):
        y = 4 + index * TALKER_ROW_HEIGHT
        sent = bar_space * talker.bytes_sent / highest
        received = bar_space * talker.bytes_received / highest
        parts.append(
            f'<text class="value" x="{label_width - 8}" y="{y + 15}" text-anchor="end">{escape(talker.address)}</text>'
            f'<rect class="sent" x="{label_width}" y="{y + 3}" width="{sent:.1f}" height="16">'
            f"<title>sent {human_bytes(talker.bytes_sent)}</title></rect>"
            f'<rect class="received" x="{label_width + sent:.1f}" y="{y + 3}" width="{received:.1f}" height="16">'
            f"<title>received {human_bytes(talker.bytes_received)}</title></rect>"
            f'<text x="{label_width + sent + received + 6:.1f}" y="{y + 15}">{human_bytes(talker.bytes)}</text>'
        )
    parts.append("</svg>")
    legend = (
        '<div class="legend"><span class="swatch" style="background:var(--accent)"></span>sent'
        '<span class="swatch" style="background:#9cc3e6"></span>received</div>'
    )
    return "".join(parts) + legend


# --- Detail tables ------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]], numeric: set[int], row_classes: list[str] | None = None) -> str:
    if not rows:
        return '<p class="empty">None.</p>'
    head = "".join(
        f'<th class="num">{escape(name)}</th>' if index in numeric else f"<th>{escape(name)}</th>"
        for index, name in enumerate(headers)
    )
    body = []
    for position, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{escape(cell)}</td>' if index in numeric else f'<td class="mono">{escape(cell)}</td>'
            for index, cell in enumerate(row)
        )
        row_class = f' class="{row_classes[position]}"' if row_classes and row_classes[position] else ""
        body.append(f"<tr{row_class}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _panel(title: str, *content: str) -> str:
    return f'<section class="panel"><h2>{escape(title)}</h2>{"".join(content)}</section>'


def _distribution_row(name: str, stats: Distribution) -> list[str]:
    return [
        name,
        thousands(stats.count),
        f"{stats.p50:.1f}",
        f"{stats.p90:.1f}",
        f"{stats.p99:.1f}",
        f"{stats.max:.1f}",
    ]


def _sections(summary: CaptureSummary) -> list[str]:
    http, tcp, dns = summary.http, summary.tcp, summary.dns
    errors = _table(
        ["Error", "Host", "Responses"],
        [[error.label, error.host or "", thousands(error.count)] for error in http.error_paths],
        {2},
        ["bad" if error.status >= 500 else "warn" for error in http.error_paths],
    )
    latency = _table(
        ["Status class", "Responses", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        [_distribution_row(name, stats) for name, stats in http.latency_ms_by_status_class.items()],
        {1, 2, 3, 4, 5},
    )
    methods = _table(["Method", "Requests"], [[m, thousands(c)] for m, c in http.requests_by_method.items()], {1})
    hosts = _table(
        ["Host", "Requests"],
        [[h.host or "(no Host header)", thousands(h.requests)] for h in http.requests_by_host],
        {1},
    )
    requests = _table(
        ["Method", "Host", "Path", "Requests"],
        [[r.method, r.host, r.path, thousands(r.requests)] for r in http.top_requests],
        {3},
    )
    http_note = (
        f'<p class="note">{thousands(http.unanswered_requests)} requests without a response in the capture; '
        f"{thousands(http.responses_without_request)} responses whose request was not captured.</p>"
    )
    tcp_rows = [
        ["TCP segments", thousands(tcp.segments)],
        ["SYN (connection attempts)", thousands(tcp.syn)],
        ["SYN-ACK", thousands(tcp.syn_ack)],
        ["FIN", thousands(tcp.fin)],
        ["RST", thousands(tcp.rst)],
        ["Retransmissions", f"{thousands(tcp.retransmissions)} ({percent(tcp.retransmissions, tcp.segments)})"],
        ["Connections attempted", thousands(tcp.connections_attempted)],
        ["Attempts never answered", thousands(tcp.connections_unanswered)],
        ["Connections reset", thousands(tcp.connections_reset)],
    ]
    rtt = (
        _table(
            ["Handshake RTT", "Handshakes", "p50 ms", "p90 ms", "p99 ms", "max ms"],
            [_distribution_row("SYN → ACK", tcp.handshake_rtt_ms)],
            {1, 2, 3, 4, 5},
        )
        if tcp.handshake_rtt_ms
        else '<p class="empty">No complete handshake seen.</p>'
    )
    rcodes = _table(["Response code", "Responses"], [[r, thousands(c)] for r, c in dns.responses_by_rcode.items()], {1})
    failures = _table(
        ["Name", "Response code", "Responses"], [[f.name, f.rcode, thousands(f.responses)] for f in dns.failures], {2}
    )
    names = _table(["Name", "Type", "Queries"], [[q.name, q.qtype, thousands(q.queries)] for q in dns.top_queries], {2})
    conversations = _table(
        ["VNI", "Protocol", "Endpoint A", "Endpoint B", "Packets", "Bytes", "A→B", "B→A"],
        [
            [
                _vni(c.vni),
                c.protocol,
                endpoint(c.address_a, c.port_a),
                endpoint(c.address_b, c.port_b),
                thousands(c.packets),
                human_bytes(c.bytes),
                human_bytes(c.bytes_a_to_b),
                human_bytes(c.bytes_b_to_a),
            ]
            for c in summary.top_conversations
        ],
        {4, 5, 6, 7},
    )
    vnis = _table(
        ["VNI", "Packets", "Bytes"],
        [[_vni(v.vni), thousands(v.packets), human_bytes(v.bytes)] for v in summary.vnis],
        {1, 2},
    )
    protocols = _table(
        ["Protocol", "Packets", "Bytes"],
        [[p.protocol, thousands(p.packets), human_bytes(p.bytes)] for p in summary.protocols],
        {1, 2},
    )
    applications = _table(
        ["Service (by port)", "Packets", "Bytes"],
        [[a.protocol, thousands(a.packets), human_bytes(a.bytes)] for a in summary.applications],
        {1, 2},
    )
    files = _table(
        ["File", "Format", "Packets", "Wire bytes", "Problems"],
        [
            [
                f.name,
                f"{f.format} ({f.byte_order}-endian, {f.timestamp_resolution})",
                thousands(f.packets),
                human_bytes(f.wire_bytes),
                "; ".join(f.problems) or "none",
            ]
            for f in summary.files
        ],
        {2, 3},
    )
    malformed = _table(["Reason", "Packets"], [[r, thousands(c)] for r, c in summary.malformed.by_reason.items()], {1})
    totals = summary.totals
    totals_note = (
        f'<p class="note">{thousands(totals.vxlan_packets)} VXLAN packets, {thousands(totals.other_packets)} other; '
        f"{thousands(totals.truncated_packets)} truncated (bytes are counted from original lengths); "
        f"{thousands(totals.vlan_tagged_packets)} VLAN-tagged; {thousands(totals.fragments)} IP fragments; "
        f"IPv4 {thousands(totals.ipv4_packets)}, IPv6 {thousands(totals.ipv6_packets)}.</p>"
    )
    return [
        _panel("HTTP errors", errors),
        f'<div class="grid-2">{_panel("HTTP latency by status class", latency, http_note)}'
        f"{_panel('HTTP requests by method and host', methods, '<h3>Hosts</h3>', hosts)}</div>",
        _panel("Top HTTP requests", requests),
        f'<div class="grid-2">{_panel("TCP health", _table(["Measure", "Count"], tcp_rows, {1}), rtt)}'
        f"{_panel('DNS', rcodes, '<h3>Failed lookups</h3>', failures, '<h3>Top queries</h3>', names)}</div>",
        _panel("Top conversations", conversations),
        f'<div class="grid-2">{_panel("Traffic by VNI", vnis, totals_note)}'
        f"{_panel('Protocol mix', protocols, '<h3>Services</h3>', applications)}</div>",
        _panel("Files", files, "<h3>Malformed packets</h3>", malformed),
    ]


def _vni(vni: int | None) -> str:
    return "not VXLAN" if vni is None else str(vni)

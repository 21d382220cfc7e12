"""Plain-text views of a summary: the headline an on-call engineer reads first (notification, CLI, page
header all use it), and the CLI's full text report."""

from __future__ import annotations

from mirrorcap.report.summary import CaptureSummary, Distribution

TOP_LINES = 5


def thousands(count: int) -> str:
    return f"{count:,}"


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def http_errors(summary: CaptureSummary) -> tuple[int, int]:
    """(4xx responses, 5xx responses)."""
    by_status = summary.http.responses_by_status
    client = sum(count for code, count in by_status.items() if code.startswith("4"))
    server = sum(count for code, count in by_status.items() if code.startswith("5"))
    return client, server


def dns_failures(summary: CaptureSummary) -> int:
    return sum(count for rcode, count in summary.dns.responses_by_rcode.items() if rcode != "NOERROR")


def window_line(summary: CaptureSummary) -> str:
    window = summary.window
    if window.start is None or window.end is None:
        return "Window: no packets"
    files = len(summary.files)
    return (
        f"Window: {window.start:%Y-%m-%d %H:%M:%S} to {window.end:%H:%M:%S} UTC "
        f"({window.duration_seconds:.1f} s, {files} file{'s' if files != 1 else ''})"
    )


def latency_text(stats: Distribution) -> str:
    return f"p50 {stats.p50:.1f} ms, p90 {stats.p90:.1f} ms, p99 {stats.p99:.1f} ms, max {stats.max:.1f} ms"


def headline(summary: CaptureSummary) -> list[str]:
    """The few lines that say whether something is wrong on the wire."""
    totals, http, tcp, dns = summary.totals, summary.http, summary.tcp, summary.dns
    client_errors, server_errors = http_errors(summary)
    vnis = ", ".join(str(entry.vni) if entry.vni is not None else "not VXLAN" for entry in summary.vnis[:4])
    lines = [
        window_line(summary),
        f"Traffic: {thousands(totals.packets)} packets, {human_bytes(totals.traffic_bytes)}"
        + (f" (VNI {vnis})" if vnis else ""),
        f"HTTP: {thousands(http.requests)} requests, {thousands(http.responses)} responses, "
        f"5xx {thousands(server_errors)} ({percent(server_errors, http.responses)}), "
        f"4xx {thousands(client_errors)} ({percent(client_errors, http.responses)})",
    ]
    lines += [f"  {error.label}: {thousands(error.count)}" for error in http.error_paths[:3]]
    if "2xx" in http.latency_ms_by_status_class:
        lines.append(f"  2xx latency: {latency_text(http.latency_ms_by_status_class['2xx'])}")
    lines.append(
        f"TCP: {thousands(tcp.syn)} SYN, {thousands(tcp.rst)} RST, {thousands(tcp.retransmissions)} "
        f"retransmissions ({percent(tcp.retransmissions, tcp.segments)} of segments), "
        f"{thousands(tcp.connections_unanswered)} unanswered connection attempts"
    )
    if tcp.handshake_rtt_ms:
        lines.append(f"  handshake RTT: {latency_text(tcp.handshake_rtt_ms)}")
    lines.append(
        f"DNS: {thousands(dns.queries)} queries, {thousands(dns_failures(summary))} failed responses"
        + "".join(f", {rcode} {count}" for rcode, count in dns.responses_by_rcode.items() if rcode != "NOERROR")
    )
    if summary.malformed.total:
        reasons = ", ".join(f"{reason} {count}" for reason, count in summary.malformed.by_reason.items())
        lines.append(f"Malformed: {thousands(summary.malformed.total)} ({reasons})")
    return lines


def text_report(summary: CaptureSummary) -> str:
    """The CLI's readable summary: the headline, then the top lists."""
    title = f"Capture report{f' {summary.capture_id}' if summary.capture_id else ''}"
    lines = [title, "=" * len(title), *headline(summary)]

    def section(name: str, rows: list[str]) -> None:
        if rows:
            lines.extend(["", f"{name}:", *(f"  {row}" for row in rows)])

    section(
        "Top talkers",
        [
            f"{talker.address:<40} {human_bytes(talker.bytes):>10} {thousands(talker.packets):>12} packets"
            for talker in summary.top_talkers[:TOP_LINES]
        ],
    )
    section(
        "Top conversations",
        [
            f"{endpoint(c.address_a, c.port_a)} <-> {endpoint(c.address_b, c.port_b)} {c.protocol} "
            f"{human_bytes(c.bytes)}, {thousands(c.packets)} packets"
            for c in summary.top_conversations[:TOP_LINES]
        ],
    )
    section(
        "HTTP status codes", [f"{code}: {thousands(count)}" for code, count in summary.http.responses_by_status.items()]
    )
    section(
        "HTTP errors",
        [f"{error.label}: {thousands(error.count)}" for error in summary.http.error_paths[: 2 * TOP_LINES]],
    )
    section(
        "HTTP latency by status class",
        [f"{name}: {latency_text(stats)}" for name, stats in summary.http.latency_ms_by_status_class.items()],
    )
    section(
        "DNS failures",
        [f"{failure.rcode} {failure.name}: {failure.responses}" for failure in summary.dns.failures[:TOP_LINES]],
    )
    section(
        "Files",
        [
            f"{entry.name}: {thousands(entry.packets)} packets {'; '.join(entry.problems)}".rstrip()
            for entry in summary.files
        ],
    )
    return "\n".join(lines)


def endpoint(address: str, port: int | None) -> str:
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

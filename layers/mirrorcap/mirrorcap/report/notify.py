"""The SNS notification for a finished capture: a subject an on-call engineer can triage from, and a
body with the headline numbers and the (presigned) links to the report and the pcaps."""

from __future__ import annotations

from collections.abc import Mapping

from mirrorcap.report.summary import CaptureSummary
from mirrorcap.report.text import headline, http_errors, thousands

MAX_SUBJECT_CHARS = 100  # SNS rejects longer subjects


def notification_message(summary: CaptureSummary, links: Mapping[str, str]) -> tuple[str, str]:
    """(subject, body). `links` maps a label ("report", "summary", a pcap's name) to its URL; they are
    listed in the order given."""
    client_errors, server_errors = http_errors(summary)
    subject = (
        f"mirrorcap {summary.capture_id or 'capture'}: {thousands(summary.totals.packets)} packets, "
        f"HTTP 5xx {thousands(server_errors)}, 4xx {thousands(client_errors)}, "
        f"TCP RST {thousands(summary.tcp.rst)}"
    )
    body_lines = [f"Capture report for {summary.capture_id or 'a capture'}", "", *headline(summary)]
    if links:
        body_lines += ["", "Links (presigned, they expire):"]
        body_lines += [f"  {label}: {url}" for label, url in links.items()]
    return _fit_subject(subject), "\n".join(body_lines) + "\n"


def _fit_subject(subject: str) -> str:
    # SNS subjects are one line of printable ASCII; capture ids are, but be safe about what a
    # future caller passes.
    printable = "".join(char if 32 <= ord(char) < 127 else "?" for char in subject)
    if len(printable) <= MAX_SUBJECT_CHARS:
        return printable
    return printable[: MAX_SUBJECT_CHARS - 3] + "..."

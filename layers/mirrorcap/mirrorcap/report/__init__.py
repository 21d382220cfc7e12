"""Capture report: what happened on the wire, from the capture's pcap files, without Wireshark.

    summary = analyze_captures(paths, capture_id=...)   # CaptureSummary, written as summary.json
    html = render_html(summary)                         # report.html: one self-contained page
    stats = decapsulate(paths, out_path)                # decapsulated.pcap: inner frames, no VXLAN
    subject, body = notification_message(summary, links)

Only numpy, pydantic and the standard library are used: this package ships in the Lambda layer.
"""

from mirrorcap.report.analyze import analyze_captures
from mirrorcap.report.decap import DecapsulationStats, decapsulate
from mirrorcap.report.errors import UnreadableCapture
from mirrorcap.report.html import render_html
from mirrorcap.report.notify import notification_message
from mirrorcap.report.summary import CaptureSummary

__all__ = [
    "CaptureSummary",
    "DecapsulationStats",
    "UnreadableCapture",
    "analyze_captures",
    "decapsulate",
    "notification_message",
    "render_html",
]

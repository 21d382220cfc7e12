"""ReportCapture: turn the capture's pcaps into what an on-call engineer reads first.

Beside the pcaps in S3: summary.json, report.html (self-contained) and decapsulated.pcap (the inner
frames, for tools that do not decode VXLAN); then one SNS notification with the headline numbers and
presigned links. Runs after teardown, so the collector is not billing while the report is made.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from mirrorcap.aws import artifacts as s3
from mirrorcap.aws import notifications
from mirrorcap.errors import NothingToReport
from mirrorcap.models import ReportCaptureInput, ReportCaptureOutput
from mirrorcap.observability import logger
from mirrorcap.report import analyze_captures, decapsulate, notification_message, render_html
from mirrorcap.settings import Settings

SUMMARY_NAME, REPORT_NAME, DECAPSULATED_NAME = "summary.json", "report.html", "decapsulated.pcap"
# Presigned with the function's role session: the links die with it (hours), whatever is asked for.
LINK_SECONDS = 12 * 3600


def report_capture(data: ReportCaptureInput, settings: Settings) -> ReportCaptureOutput:
    artifacts = data.artifacts
    # The manifest lists only pcaps; an empty one (nothing mirrored in its rotation slot) has no records.
    pcaps = [o.key for o in artifacts.objects if o.bytes > 0]
    if not pcaps:
        raise NothingToReport(f"no pcap to report on under s3://{artifacts.bucket}/{artifacts.prefix}")
    with tempfile.TemporaryDirectory(prefix="mirrorcap-report-") as scratch:
        local = [Path(scratch) / PurePosixPath(key).name for key in pcaps]
        for key, path in zip(pcaps, local, strict=True):
            s3.download_file(artifacts.bucket, key, path)
        summary = analyze_captures(local, capture_id=data.capture.capture_id)
        decapsulated = Path(scratch) / DECAPSULATED_NAME
        decapsulate(local, decapsulated)
        keys = {name: f"{artifacts.prefix}{name}" for name in (SUMMARY_NAME, REPORT_NAME, DECAPSULATED_NAME)}
        s3.put_object(
            artifacts.bucket, keys[SUMMARY_NAME], summary.model_dump_json(indent=2).encode(), "application/json"
        )
        s3.put_object(artifacts.bucket, keys[REPORT_NAME], render_html(summary).encode(), "text/html; charset=utf-8")
        s3.upload_file(decapsulated, artifacts.bucket, keys[DECAPSULATED_NAME])
    links = {
        "report": _presign(artifacts.bucket, keys[REPORT_NAME]),
        "summary": _presign(artifacts.bucket, keys[SUMMARY_NAME]),
        "decapsulated pcap": _presign(artifacts.bucket, keys[DECAPSULATED_NAME]),
        **{PurePosixPath(key).name: _presign(artifacts.bucket, key) for key in pcaps},
        "all files (console)": artifacts.console_url,
    }
    subject, body = notification_message(summary, links)
    message_id = _notify(settings, subject, body)
    logger.info("report written", extra={"packets": summary.totals.packets, "notified": bool(message_id)})
    return ReportCaptureOutput(
        summary_key=keys[SUMMARY_NAME],
        report_key=keys[REPORT_NAME],
        decapsulated_key=keys[DECAPSULATED_NAME],
        subject=subject,
        notification_id=message_id,
    )


def _presign(bucket: str, key: str) -> str:
    return s3.presigned_get(bucket, key, LINK_SECONDS)


def _notify(settings: Settings, subject: str, body: str) -> str | None:
    if not settings.notification_topic_arn:
        return None
    return notifications.publish(settings.notification_topic_arn, subject, body)

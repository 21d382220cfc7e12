"""ReportCapture: turn the capture's pcaps into what an on-call engineer reads first.

Beside the pcaps in S3: summary.json, report.html (self-contained) and decapsulated.pcap (the inner
frames, for tools that do not decode VXLAN); then one SNS notification with the headline numbers and
presigned links. Runs after teardown, so the collector is not billing while the report is made.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from boto3.s3.transfer import TransferConfig

from mirrorcap.awserrors import throttling_is_transient
from mirrorcap.errors import NothingToReport
from mirrorcap.models import CaptureReport, ReportInput
from mirrorcap.observability import logger
from mirrorcap.report import analyze_captures, decapsulate, notification_message, render_html
from mirrorcap.runtime import aws
from mirrorcap.settings import Settings

SUMMARY_NAME, REPORT_NAME, DECAPSULATED_NAME = "summary.json", "report.html", "decapsulated.pcap"
# Presigned with the function's role session: the links die with it (hours), whatever is asked for.
LINK_SECONDS = 12 * 3600
# One stream per file: Lambda's network is the limit, not threads, and every call stays on this thread
# (where the offline tools attribute it to this function for the IAM check).
SEQUENTIAL = TransferConfig(use_threads=False)


def report_capture(data: ReportInput, settings: Settings) -> CaptureReport:
    artifacts = data.artifacts
    # The manifest lists only pcaps; an empty one (nothing mirrored in its rotation slot) has no records.
    pcaps = [o.key for o in artifacts.objects if o.bytes > 0]
    if not pcaps:
        raise NothingToReport(f"no pcap to report on under s3://{artifacts.bucket}/{artifacts.prefix}")
    s3 = aws().s3
    with tempfile.TemporaryDirectory(prefix="mirrorcap-report-") as scratch:
        local = [Path(scratch) / PurePosixPath(key).name for key in pcaps]
        with throttling_is_transient():
            for key, path in zip(pcaps, local, strict=True):
                s3.download_file(artifacts.bucket, key, str(path), Config=SEQUENTIAL)  # to disk, not memory
        summary = analyze_captures(local, capture_id=data.capture.capture_id)
        decapsulated = Path(scratch) / DECAPSULATED_NAME
        decapsulate(local, decapsulated)
        keys = {name: f"{artifacts.prefix}{name}" for name in (SUMMARY_NAME, REPORT_NAME, DECAPSULATED_NAME)}
        with throttling_is_transient():
            s3.put_object(
                Bucket=artifacts.bucket, Key=keys[SUMMARY_NAME], Body=summary.model_dump_json(indent=2).encode(),
                ContentType="application/json",
            )  # fmt: skip
            s3.put_object(
                Bucket=artifacts.bucket, Key=keys[REPORT_NAME], Body=render_html(summary).encode(),
                ContentType="text/html; charset=utf-8",
            )  # fmt: skip
            s3.upload_file(str(decapsulated), artifacts.bucket, keys[DECAPSULATED_NAME], Config=SEQUENTIAL)
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
    return CaptureReport(
        summary_key=keys[SUMMARY_NAME],
        report_key=keys[REPORT_NAME],
        decapsulated_key=keys[DECAPSULATED_NAME],
        subject=subject,
        notification_id=message_id,
    )


def _presign(bucket: str, key: str) -> str:
    return aws().s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=LINK_SECONDS)


def _notify(settings: Settings, subject: str, body: str) -> str | None:
    if not settings.notification_topic_arn:
        return None
    with throttling_is_transient():
        return aws().sns.publish(TopicArn=settings.notification_topic_arn, Subject=subject, Message=body)["MessageId"]

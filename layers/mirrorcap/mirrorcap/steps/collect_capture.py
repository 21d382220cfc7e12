"""CollectCapture: read the capture command's outcome and the manifest of what it delivered to S3.

The collector uploads each pcap as it closes and writes manifest.json last, so the manifest is the
capture's own account of what exists; every file it lists must be in S3.
"""

from __future__ import annotations

from pydantic import ValidationError

from mirrorcap.aws import artifacts, commands
from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureManifest
from mirrorcap.errors import AwsRequestFailed, CaptureCommandFailed, CaptureStillRunning
from mirrorcap.models import CapturedObject, CaptureRequest, CollectCaptureInput, CollectCaptureOutput
from mirrorcap.naming import capture_prefix
from mirrorcap.observability import logger
from mirrorcap.settings import Settings

RUNNING_STATUSES = frozenset({"Pending", "InProgress", "Delayed"})
# The script exits non-zero for these (so SSM says Failed), but every file it closed is in S3.
PARTIAL_BUT_DELIVERED = frozenset({"stopped_early", "disk_limit"})
# GetObject of a missing key answers 403 (not 404) unless the caller may list the bucket without
# conditions (docs/aws-facts.md#iam-s3): either way, the manifest is not there for us.
MANIFEST_MISSING = frozenset({"NoSuchKey", "404", "AccessDenied", "403"})


def collect_capture(data: CollectCaptureInput, settings: Settings) -> CollectCaptureOutput:
    capture, command = data.capture, data.command
    status, detail = _command_status(command.command_id, data.collector.instance_id)
    if status in RUNNING_STATUSES:
        raise CaptureStillRunning(f"capture command {command.command_id} is {status}")
    manifest, unread_because = _read_manifest(settings.capture_bucket, capture)
    if status != "Success" and manifest is not None and manifest.status in PARTIAL_BUT_DELIVERED and manifest.files:
        # Stopped early or by the disk guard: what it captured is in S3 and worth a report.
        logger.warning("capture ended early", extra={"manifest_status": manifest.status, "files": len(manifest.files)})
        return _artifacts(settings.capture_bucket, capture, manifest)
    if status != "Success":
        delivered = f"; {len(manifest.files)} file(s) were delivered before it stopped" if manifest else ""
        raise CaptureCommandFailed(f"capture command {command.command_id} ended {status}: {detail}{delivered}")
    if manifest is None:
        raise CaptureCommandFailed(
            f"capture command {command.command_id} succeeded but no {MANIFEST_NAME} could be read under "
            f"s3://{settings.capture_bucket}/{capture_prefix(capture.capture_id)} ({unread_because})"
        )
    return _artifacts(settings.capture_bucket, capture, manifest)


def _command_status(command_id: str, instance_id: str) -> tuple[str, str]:
    try:
        invocation = commands.command_invocation(command_id, instance_id)
    except AwsRequestFailed as exc:
        if exc.code == "InvocationDoesNotExist":
            return "Pending", "not yet delivered"  # SSM records the invocation a moment after SendCommand
        raise
    detail = invocation.get("StatusDetails", "")
    stderr = (invocation.get("StandardErrorContent") or "").strip()
    if stderr:
        detail = f"{detail}; stderr: {stderr[-600:]}"
    return invocation["Status"], detail


def _read_manifest(bucket: str, capture: CaptureRequest) -> tuple[CaptureManifest | None, str]:
    """The manifest, or None and why it could not be read."""
    key = f"{capture_prefix(capture.capture_id)}{MANIFEST_NAME}"
    try:
        body = artifacts.read_object(bucket, key)
    except AwsRequestFailed as exc:
        if exc.code not in MANIFEST_MISSING:
            raise
        return None, f"S3 answered {exc.code}: the script never wrote it, or it is not readable by this function"
    try:
        return CaptureManifest.model_validate_json(body), ""
    except ValidationError as exc:
        raise CaptureCommandFailed(f"s3://{bucket}/{key} is not a valid capture manifest: {exc}") from exc


def _artifacts(bucket: str, capture: CaptureRequest, manifest: CaptureManifest) -> CollectCaptureOutput:
    prefix = capture_prefix(capture.capture_id)
    listed = artifacts.object_sizes(bucket, prefix)
    missing = [f.key for f in manifest.files if f.key not in listed]
    if missing:
        raise CaptureCommandFailed(f"the manifest lists files that are not in S3: {', '.join(missing)}")
    objects = [CapturedObject(key=f.key, bytes=f.bytes, sha256=f.sha256, packets=f.packets) for f in manifest.files]
    return CollectCaptureOutput(
        bucket=bucket,
        prefix=prefix,
        manifest_key=f"{prefix}{MANIFEST_NAME}",
        status=manifest.status,
        objects=objects,
        packets_captured=manifest.packets_captured,
        packets_dropped_by_kernel=manifest.packets_dropped_by_kernel,
        console_url=artifacts.console_url(bucket, prefix),
    )

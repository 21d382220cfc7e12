"""StartCapture, RenewUploadGrant and CollectCapture: run the capture script on the collector through
SSM Run Command, keep its upload grant valid, then read what it delivered to S3.

The script (mirrorcap.collector) bounds itself to the capture window, uploads each pcap as it closes
and writes a manifest last; the workflow waits the window in a Wait state (renewing the grant on the
way for long captures) and then only has to read the command's outcome and the manifest.
"""

from __future__ import annotations

import math
from datetime import timedelta

from botocore.exceptions import ClientError
from pydantic import ValidationError

from mirrorcap.awserrors import error_code, error_message, throttling_is_transient
from mirrorcap.collector.command import (
    CaptureScriptSpec,
    execution_timeout_seconds,
    max_object_bytes,
    render_renewal_command,
    render_run_command,
)
from mirrorcap.collector.grant import GRANT_SECONDS, RENEW_AHEAD_SECONDS, UploadGrant
from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureManifest
from mirrorcap.errors import CaptureCommandFailed, CaptureStillRunning, CollectorNotReady
from mirrorcap.models import (
    CaptureArtifacts,
    CaptureCommand,
    CapturedObject,
    CaptureRequest,
    CollectCaptureInput,
    MirrorSession,
    RenewUploadGrantInput,
    StartCaptureInput,
)
from mirrorcap.naming import capture_prefix
from mirrorcap.observability import logger
from mirrorcap.runtime import aws, now
from mirrorcap.settings import Settings
from mirrorcap.workflow.upload_grant import mint_upload_grant

RUN_SHELL_SCRIPT = "AWS-RunShellScript"
RUNNING_STATUSES = frozenset({"Pending", "InProgress", "Delayed"})
# The script exits non-zero for these (so SSM says Failed), but every file it closed is in S3.
PARTIAL_BUT_DELIVERED = frozenset({"stopped_early", "disk_limit"})
RENEWAL_EXECUTION_SECONDS = 60  # writing one small file


def _command_comment(capture_id: str) -> str:
    return f"mirrorcap capture {capture_id}"  # SendCommand allows 100 characters; ids are at most 63


def _renewal_comment(capture_id: str) -> str:
    return f"mirrorcap upload grant {capture_id}"


def _script_spec(capture: CaptureRequest, mirror: MirrorSession, settings: Settings) -> CaptureScriptSpec:
    return CaptureScriptSpec(
        capture_id=capture.capture_id,
        bucket=settings.capture_bucket,
        key_prefix=capture_prefix(capture.capture_id),
        duration_seconds=capture.duration_seconds,
        vni=mirror.vni,
    )


def start_capture(data: StartCaptureInput, settings: Settings) -> CaptureCommand:
    capture, collector = data.capture, data.collector
    spec = _script_spec(capture, data.mirror, settings)
    started_at = now()
    command_id = _already_sent(capture.capture_id, collector.instance_id)
    if command_id is None:
        grant = _mint(spec, settings)
        command_id = _send(
            collector.instance_id,
            _command_comment(spec.capture_id),
            render_run_command(spec, grant),
            execution_timeout_seconds(spec),
        )
        grant_expires_at = grant.expires_at
    else:
        # A retried step: the first attempt's grant is on the collector, minted about now.
        grant_expires_at = started_at + timedelta(seconds=GRANT_SECONDS)
    logger.info("capture started", extra={"command_id": command_id, "collector": collector.instance_id})
    return _plan(
        CaptureCommand(
            command_id=command_id,
            started_at=started_at,
            window_ends_at=started_at + timedelta(seconds=capture.duration_seconds),
            finishes_by=started_at + timedelta(seconds=execution_timeout_seconds(spec)),
            grant_expires_at=grant_expires_at,
            wait_seconds=0,
            renew_grant=False,
        )
    )


def renew_upload_grant(data: RenewUploadGrantInput, settings: Settings) -> CaptureCommand:
    """Hand the running capture a fresh upload grant, then plan the next wait."""
    spec = _script_spec(data.capture, data.mirror, settings)
    grant = _mint(spec, settings)
    command_id = _send(
        data.collector.instance_id,
        _renewal_comment(spec.capture_id),
        render_renewal_command(spec.capture_id, grant),
        RENEWAL_EXECUTION_SECONDS,
    )
    logger.info("upload grant renewed", extra={"renewal_command_id": command_id, "expires_at": grant.expires_at})
    return _plan(data.command.model_copy(update={"grant_expires_at": grant.expires_at}))


def _plan(command: CaptureCommand) -> CaptureCommand:
    """When WaitCaptureWindow ends, and whether the upload grant is renewed then. Grants are renewed
    during the window as they come due, and once more at its end if the script would still be delivering
    its last files when the grant runs out. A capture of a few minutes never renews."""
    renew_at = command.grant_expires_at - timedelta(seconds=RENEW_AHEAD_SECONDS)
    minted_at = command.grant_expires_at - timedelta(seconds=GRANT_SECONDS)
    if renew_at < command.window_ends_at:
        wake_at, renew = renew_at, True
    else:
        wake_at = command.window_ends_at
        renew = command.grant_expires_at < command.finishes_by and minted_at < command.window_ends_at
    wait = max(0, math.ceil((wake_at - now()).total_seconds()))
    return command.model_copy(update={"wait_seconds": wait, "renew_grant": renew})


def _mint(spec: CaptureScriptSpec, settings: Settings) -> UploadGrant:
    return mint_upload_grant(spec.bucket, spec.capture_id, max_object_bytes(spec), settings.upload_signer_role_arn)


def _already_sent(capture_id: str, instance_id: str) -> str | None:
    """SendCommand has no idempotency token: a retried step finds the command the first attempt sent."""
    with throttling_is_transient():
        commands = aws().ssm.list_commands(InstanceId=instance_id)["Commands"]
    for command in commands:
        if command.get("Comment") == _command_comment(capture_id) and command.get("DocumentName") == RUN_SHELL_SCRIPT:
            return command["CommandId"]
    return None


def _send(instance_id: str, comment: str, commands: list[str], execution_seconds: int) -> str:
    # No S3 output: the agent would write it with the instance profile, which has no S3 permission.
    # The script uploads its whole log itself; SSM keeps the first 24,000 characters of stdout.
    try:
        with throttling_is_transient():
            response = aws().ssm.send_command(
                InstanceIds=[instance_id],
                DocumentName=RUN_SHELL_SCRIPT,
                Comment=comment,
                Parameters={"commands": commands, "executionTimeout": [str(execution_seconds)]},
                TimeoutSeconds=60,  # delivery: the agent is online, so it takes the command at once
            )
    except ClientError as exc:
        if error_code(exc) == "InvalidInstanceId":
            # The agent dropped offline between the readiness check and now; the state machine retries.
            raise CollectorNotReady(f"send_command: {error_message(exc)}") from exc
        raise
    return response["Command"]["CommandId"]


def collect_capture(data: CollectCaptureInput, settings: Settings) -> CaptureArtifacts:
    capture, command = data.capture, data.command
    status, detail = _command_status(command.command_id, data)
    if status in RUNNING_STATUSES:
        raise CaptureStillRunning(f"capture command {command.command_id} is {status}")
    manifest = _read_manifest(settings.capture_bucket, capture)
    if status != "Success" and manifest is not None and manifest.status in PARTIAL_BUT_DELIVERED and manifest.files:
        # Stopped early or by the disk guard: what it captured is in S3 and worth a report.
        logger.warning("capture ended early", extra={"manifest_status": manifest.status, "files": len(manifest.files)})
        return _artifacts(settings.capture_bucket, capture, manifest)
    if status != "Success":
        delivered = f"; {len(manifest.files)} file(s) were delivered before it stopped" if manifest else ""
        raise CaptureCommandFailed(f"capture command {command.command_id} ended {status}: {detail}{delivered}")
    if manifest is None:
        raise CaptureCommandFailed(
            f"capture command {command.command_id} succeeded but wrote no {MANIFEST_NAME} under "
            f"s3://{settings.capture_bucket}/{capture_prefix(capture.capture_id)}"
        )
    return _artifacts(settings.capture_bucket, capture, manifest)


def _command_status(command_id: str, data: CollectCaptureInput) -> tuple[str, str]:
    instance_id = data.collector.instance_id
    try:
        with throttling_is_transient():
            invocation = aws().ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except ClientError as exc:
        if error_code(exc) == "InvocationDoesNotExist":
            return "Pending", "not yet delivered"  # SSM records the invocation a moment after SendCommand
        raise
    detail = invocation.get("StatusDetails", "")
    stderr = (invocation.get("StandardErrorContent") or "").strip()
    if stderr:
        detail = f"{detail}; stderr: {stderr[-600:]}"
    return invocation["Status"], detail


def _read_manifest(bucket: str, capture: CaptureRequest) -> CaptureManifest | None:
    key = f"{capture_prefix(capture.capture_id)}{MANIFEST_NAME}"
    try:
        with throttling_is_transient():
            body = aws().s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    try:
        return CaptureManifest.model_validate_json(body)
    except ValidationError as exc:
        raise CaptureCommandFailed(f"s3://{bucket}/{key} is not a valid capture manifest: {exc}") from exc


def _artifacts(bucket: str, capture: CaptureRequest, manifest: CaptureManifest) -> CaptureArtifacts:
    prefix = capture_prefix(capture.capture_id)
    with throttling_is_transient():
        listed = {
            item["Key"]: item["Size"]
            for page in aws().s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }
    missing = [f.key for f in manifest.files if f.key not in listed]
    if missing:
        raise CaptureCommandFailed(f"the manifest lists files that are not in S3: {', '.join(missing)}")
    objects = [CapturedObject(key=f.key, bytes=f.bytes, sha256=f.sha256, packets=f.packets) for f in manifest.files]
    return CaptureArtifacts(
        bucket=bucket,
        prefix=prefix,
        manifest_key=f"{prefix}{MANIFEST_NAME}",
        status=manifest.status,
        objects=objects,
        packets_captured=manifest.packets_captured,
        packets_dropped_by_kernel=manifest.packets_dropped_by_kernel,
        console_url=f"https://{aws().region}.console.aws.amazon.com/s3/buckets/{bucket}?prefix={prefix}",
    )

"""StartCapture: run the capture script on the collector through SSM Run Command.

The script (mirrorcap.collector) bounds itself to the capture window, uploads each pcap as it closes
and writes a manifest last; the workflow waits the window in a Wait state (renewing the upload grant
on the way for long captures: RenewUploadGrant) and then only has to read the command's outcome and the
manifest (CollectCapture).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TypeVar

from mirrorcap.aws import commands
from mirrorcap.aws.commands import RUN_SHELL_SCRIPT
from mirrorcap.collector.command import (
    CaptureScriptSpec,
    execution_timeout_seconds,
    max_object_bytes,
    render_run_command,
)
from mirrorcap.collector.grant import GRANT_SECONDS, RENEW_AHEAD_SECONDS, UploadGrant, mint_upload_grant
from mirrorcap.errors import AwsRequestFailed, CollectorNotReady
from mirrorcap.models import CaptureCommand, CaptureRequest, MirrorSession, StartCaptureInput, StartCaptureOutput
from mirrorcap.naming import capture_prefix
from mirrorcap.observability import logger
from mirrorcap.runtime import now
from mirrorcap.settings import Settings

Command = TypeVar("Command", bound=CaptureCommand)


def capture_comment(capture_id: str) -> str:
    return f"mirrorcap capture {capture_id}"  # SendCommand allows 100 characters; ids are at most 63


def start_capture(data: StartCaptureInput, settings: Settings) -> StartCaptureOutput:
    capture, collector = data.capture, data.collector
    spec = script_spec(capture, data.mirror, settings)
    started_at = now()
    command_id = _already_sent(capture.capture_id, collector.instance_id)
    if command_id is None:
        grant = mint_grant(spec, settings)
        command_id = send_to_collector(
            collector.instance_id,
            capture_comment(spec.capture_id),
            render_run_command(spec, grant),
            execution_timeout_seconds(spec),
        )
        grant_expires_at = grant.expires_at
    else:
        # A retried step: the first attempt's grant is on the collector, minted about now.
        grant_expires_at = started_at + timedelta(seconds=GRANT_SECONDS)
    logger.info("capture started", extra={"command_id": command_id, "collector": collector.instance_id})
    command = StartCaptureOutput(
        command_id=command_id,
        started_at=started_at,
        window_ends_at=started_at + timedelta(seconds=capture.duration_seconds),
        finishes_by=started_at + timedelta(seconds=execution_timeout_seconds(spec)),
        grant_expires_at=grant_expires_at,
        wait_seconds=0,
        renew_grant=False,
    )
    return plan_next_wait(command)


def script_spec(capture: CaptureRequest, mirror: MirrorSession, settings: Settings) -> CaptureScriptSpec:
    return CaptureScriptSpec(
        capture_id=capture.capture_id,
        bucket=settings.capture_bucket,
        key_prefix=capture_prefix(capture.capture_id),
        duration_seconds=capture.duration_seconds,
        vni=mirror.vni,
    )


def plan_next_wait(command: Command) -> Command:
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


def mint_grant(spec: CaptureScriptSpec, settings: Settings) -> UploadGrant:
    return mint_upload_grant(spec.bucket, spec.capture_id, max_object_bytes(spec), settings.upload_signer_role_arn)


def send_to_collector(instance_id: str, comment: str, lines: list[str], execution_seconds: int) -> str:
    try:
        return commands.send_shell_script(instance_id, comment, lines, execution_seconds)
    except AwsRequestFailed as exc:
        if exc.code == "InvalidInstanceId":
            # The agent dropped offline between the readiness check and now; the state machine retries.
            raise CollectorNotReady(str(exc)) from exc
        raise


def _already_sent(capture_id: str, instance_id: str) -> str | None:
    """SendCommand has no idempotency token: a retried step finds the command the first attempt sent."""
    for command in commands.commands_sent_to(instance_id):
        if command.get("Comment") == capture_comment(capture_id) and command.get("DocumentName") == RUN_SHELL_SCRIPT:
            return str(command["CommandId"])
    return None

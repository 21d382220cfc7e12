"""RenewUploadGrant: hand a long capture's collector a fresh upload grant, then plan the next wait.

A grant lasts under an hour (it is signed by a role-chained session: mirrorcap.collector.grant); the
state machine comes here from WaitCaptureWindow whenever StartCapture's plan says a renewal is due.
"""

from __future__ import annotations

from mirrorcap.collector.command import render_renewal_command
from mirrorcap.models import RenewUploadGrantInput, RenewUploadGrantOutput
from mirrorcap.observability import logger
from mirrorcap.settings import Settings
from mirrorcap.steps.start_capture import mint_grant, plan_next_wait, script_spec, send_to_collector

RENEWAL_EXECUTION_SECONDS = 60  # writing one small file


def renew_upload_grant(data: RenewUploadGrantInput, settings: Settings) -> RenewUploadGrantOutput:
    spec = script_spec(data.capture, data.mirror, settings)
    grant = mint_grant(spec, settings)
    command_id = send_to_collector(
        data.collector.instance_id,
        f"mirrorcap upload grant {spec.capture_id}",
        render_renewal_command(spec.capture_id, grant),
        RENEWAL_EXECUTION_SECONDS,
    )
    logger.info("upload grant renewed", extra={"renewal_command_id": command_id, "expires_at": grant.expires_at})
    renewed = RenewUploadGrantOutput.model_validate({**data.command.model_dump(), "grant_expires_at": grant.expires_at})
    return plan_next_wait(renewed)

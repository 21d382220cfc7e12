"""FanOut: a trigger that names several instances starts one execution per instance.

Each capture then fails, retries and cleans up on its own. The execution name is the capture id, so a
retried FanOut (or a twice-delivered event) cannot start the same capture twice.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from mirrorcap.awserrors import error_code, throttling_is_transient
from mirrorcap.errors import MirrorcapMisconfigured
from mirrorcap.models import FanOutInput, FanOutResult, StartedCapture
from mirrorcap.observability import logger
from mirrorcap.runtime import aws
from mirrorcap.settings import Settings


def start_captures(data: FanOutInput, settings: Settings) -> FanOutResult:
    if not settings.state_machine_arn:
        raise MirrorcapMisconfigured("STATE_MACHINE_ARN is not set; FanOut cannot start captures")
    started = []
    for request in data.fanout:
        assert request.capture_id is not None, "ResolveRequest names every fanned-out capture"
        execution_arn = _start(
            settings.state_machine_arn, request.capture_id, request.model_dump_json(exclude_none=True)
        )
        started.append(
            StartedCapture(capture_id=request.capture_id, instance_id=request.instance_id, execution_arn=execution_arn)
        )
    logger.info("captures started", extra={"count": len(started)})
    return FanOutResult(started=started)


def _start(state_machine_arn: str, name: str, document: str) -> str:
    try:
        with throttling_is_transient():
            return aws().stepfunctions.start_execution(stateMachineArn=state_machine_arn, name=name, input=document)[
                "executionArn"
            ]
    except ClientError as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            raise
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

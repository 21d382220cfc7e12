"""FanOut: a trigger that names several instances starts one execution per instance.

Each capture then fails, retries and cleans up on its own. The execution name is the capture id, so a
retried FanOut (or a twice-delivered event) cannot start the same capture twice.
"""

from __future__ import annotations

from mirrorcap.aws import executions
from mirrorcap.errors import AwsRequestFailed, MirrorcapMisconfigured
from mirrorcap.models import FanOutInput, FanOutOutput, StartedCapture
from mirrorcap.observability import logger
from mirrorcap.settings import Settings


def fan_out(data: FanOutInput, settings: Settings) -> FanOutOutput:
    if not settings.state_machine_arn:
        raise MirrorcapMisconfigured("STATE_MACHINE_ARN is not set; FanOut cannot start captures")
    started = []
    for request in data.fanout:
        assert request.capture_id is not None, "ResolveRequest names every fanned-out capture"
        execution_arn = _start_once(
            settings.state_machine_arn, request.capture_id, request.model_dump_json(exclude_none=True)
        )
        started.append(
            StartedCapture(capture_id=request.capture_id, instance_id=request.instance_id, execution_arn=execution_arn)
        )
    logger.info("captures started", extra={"count": len(started)})
    return FanOutOutput(started=started)


def _start_once(state_machine_arn: str, name: str, document: str) -> str:
    try:
        return executions.start_execution(state_machine_arn, name, document)
    except AwsRequestFailed as exc:
        if exc.code != "ExecutionAlreadyExists":
            raise
    # Started by an earlier attempt: the execution's ARN follows from its name.
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

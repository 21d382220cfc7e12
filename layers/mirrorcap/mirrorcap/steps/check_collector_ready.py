"""CheckCollectorReady: is the collector running AND its SSM agent online?

A mirror session to a collector that is not running fails, and SendCommand raises InvalidInstanceId
until the agent has registered (a minute or more after `running`): docs/aws-facts.md#ssm-agent-registration.
The state machine polls this step until ready, or until the readiness timeout tears everything down.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mirrorcap.aws import commands, instances
from mirrorcap.errors import AwsRequestFailed, CollectorLaunchFailed, CollectorNotReady
from mirrorcap.models import CheckCollectorReadyInput, CheckCollectorReadyOutput
from mirrorcap.runtime import now
from mirrorcap.settings import Settings

GONE_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})
# EC2's reason when it cannot use the volume's KMS key at launch (the instance goes straight to
# terminated): docs/aws-facts.md#iam-kms-ebs.
KMS_LAUNCH_FAILURE = "Client.InternalError"


def check_collector_ready(data: CheckCollectorReadyInput, settings: Settings) -> CheckCollectorReadyOutput:
    collector = data.collector
    instance = _describe(collector.instance_id)
    state = instance["State"]["Name"] if instance else "pending"
    if state in GONE_STATES:
        raise CollectorLaunchFailed(_gone_message(collector.instance_id, state, instance or {}))
    ping_status = commands.agent_ping_status(collector.instance_id) if state == "running" else None
    checked_at = now()
    deadline = collector.launched_at + timedelta(seconds=settings.readiness_timeout_seconds)
    ready = state == "running" and ping_status == "Online"
    if not ready and checked_at >= deadline:
        raise CollectorNotReady(
            f"collector {collector.instance_id} not ready after {settings.readiness_timeout_seconds}s: instance "
            f"{state}, SSM agent {ping_status or 'not registered'}. The collector's subnet needs a route to SSM "
            "(NAT, or VPC endpoints for ssm, ssmmessages and ec2messages) and to S3."
        )
    return CheckCollectorReadyOutput(
        ready=ready, instance_state=state, ping_status=ping_status, checked_at=checked_at, deadline=deadline
    )


def _describe(instance_id: str) -> Any:
    """The collector, or None while EC2 does not show it yet: the EC2 API is eventually consistent, and a
    DescribeInstances right after RunInstances may answer InvalidInstanceID.NotFound
    (docs/aws-facts.md#ec2-eventual-consistency). The readiness deadline still bounds the wait."""
    try:
        return instances.describe_instance(instance_id)
    except AwsRequestFailed as exc:
        if exc.code != "InvalidInstanceID.NotFound":
            raise
        return None


def _gone_message(instance_id: str, state: str, instance: dict[str, Any]) -> str:
    reason = instance.get("StateReason", {})
    message = f"collector {instance_id} is {state} before it was ready: {reason.get('Message', 'no reason given')}"
    if reason.get("Code") == KMS_LAUNCH_FAILURE:
        message += (
            ". EC2 could not use the KMS key of the collector's encrypted volume: if the account's default EBS "
            "key is a customer managed key, set the template parameter CollectorKmsKeyArn to it (the stack "
            "then grants what EBS needs) and allow the stack's LaunchCollector role in the key policy."
        )
    return message

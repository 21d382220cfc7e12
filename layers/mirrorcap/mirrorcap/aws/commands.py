"""SSM: the collector's agent, and the Run Command that runs the capture script."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ssm.type_defs import CommandTypeDef, GetCommandInvocationResultTypeDef

RUN_SHELL_SCRIPT = "AWS-RunShellScript"


@translated_errors
def agent_ping_status(instance_id: str) -> str | None:
    """The SSM agent's PingStatus (Online, ConnectionLost, Inactive), or None before it registers."""
    found = aws().ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
    information = found["InstanceInformationList"]
    return str(information[0]["PingStatus"]) if information else None


@translated_errors
def commands_sent_to(instance_id: str) -> list[CommandTypeDef]:
    return aws().ssm.list_commands(InstanceId=instance_id)["Commands"]


@translated_errors
def send_shell_script(instance_id: str, comment: str, commands: list[str], execution_seconds: int) -> str:
    """Run `commands` with AWS-RunShellScript; the command id."""
    # No S3 output: the agent would write it with the instance profile, which has no S3 permission.
    response = aws().ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName=RUN_SHELL_SCRIPT,
        Comment=comment,
        Parameters={"commands": commands, "executionTimeout": [str(execution_seconds)]},
        TimeoutSeconds=60,  # delivery: the agent is online, so it takes the command at once
    )
    return str(response["Command"]["CommandId"])


@translated_errors
def command_invocation(command_id: str, instance_id: str) -> GetCommandInvocationResultTypeDef:
    return aws().ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)

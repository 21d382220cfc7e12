"""The deployed stack, found by name: its outputs read from CloudFormation."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mirrorcap_tools.operator.aws import AwsRefused, Connection, StackNotFound

DEFAULT_STACK_NAME = "mirrorcap"
SAMCONFIG = Path("samconfig.toml")


@dataclass(frozen=True)
class Stack:
    name: str
    state_machine_arn: str
    bucket: str
    console_url: str | None

    def execution_arn(self, name: str) -> str:
        """Executions live under their state machine: arn:...:stateMachine:M -> arn:...:execution:M:NAME."""
        return self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"

    def execution_console_url(self, execution_arn: str, region: str) -> str:
        return (
            f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}"
        )


def default_stack_name(samconfig: Path = SAMCONFIG) -> str:
    """The stack `sam deploy --guided` saved in samconfig.toml (in the current directory), else `mirrorcap`."""
    try:
        config = tomllib.loads(samconfig.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_STACK_NAME
    name = config.get("default", {}).get("deploy", {}).get("parameters", {}).get("stack_name")
    return name if isinstance(name, str) and name else DEFAULT_STACK_NAME


def find_stack(connection: Connection, name: str) -> Stack:
    try:
        stacks = connection.call("cloudformation", "describe_stacks", StackName=name)["Stacks"]
    except AwsRefused as exc:
        if "does not exist" in str(exc):
            raise StackNotFound(
                f"stack {name!r} not found in {connection.region} (pass --stack, or --region/--profile for "
                "another account or region)"
            ) from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [key for key in ("StateMachineArn", "CaptureBucketName") if key not in outputs]
    if missing:
        raise StackNotFound(f"stack {name!r} has no output {', '.join(missing)}: it is not a mirrorcap stack")
    return Stack(
        name=name,
        state_machine_arn=outputs["StateMachineArn"],
        bucket=outputs["CaptureBucketName"],
        console_url=outputs.get("StateMachineConsole"),
    )

"""Step Functions executions: FanOut starts them, the sweeper asks whether they still run."""

from __future__ import annotations

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws


@translated_errors
def start_execution(state_machine_arn: str, name: str, document: str) -> str:
    return str(
        aws().stepfunctions.start_execution(stateMachineArn=state_machine_arn, name=name, input=document)[
            "executionArn"
        ]
    )


@translated_errors
def execution_status(execution_arn: str) -> str:
    return str(aws().stepfunctions.describe_execution(executionArn=execution_arn)["status"])

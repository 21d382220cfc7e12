"""StartExecution input validation with AWS's error code.

moto 5.2.5 (with execute_state_machine) rejects input that is not JSON, but its error reaches the
client with an empty code; AWS answers InvalidExecutionInput.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.responses import StepFunctionResponse

from mirrorcap_tools.emulation.errors import AwsError

MAX_INPUT_BYTES = 256 * 1024  # AWS: 256 KiB per execution input


def patches() -> list[tuple[type, str, Callable[..., Any]]]:
    start_execution = StepFunctionResponse.start_execution

    def validated(response: StepFunctionResponse) -> Any:
        document = response._get_param("input", if_none="{}")
        if len(document.encode()) > MAX_INPUT_BYTES:
            raise AwsError("InvalidExecutionInput", "Execution input exceeds the 256 KiB limit")
        try:
            json.loads(document)
        except ValueError as exc:
            raise AwsError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'") from None
        return start_execution(response)

    return [(StepFunctionResponse, "start_execution", validated)]

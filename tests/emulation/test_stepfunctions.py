"""Step Functions offline: StartExecution refuses input that is not JSON (emulation/stepfunctions_input.py),
and Wait states, Retry intervals and Task timeouts pass on the virtual clock (emulation/__init__.py)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import mirrorcap_tools.emulation as emulation
import pytest

PASS_ONLY = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


@pytest.fixture
def machine_arn(sfn, states_role) -> str:
    return sfn.create_state_machine(name="pass-only", definition=json.dumps(PASS_ONLY), roleArn=states_role)[
        "stateMachineArn"
    ]


# --- StartExecution input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("document", ["{not json", "{'single': 'quotes'}", '{"a": 1} trailing'])
def test_input_that_is_not_json_is_refused(sfn, machine_arn, error_code, document) -> None:
    assert error_code(sfn.start_execution, stateMachineArn=machine_arn, input=document) == "InvalidExecutionInput"


def test_json_input_starts_an_execution(sfn, machine_arn) -> None:
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, input='{"instance": "i-0123456789abcdef0"}')[
        "executionArn"
    ]

    assert sfn.describe_execution(executionArn=execution_arn)["input"] == '{"instance": "i-0123456789abcdef0"}'


# --- virtual time --------------------------------------------------------------------------------------------


def test_a_wait_state_passes_on_the_virtual_clock(aws, run_state_machine) -> None:
    definition = {
        "StartAt": "CaptureWindow",
        "States": {
            "CaptureWindow": {"Type": "Wait", "Seconds": 600, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    started = aws.clock.elapsed()

    execution = run_state_machine(definition)  # 600 s at speedup 10,000: 60 ms

    assert execution["status"] == "SUCCEEDED"
    assert aws.clock.elapsed() - started >= 600


def test_retry_intervals_pass_on_the_virtual_clock(aws, deploy_function, run_state_machine) -> None:
    def flaky(event, context):
        raise TimeoutError("the collector is not ready")

    arn = deploy_function("flaky", flaky)
    definition = {
        "StartAt": "Poll",
        "States": {
            "Poll": {
                "Type": "Task",
                "Resource": arn,
                "Retry": [{"ErrorEquals": ["TimeoutError"], "IntervalSeconds": 300, "MaxAttempts": 1}],
                "End": True,
            }
        },
    }
    started = aws.clock.elapsed()

    execution = run_state_machine(definition)

    assert (execution["status"], execution["error"]) == ("FAILED", "TimeoutError")
    assert aws.clock.elapsed() - started >= 300


def test_a_task_timeout_passes_on_the_virtual_clock(aws, deploy_function, run_state_machine, monkeypatch) -> None:
    # The allowance (real seconds for in-process work beyond the scaled timeout) is 3 s; a tenth keeps this quick.
    monkeypatch.setattr(emulation, "TASK_PROCESSING_ALLOWANCE", 0.1)
    release = threading.Event()

    def stuck(event, context):
        release.wait(5)
        return {}

    arn = deploy_function("stuck", stuck)
    definition = {
        "StartAt": "Stuck",
        "States": {"Stuck": {"Type": "Task", "Resource": arn, "TimeoutSeconds": 60, "End": True}},
    }
    try:
        execution = run_state_machine(definition)
    finally:
        release.set()

    assert (execution["status"], execution["error"]) == ("FAILED", "States.Timeout")


@pytest.mark.xfail(
    strict=True,
    reason="gap: a Timestamp Wait computes its wait from the real datetime.now() (moto's Timestamp._get_wait_seconds), "
    "not the virtual clock, so it overshoots its timestamp by the whole lead virtual time has over real time; "
    "only Seconds/SecondsPath waits are virtual (the workflow uses only those today)",
)
def test_a_timestamp_wait_ends_at_its_timestamp_on_the_virtual_clock(aws, run_state_machine) -> None:
    aws.clock.sleep(5000)  # virtual time is now at least 5,000 s ahead of real time
    until = aws.clock.now() + timedelta(seconds=600)
    definition = {
        "StartAt": "Until",
        "States": {"Until": {"Type": "Wait", "Timestamp": until.strftime("%Y-%m-%dT%H:%M:%SZ"), "End": True}},
    }

    execution = run_state_machine(definition)

    assert execution["status"] == "SUCCEEDED"
    # Polling and the interpreter add well under 2,500 virtual seconds (0.25 real s); the lead alone is 5,000.
    assert (aws.clock.now() - until).total_seconds() < 2500

"""Every step of the workflow, failing every way it can: the run ends as it should and leaves nothing.

For each Task state: an AWS error code on a call the step makes, the function raising, and the function
outliving its Task timeout (States.Timeout). Prints the matrix steps x faults -> resources left.
"""

from __future__ import annotations

import pytest
from mirrorcap_tools.offline.faults import Fault, FaultPlan
from mirrorcap_tools.offline.runner import run_input

from tests.support import event_text

# Step -> (function, an AWS call it makes and an error AWS can answer with)
STEPS = {
    "LockSource": ("LockSourceFunction", "dynamodb:PutItem=InternalServerError"),
    "LaunchCollector": ("LaunchCollectorFunction", "ec2:RunInstances=InsufficientInstanceCapacity"),
    "CheckCollectorReady": ("CheckCollectorReadyFunction", "ssm:DescribeInstanceInformation=InternalServerError"),
    "CreateMirrorSession": ("CreateMirrorSessionFunction", "ec2:CreateTrafficMirrorSession=TrafficMirrorSessionsPerInterfaceLimitExceeded"),
    "StartCapture": ("StartCaptureFunction", "ssm:SendCommand=InvalidDocument"),
    "RenewUploadGrant": ("RenewUploadGrantFunction", "sts:AssumeRole=AccessDenied"),
    "CollectCapture": ("CollectCaptureFunction", "s3:GetObject=AccessDenied"),
    "TeardownCapture": ("TeardownCaptureFunction", "ec2:DeleteTrafficMirrorSession=InternalError*2"),
    "ReportCapture": ("ReportCaptureFunction", "s3:PutObject=InternalError"),
}  # fmt: skip
# Only a capture longer than its upload grant reaches RenewUploadGrant.
TRIGGER = {"RenewUploadGrant": "triggers/manual-long.json"}
FAULTS = ("aws-error", "crash", "timeout")
MATRIX: dict[tuple[str, str], str] = {}


def _fault(step: str, kind: str) -> Fault:
    function, aws_error = STEPS[step]
    if kind == "aws-error":
        return Fault.parse(aws_error)
    # Teardown is retried: a fault that lasts is the sweeper's case (test_sweeper); here it passes.
    times = 1 if step == "TeardownCapture" else None
    return Fault("lambda", function, "crash" if kind == "crash" else "hang", times)


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("step", list(STEPS))
def test_step_failure_ends_cleanly(offline, step: str, kind: str) -> None:
    trigger = TRIGGER.get(step, "triggers/alarm.json")
    record = run_input(offline, event_text(trigger), faults=FaultPlan([_fault(step, kind)]))

    MATRIX[step, kind] = f"{record.status:<9} {record.error or '':<24} left {record.resources_left}"
    states = record.executions[0].states
    assert record.resources_left == 0, [r for r in record.resources if r["exists_at_end"]]
    if step in ("TeardownCapture", "ReportCapture"):
        # Teardown retries through transient faults; a failed report does not fail the capture.
        assert record.status == "SUCCEEDED", record.message
        return
    assert record.status == "FAILED"
    assert states[-1] in ("CaptureFailed", "CaptureStepFailed") and "TeardownCapture" in states
    expected_error = {"crash": "InjectedCrash", "timeout": "CaptureStepFailed"}.get(kind)
    if expected_error:
        assert record.error == expected_error
    if kind == "timeout":
        assert "States.Timeout" in record.cause


def test_print_matrix() -> None:
    """Runs last in this module (pytest keeps file order): the steps x faults table."""
    if not MATRIX:
        pytest.skip("run with the matrix tests to print it")
    print("\nfault matrix: step x fault -> outcome, resources left")
    for step in STEPS:
        for kind in FAULTS:
            print(f"  {step:<20} {kind:<10} {MATRIX.get((step, kind), 'not run')}")
    assert all(cell.endswith("left 0") for cell in MATRIX.values())

"""Failures after the first resource exists end in teardown, and nothing is left behind."""

from __future__ import annotations

import pytest
from mirrorcap_tools.offline.faults import Fault, FaultPlan
from mirrorcap_tools.offline.runner import run_input

from tests.support import event_text


def _assert_torn_down(record, error: str) -> None:
    states = record.executions[0].states
    assert record.status == "FAILED"
    assert record.error == error, record.message
    assert "PrepareTeardown" in states and "TeardownCapture" in states
    assert states[-1] == "CaptureFailed"
    assert record.resources, "the failure should come after resources exist"
    assert record.resources_left == 0, record.resources


@pytest.mark.parametrize(
    "offline",
    [{"registration_seconds": None, "parameters": {"ReadinessTimeoutSeconds": "120"}}],
    indirect=True,
)
def test_collector_never_ready(offline) -> None:
    record = run_input(offline, event_text("triggers/alarm.json"))

    _assert_torn_down(record, "CollectorNotReady")
    assert "SSM agent not registered" in record.message
    assert "CreateMirrorSession" not in record.executions[0].states


@pytest.mark.parametrize(
    "code",
    ["TrafficMirrorSourcesPerTargetLimitExceeded", "TrafficMirrorSessionsPerInterfaceLimitExceeded",
     "NetworkInterfaceNotSupported"],
)  # fmt: skip
def test_mirror_session_refused_by_aws(offline, code: str) -> None:
    faults = FaultPlan([Fault("ec2", "CreateTrafficMirrorSession", code)])

    record = run_input(offline, event_text("triggers/alarm.json"), faults=faults)

    _assert_torn_down(record, "MirrorSetupFailed")
    assert code in record.message
    kinds = {r["type"] for r in record.resources}
    assert {"traffic-mirror-target", "traffic-mirror-filter", "instance", "security-group"} <= kinds


@pytest.mark.parametrize("offline", [{"command_outcome": "Failed"}], indirect=True)
def test_capture_command_fails(offline) -> None:
    record = run_input(offline, event_text("triggers/alarm.json"))

    _assert_torn_down(record, "CaptureCommandFailed")
    assert "ended Failed" in record.message
    assert "No such device" in record.message


def test_throttling_is_retried_not_fatal(offline) -> None:
    faults = FaultPlan([Fault("ec2", "CreateTrafficMirrorFilter", "RequestLimitExceeded", times=4)])

    record = run_input(offline, event_text("triggers/alarm.json"), faults=faults)

    assert record.status == "SUCCEEDED", record.message
    # Injected before the SDK sends, so each one fails the Lambda and the state machine retries it.
    assert len(faults.injected) == 4
    throttled = [i for i in offline.aws.lambdas.invocations if i.error_type == "AwsThrottled"]
    assert len(throttled) == 4
    assert record.resources_left == 0


def test_teardown_survives_a_transient_failure(offline) -> None:
    faults = FaultPlan([Fault("ec2", "DeleteTrafficMirrorSession", "InternalError", times=1)])

    record = run_input(offline, event_text("triggers/alarm.json"), faults=faults)

    assert record.status == "SUCCEEDED", record.message
    assert faults.injected == ["DeleteTrafficMirrorSession=InternalError"]
    assert record.resources_left == 0


@pytest.mark.parametrize("offline", [{"command_outcome": "disk_limit"}], indirect=True)
def test_a_capture_stopped_by_the_disk_guard_still_delivers(offline) -> None:
    record = run_input(offline, event_text("triggers/alarm.json"))

    assert record.status == "SUCCEEDED", record.message
    capture = record.executions[0]
    assert capture.output["artifacts"]["status"] == "disk_limit"
    assert "summary_key" in capture.output["report"]
    assert record.resources_left == 0

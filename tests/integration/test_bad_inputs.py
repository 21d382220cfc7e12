"""Bad inputs end FAILED with an error naming the problem, and nothing is created."""

from __future__ import annotations

import pytest
from mirrorcap_tools.offline.runner import run_input

from tests.support import event_text

EXPECTED = {
    "manual-no-instance.json": ("InvalidCaptureRequest", "instance_id: Field required"),
    "manual-unknown-instance.json": ("InstanceNotFound", "instance_id: i-0000000000000dead does not exist"),
    "composite-alarm.json": ("CompositeAlarmNotSupported", "is a composite alarm"),
    "alarm-without-instance.json": ("InvalidCaptureRequest", "InstanceId: no metric of alarm"),
    "manual-duration-zero.json": ("InvalidCaptureRequest", "duration_seconds: Input should be greater than or equal to 10"),
    "manual-duration-over-max.json": ("InvalidCaptureRequest", "duration_seconds: 86400 is over the maximum of 3600"),
    "manual-port-out-of-range.json": ("InvalidCaptureRequest", "filter.ports.0: 70000 is not a port"),
    "manual-unsupported-instance-type.json": ("UnsupportedInstance", "t2.micro is in the T2 family"),
    "manual-too-many-filter-rules.json": ("InvalidCaptureRequest", "needs 12 rules"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_fails_before_anything_exists(offline, name: str) -> None:
    error, message = EXPECTED[name]

    record = run_input(offline, event_text(f"invalid/{name}"), input_file=name)

    assert record.status == "FAILED"
    assert record.error == error
    assert message in record.message
    assert record.executions[0].states == ["ResolveRequest"]
    assert record.resources == []
    assert record.s3_objects == []


def test_every_invalid_sample_has_an_expectation() -> None:
    from tests.support import EVENTS

    assert sorted(p.name for p in (EVENTS / "invalid").glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize(
    ("document", "error", "message"),
    [
        ("not json at all", "InvalidExecutionInput", ""),
        ('{"instance_id": "i-0123456789abcdef0", "duration_secs": 60}', "InvalidCaptureRequest",
         "duration_secs: Extra inputs are not permitted"),
        ('{"instance_id": "i-0123456789abcdef0; rm -rf /"}', "InvalidCaptureRequest", "instance_id: String should match"),
        ('{"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "time": "2026-11-24T16:00:00Z", '
         '"detail": {"alarmName": "mirrorcap-x", "state": {"value": "OK"}}}', "InvalidCaptureRequest",
         "detail.state.value: alarm 'mirrorcap-x' changed to OK"),
        ('{"sample": {"tag_key": "nobody", "tag_values": ["true"]}}', "NoInstancesMatched", "no running instance has tag"),
    ],
)  # fmt: skip
def test_malformed_documents(offline, document: str, error: str, message: str) -> None:
    record = run_input(offline, document)

    assert record.status == "FAILED"
    assert record.error == error
    assert message in (record.message or "")
    assert record.resources == []

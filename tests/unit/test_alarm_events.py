"""Reading the instance out of a CloudWatch alarm's EventBridge event."""

from __future__ import annotations

import copy

import pytest
from mirrorcap.errors import CompositeAlarmNotSupported, InvalidCaptureRequest
from mirrorcap.steps.resolve_request import alarm_instance_ids

from tests.support import event

ALARM = event("triggers/alarm.json")["detail"]
METRIC_MATH = event("triggers/alarm-metric-math.json")["detail"]


def test_single_metric_alarm() -> None:
    assert alarm_instance_ids(ALARM["alarmName"], ALARM["configuration"]) == ["i-0123456789abcdef0"]


def test_metric_math_alarm_skips_expressions_and_dedupes() -> None:
    assert alarm_instance_ids(METRIC_MATH["alarmName"], METRIC_MATH["configuration"]) == ["i-0123456789abcdef0"]


def test_several_instances_in_order() -> None:
    configuration = copy.deepcopy(METRIC_MATH["configuration"])
    configuration["metrics"][2]["metricStat"]["metric"]["dimensions"]["InstanceId"] = "i-0fedcba9876543210"

    assert alarm_instance_ids("x", configuration) == ["i-0123456789abcdef0", "i-0fedcba9876543210"]


def test_composite_alarm_is_refused_by_name() -> None:
    composite = event("invalid/composite-alarm.json")["detail"]

    with pytest.raises(CompositeAlarmNotSupported, match="composite alarm"):
        alarm_instance_ids(composite["alarmName"], composite["configuration"])


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({}, "has no metrics"),
        ({"metrics": "m1"}, "expected a list"),
        ({"metrics": [{"id": "e1", "expression": "m1 * 2"}]}, "InstanceId dimension"),
        ({"metrics": [{"metricStat": {"metric": {"dimensions": [{"name": "InstanceId"}]}}}]}, "expected a map"),
        ({"metrics": [{"metricStat": {"metric": {"dimensions": {"InstanceId": "web-1"}}}}]}, "String should match"),
    ],
)
def test_alarms_that_name_no_instance(configuration: dict, message: str) -> None:
    with pytest.raises(InvalidCaptureRequest, match=message):
        alarm_instance_ids("mirrorcap-x", configuration)

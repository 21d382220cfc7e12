"""ClientToken idempotency (emulation/ec2_mirroring.py): a retried Create with the same token and the same
parameters returns the first call's resource and creates no twin; the same token with other parameters
fails IdempotentParameterMismatch. moto 5.2.5 ignores ClientToken (see test_moto_ground.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

TOKEN = "capture-0123-step-7"


def _create_filter(mirror, description: str) -> str:
    return mirror.ec2.create_traffic_mirror_filter(Description=description, ClientToken=TOKEN)["TrafficMirrorFilter"][
        "TrafficMirrorFilterId"
    ]


def _count_filters(mirror) -> int:
    return len(mirror.ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"])


def _create_target(mirror, description: str) -> str:
    # The collector's interface already is the fixture's target (and one interface takes one target).
    return mirror.ec2.create_traffic_mirror_target(
        NetworkInterfaceId=mirror.source.eni_id, Description=description, ClientToken=TOKEN
    )["TrafficMirrorTarget"]["TrafficMirrorTargetId"]


def _count_targets(mirror) -> int:
    return len(mirror.ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"])


def _create_session(mirror, description: str) -> str:
    return mirror.session(1, Description=description, ClientToken=TOKEN)["TrafficMirrorSessionId"]


def _count_sessions(mirror) -> int:
    return len(mirror.ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])


def _create_rule(mirror, description: str) -> str:
    return mirror.rule(100, Description=description, ClientToken=TOKEN)["TrafficMirrorFilterRuleId"]


def _count_rules(mirror) -> int:
    (described,) = mirror.ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[mirror.filter_id])[
        "TrafficMirrorFilters"
    ]
    return len(described["IngressFilterRules"]) + len(described["EgressFilterRules"])


def _run_instance(mirror, description: str) -> str:
    (instance,) = mirror.ec2.run_instances(
        ImageId=mirror.network.image_id,
        InstanceType="m5.large",
        SubnetId=mirror.network.subnet_id,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": description}]}],
        ClientToken=TOKEN,
    )["Instances"]
    return instance["InstanceId"]


def _count_instances(mirror) -> int:
    return sum(len(r["Instances"]) for r in mirror.ec2.describe_instances()["Reservations"])


# The mirror fixture's target and filter were made without this token, so they only add to the counts.
CREATES: dict[str, tuple[Callable[[Any, str], str], Callable[[Any], int]]] = {
    "filter": (_create_filter, _count_filters),
    "target": (_create_target, _count_targets),
    "session": (_create_session, _count_sessions),
    "filter-rule": (_create_rule, _count_rules),
    "run-instances": (_run_instance, _count_instances),
}


@pytest.mark.parametrize("resource", CREATES)
def test_the_same_token_and_parameters_return_the_same_resource(mirror, resource) -> None:
    create, count = CREATES[resource]
    first = create(mirror, "the capture")
    before_retry = count(mirror)

    retried = create(mirror, "the capture")

    assert retried == first
    assert count(mirror) == before_retry


@pytest.mark.parametrize("resource", CREATES)
def test_the_same_token_with_other_parameters_is_a_mismatch(mirror, error_code, resource) -> None:
    create, count = CREATES[resource]
    create(mirror, "the capture")
    before_retry = count(mirror)

    assert error_code(create, mirror=mirror, description="another capture") == "IdempotentParameterMismatch"
    assert count(mirror) == before_retry


def test_a_different_token_creates_another_resource(mirror) -> None:
    first = mirror.ec2.create_traffic_mirror_filter(ClientToken="capture-0123-step-7")["TrafficMirrorFilter"]
    second = mirror.ec2.create_traffic_mirror_filter(ClientToken="capture-0456-step-7")["TrafficMirrorFilter"]

    assert first["TrafficMirrorFilterId"] != second["TrafficMirrorFilterId"]


def test_a_retried_session_does_not_count_against_the_interface_quota(mirror) -> None:
    for number in (1, 2, 3):
        mirror.session(number, ClientToken=f"capture-{number}")

    # The third create, retried after a lost response, is still the third session, not a fourth.
    assert mirror.session(3, ClientToken="capture-3")["SessionNumber"] == 3

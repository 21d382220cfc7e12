"""Traffic Mirroring as AWS enforces it (emulation/ec2_mirroring.py): rules, network services, deletes,
quotas, ranges and the checks made when a session is created, each with AWS's error code."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from mirrorcap_tools.emulation import ec2_mirroring
from moto.ec2.models.instance_types import INSTANCE_TYPES

from tests.support.source_instance_types import SOURCE_TYPES

# --- filter rules ------------------------------------------------------------------------------------------


def _described_filter(ec2, filter_id: str) -> dict:
    (described,) = ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[filter_id])["TrafficMirrorFilters"]
    return described


def test_a_new_filter_has_no_rules_and_no_network_services(mirror) -> None:
    described = _described_filter(mirror.ec2, mirror.filter_id)

    assert described["IngressFilterRules"] == []
    assert described["EgressFilterRules"] == []
    assert described["NetworkServices"] == []


def test_created_rules_are_described_under_their_direction(mirror) -> None:
    ingress = mirror.rule(
        100,
        TrafficDirection="ingress",
        Protocol=17,
        DestinationPortRange={"FromPort": 4789, "ToPort": 4789},
        SourceCidrBlock="10.0.0.0/16",
        Description="vxlan in",
    )
    egress = mirror.rule(
        100, TrafficDirection="egress", RuleAction="reject", DestinationCidrBlock="::/0", SourceCidrBlock="::/0"
    )

    described = _described_filter(mirror.ec2, mirror.filter_id)

    assert described["IngressFilterRules"] == [ingress]
    assert described["EgressFilterRules"] == [egress]
    assert ingress["TrafficMirrorFilterRuleId"] != egress["TrafficMirrorFilterRuleId"]
    assert ingress["TrafficMirrorFilterId"] == mirror.filter_id
    assert (ingress["RuleNumber"], ingress["RuleAction"], ingress["Protocol"]) == (100, "accept", 17)
    assert ingress["DestinationPortRange"] == {"FromPort": 4789, "ToPort": 4789}
    assert (ingress["SourceCidrBlock"], ingress["DestinationCidrBlock"]) == ("10.0.0.0/16", "0.0.0.0/0")
    assert ingress["Description"] == "vxlan in"


def test_the_eleventh_rule_of_a_filter_is_refused(mirror, error_code) -> None:
    # The quota is 10 rules per filter, both directions together.
    for number in range(1, 6):
        mirror.rule(number, TrafficDirection="ingress")
        mirror.rule(number, TrafficDirection="egress")

    assert error_code(mirror.rule, rule_number=6) == "TrafficMirrorFilterRuleLimitExceeded"


def test_a_deleted_rule_frees_its_place_in_the_quota(mirror) -> None:
    rules = [mirror.rule(number) for number in range(1, 11)]

    mirror.ec2.delete_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=rules[0]["TrafficMirrorFilterRuleId"])
    mirror.rule(11)

    assert len(_described_filter(mirror.ec2, mirror.filter_id)["IngressFilterRules"]) == 10


def test_a_rule_number_is_taken_once_per_direction(mirror, error_code) -> None:
    mirror.rule(100, TrafficDirection="ingress")

    assert (
        error_code(mirror.rule, rule_number=100, TrafficDirection="ingress") == "TrafficMirrorFilterRuleAlreadyExists"
    )
    mirror.rule(100, TrafficDirection="egress")  # the same number in the other direction is another rule


@pytest.mark.parametrize("rule_number", [0, 32767])
def test_a_rule_number_outside_1_to_32766_is_refused(mirror, error_code, rule_number) -> None:
    assert error_code(mirror.rule, rule_number=rule_number) == "InvalidParameterValue"


@pytest.mark.parametrize("rule_number", [1, 32766])
def test_rule_numbers_at_the_bounds_are_accepted(mirror, rule_number) -> None:
    assert mirror.rule(rule_number)["RuleNumber"] == rule_number


@pytest.mark.parametrize("protocol", [256, 1000])
def test_a_protocol_number_above_255_is_refused(mirror, error_code, protocol) -> None:
    assert error_code(mirror.rule, Protocol=protocol) == "InvalidParameterValue"


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"TrafficDirection": "both"}, id="direction"),
        pytest.param({"RuleAction": "allow"}, id="action"),
    ],
)
def test_an_unknown_direction_or_action_is_refused(mirror, error_code, arguments) -> None:
    assert error_code(mirror.rule, **arguments) == "InvalidParameterValue"


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"Protocol": 1, "DestinationPortRange": {"FromPort": 0, "ToPort": 0}}, id="icmp-with-ports"),
        pytest.param({"DestinationPortRange": {"FromPort": 53, "ToPort": 53}}, id="ports-without-protocol"),
        pytest.param({"Protocol": 6, "SourcePortRange": {"FromPort": 443, "ToPort": 80}}, id="from-above-to"),
        pytest.param({"Protocol": 17, "DestinationPortRange": {"FromPort": 1, "ToPort": 65536}}, id="beyond-65535"),
    ],
)
def test_an_invalid_port_range_is_refused(mirror, error_code, arguments) -> None:
    assert error_code(mirror.rule, **arguments) == "InvalidParameterValue"


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"SourceCidrBlock": "10.0.0.0/33"}, id="prefix-too-long"),
        pytest.param({"DestinationCidrBlock": "not-a-cidr"}, id="not-an-address"),
        pytest.param({"DestinationCidrBlock": "300.0.0.0/8"}, id="octet-too-big"),
    ],
)
def test_an_invalid_cidr_block_is_refused(mirror, error_code, arguments) -> None:
    assert error_code(mirror.rule, **arguments) == "InvalidParameterValue"


@pytest.mark.parametrize("missing", ["SourceCidrBlock", "DestinationCidrBlock", "RuleNumber"])
def test_a_rule_without_a_required_parameter_is_refused(mirror, unvalidated_ec2, error_code, missing) -> None:
    arguments = {
        "TrafficMirrorFilterId": mirror.filter_id,
        "TrafficDirection": "ingress",
        "RuleNumber": 100,
        "RuleAction": "accept",
        "SourceCidrBlock": "0.0.0.0/0",
        "DestinationCidrBlock": "0.0.0.0/0",
    }
    del arguments[missing]

    assert error_code(unvalidated_ec2.create_traffic_mirror_filter_rule, **arguments) == "MissingParameter"


def test_a_rule_for_an_unknown_filter_is_refused(mirror, error_code) -> None:
    assert (
        error_code(mirror.rule, TrafficMirrorFilterId="tmf-0123456789abcdef0")
        == "InvalidTrafficMirrorFilterId.NotFound"
    )


def test_deleting_an_unknown_rule_is_refused(mirror, error_code) -> None:
    assert (
        error_code(mirror.ec2.delete_traffic_mirror_filter_rule, TrafficMirrorFilterRuleId="tmfr-0123456789abcdef0")
        == "InvalidTrafficMirrorFilterRuleId.NotFound"
    )


# --- network services ---------------------------------------------------------------------------------------


def test_amazon_dns_can_be_added_to_a_filter(mirror) -> None:
    modified = mirror.ec2.modify_traffic_mirror_filter_network_services(
        TrafficMirrorFilterId=mirror.filter_id, AddNetworkServices=["amazon-dns"]
    )["TrafficMirrorFilter"]

    assert modified["NetworkServices"] == ["amazon-dns"]
    assert _described_filter(mirror.ec2, mirror.filter_id)["NetworkServices"] == ["amazon-dns"]


def test_amazon_dns_can_be_removed_from_a_filter(mirror) -> None:
    mirror.ec2.modify_traffic_mirror_filter_network_services(
        TrafficMirrorFilterId=mirror.filter_id, AddNetworkServices=["amazon-dns"]
    )
    modified = mirror.ec2.modify_traffic_mirror_filter_network_services(
        TrafficMirrorFilterId=mirror.filter_id, RemoveNetworkServices=["amazon-dns"]
    )["TrafficMirrorFilter"]

    assert modified["NetworkServices"] == []
    assert _described_filter(mirror.ec2, mirror.filter_id)["NetworkServices"] == []


def test_an_unknown_network_service_is_refused(mirror, error_code) -> None:
    assert (
        error_code(
            mirror.ec2.modify_traffic_mirror_filter_network_services,
            TrafficMirrorFilterId=mirror.filter_id,
            AddNetworkServices=["ntp"],
        )
        == "InvalidParameterValue"
    )


def test_network_services_of_an_unknown_filter_are_refused(mirror, error_code) -> None:
    assert (
        error_code(
            mirror.ec2.modify_traffic_mirror_filter_network_services,
            TrafficMirrorFilterId="tmf-0123456789abcdef0",
            AddNetworkServices=["amazon-dns"],
        )
        == "InvalidTrafficMirrorFilterId.NotFound"
    )


# --- deletes -------------------------------------------------------------------------------------------------


def test_a_filter_in_use_by_a_session_cannot_be_deleted(mirror, error_code) -> None:
    mirror.session()

    assert (
        error_code(mirror.ec2.delete_traffic_mirror_filter, TrafficMirrorFilterId=mirror.filter_id)
        == "TrafficMirrorFilterInUse"
    )


def test_a_filter_can_be_deleted_once_its_session_is_gone(mirror) -> None:
    session_id = mirror.session()["TrafficMirrorSessionId"]

    mirror.ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session_id)
    mirror.ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=mirror.filter_id)

    remaining = mirror.ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"]
    assert mirror.filter_id not in [f["TrafficMirrorFilterId"] for f in remaining]


def test_a_target_in_use_by_a_session_cannot_be_deleted(mirror, error_code) -> None:
    mirror.session()

    assert (
        error_code(mirror.ec2.delete_traffic_mirror_target, TrafficMirrorTargetId=mirror.target_id)
        == "TrafficMirrorTargetInUseException"
    )


def test_a_target_can_be_deleted_once_its_session_is_gone(mirror) -> None:
    session_id = mirror.session()["TrafficMirrorSessionId"]

    mirror.ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session_id)
    mirror.ec2.delete_traffic_mirror_target(TrafficMirrorTargetId=mirror.target_id)

    remaining = mirror.ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"]
    assert mirror.target_id not in [t["TrafficMirrorTargetId"] for t in remaining]


@pytest.mark.parametrize(
    ("operation", "parameter", "unknown_id", "code"),
    [
        (
            "delete_traffic_mirror_session",
            "TrafficMirrorSessionId",
            "tms-0123456789abcdef0",
            "InvalidTrafficMirrorSessionId.NotFound",
        ),
        (
            "delete_traffic_mirror_filter",
            "TrafficMirrorFilterId",
            "tmf-0123456789abcdef0",
            "InvalidTrafficMirrorFilterId.NotFound",
        ),
        (
            "delete_traffic_mirror_target",
            "TrafficMirrorTargetId",
            "tmt-0123456789abcdef0",
            "InvalidTrafficMirrorTargetId.NotFound",
        ),
    ],
)
def test_deleting_an_unknown_resource_is_not_found(ec2, error_code, operation, parameter, unknown_id, code) -> None:
    assert error_code(getattr(ec2, operation), **{parameter: unknown_id}) == code


def test_deleting_a_session_twice_is_not_found_the_second_time(mirror, error_code) -> None:
    session_id = mirror.session()["TrafficMirrorSessionId"]
    mirror.ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session_id)

    assert (
        error_code(mirror.ec2.delete_traffic_mirror_session, TrafficMirrorSessionId=session_id)
        == "InvalidTrafficMirrorSessionId.NotFound"
    )


# --- sessions -----------------------------------------------------------------------------------------------


def test_a_session_is_created_with_the_numbers_asked_for(mirror) -> None:
    session = mirror.session(7, VirtualNetworkId=4242, PacketLength=128)

    assert session["NetworkInterfaceId"] == mirror.source.eni_id
    assert (session["TrafficMirrorTargetId"], session["TrafficMirrorFilterId"]) == (mirror.target_id, mirror.filter_id)
    assert (session["SessionNumber"], session["VirtualNetworkId"], session["PacketLength"]) == (7, 4242, 128)


def test_a_fourth_session_on_one_interface_is_refused(mirror, error_code) -> None:
    for number in (1, 2, 3):
        mirror.session(number)

    assert error_code(mirror.session, session_number=4) == "TrafficMirrorSessionsPerInterfaceLimitExceeded"


def test_an_eleventh_source_on_one_target_is_refused(mirror, ec2, network, boot, error_code) -> None:
    reservation = ec2.run_instances(
        ImageId=network.image_id, InstanceType="m5.large", MinCount=10, MaxCount=10, SubnetId=network.subnet_id
    )
    boot()
    sources = [instance["NetworkInterfaces"][0]["NetworkInterfaceId"] for instance in reservation["Instances"]]
    for eni_id in sources:
        mirror.session(1, NetworkInterfaceId=eni_id)

    assert (
        error_code(mirror.session, NetworkInterfaceId=mirror.source.eni_id)
        == "TrafficMirrorSourcesPerTargetLimitExceeded"
    )
    # A source already mirrored to the target is not a new source.
    mirror.session(2, NetworkInterfaceId=sources[0])


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"session_number": 0}, id="session-number-0"),
        pytest.param({"session_number": 32767}, id="session-number-32767"),
        pytest.param({"VirtualNetworkId": 0}, id="vni-0"),
        pytest.param({"VirtualNetworkId": 16_777_216}, id="vni-2^24"),
        pytest.param({"PacketLength": 0}, id="packet-length-0"),
        pytest.param({"PacketLength": 8501}, id="packet-length-8501"),
    ],
)
def test_session_numbers_out_of_range_are_refused(mirror, error_code, arguments) -> None:
    assert error_code(mirror.session, **arguments) == "InvalidParameterValue"


def test_session_numbers_at_their_upper_bounds_are_accepted(mirror) -> None:
    session = mirror.session(32766, VirtualNetworkId=16_777_215, PacketLength=8500)

    assert (session["SessionNumber"], session["VirtualNetworkId"], session["PacketLength"]) == (32766, 16_777_215, 8500)


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"TrafficMirrorTargetId": "tmt-0123456789abcdef0"}, "InvalidTrafficMirrorTargetId.NotFound"),
        ({"TrafficMirrorFilterId": "tmf-0123456789abcdef0"}, "InvalidTrafficMirrorFilterId.NotFound"),
        ({"NetworkInterfaceId": "eni-0123456789abcdef0"}, "InvalidNetworkInterfaceID.NotFound"),
    ],
    ids=["target", "filter", "source"],
)
def test_a_session_on_an_unknown_resource_is_not_found(mirror, error_code, arguments, code) -> None:
    assert error_code(mirror.session, **arguments) == code


def test_moto_describes_the_table_s_instance_types_as_the_table_does() -> None:
    # The emulation feeds the preflight's rule with moto's copy of DescribeInstanceTypes: if a moto upgrade
    # changed a type's hypervisor or bare-metal flag, the emulation would answer differently from the table.
    described = {
        s.instance_type: (
            INSTANCE_TYPES[s.instance_type].get("Hypervisor"),
            bool(INSTANCE_TYPES[s.instance_type].get("BareMetal")),
            "arm64" in INSTANCE_TYPES[s.instance_type]["ProcessorInfo"]["SupportedArchitectures"],
        )
        for s in SOURCE_TYPES
    }

    assert described == {s.instance_type: (s.hypervisor, s.bare_metal, s.arm) for s in SOURCE_TYPES}


def test_a_session_from_each_instance_type_is_refused_exactly_when_the_preflight_refuses_it(
    mirror, launch, boot, error_code
) -> None:
    """Every type of the shared table as a source: AWS's answer to CreateTrafficMirrorSession, as emulated."""
    sources = {s.instance_type: launch(s.instance_type, arm=s.arm) for s in SOURCE_TYPES}
    boot()

    answers = {}
    for instance_type, source in sources.items():
        try:
            session = mirror.session(NetworkInterfaceId=source.eni_id)
        except ClientError as exc:
            answers[instance_type] = exc.response["Error"]["Code"]
        else:
            answers[instance_type] = "accepted"
            # One target takes 10 sources: free the place for the next type.
            mirror.ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session["TrafficMirrorSessionId"])

    assert answers == {
        s.instance_type: "accepted" if s.supported else "NetworkInterfaceNotSupported" for s in SOURCE_TYPES
    }


@pytest.mark.offline_aws(boot_seconds=5000)  # half a real second of `pending`
def test_a_target_on_an_instance_still_pending_is_refused(ec2, launch, error_code) -> None:
    collector = launch()

    assert error_code(ec2.create_traffic_mirror_target, NetworkInterfaceId=collector.eni_id) == "IncorrectInstanceState"


def test_a_session_to_a_target_whose_instance_is_no_longer_running_is_refused(mirror, error_code) -> None:
    mirror.ec2.stop_instances(InstanceIds=[mirror.collector.instance_id])

    assert error_code(mirror.session) == "IncorrectInstanceState"


# --- one interface is a source or a target, never both -------------------------------------------------------


def test_a_target_interface_cannot_be_a_source(mirror, error_code) -> None:
    assert (
        error_code(mirror.session, NetworkInterfaceId=mirror.collector.eni_id) == "InterfaceInUseByTrafficMirrorTarget"
    )
    assert mirror.ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []


def test_a_source_interface_cannot_be_a_target(mirror, error_code) -> None:
    mirror.session()

    assert (
        error_code(mirror.ec2.create_traffic_mirror_target, NetworkInterfaceId=mirror.source.eni_id)
        == "InterfaceInUseByTrafficMirrorSession"
    )


def test_an_interface_cannot_be_the_target_twice(mirror, error_code) -> None:
    assert (
        error_code(mirror.ec2.create_traffic_mirror_target, NetworkInterfaceId=mirror.collector.eni_id)
        == "InterfaceInUseByTrafficMirrorTarget"
    )


# --- account quotas -------------------------------------------------------------------------------------------


def test_the_account_quota_of_filters_has_its_own_error_code(mirror, error_code, monkeypatch) -> None:
    # 10,000 filters take minutes to create; a quota of one filter (the fixture's) is the same rule.
    monkeypatch.setattr(ec2_mirroring, "RESOURCES_PER_ACCOUNT", 1)

    assert error_code(mirror.ec2.create_traffic_mirror_filter) == "TrafficMirrorFilterLimitExceeded"


# --- defaults ------------------------------------------------------------------------------------------------------


def test_a_session_without_a_virtual_network_id_is_given_one(mirror) -> None:
    session_id = mirror.session()["TrafficMirrorSessionId"]

    (described,) = mirror.ec2.describe_traffic_mirror_sessions(TrafficMirrorSessionIds=[session_id])[
        "TrafficMirrorSessions"
    ]

    assert 1 <= described.get("VirtualNetworkId", 0) <= 16_777_215

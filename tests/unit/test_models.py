"""Trigger documents and the capture filter: what is accepted, what is refused, and the rules AWS gets."""

from __future__ import annotations

import pytest
from mirrorcap.models import CaptureFilter, ManualRequest
from pydantic import ValidationError

REQUEST = ("tmf-0123456789abcdef0", "mirrorcap test", "token")  # filter id, description, client token


def test_default_filter_mirrors_everything_both_ways() -> None:
    rules = CaptureFilter().rules()

    assert [(r.direction, r.protocol, r.source_cidr, r.destination_cidr) for r in rules] == [
        ("ingress", None, "0.0.0.0/0", "0.0.0.0/0"),
        ("egress", None, "0.0.0.0/0", "0.0.0.0/0"),
    ]


def test_local_port_is_destination_inbound_and_source_outbound() -> None:
    ingress, egress = CaptureFilter(protocol="tcp", ports=[443]).rules()

    assert ingress.to_aws(*REQUEST)["DestinationPortRange"] == {"FromPort": 443, "ToPort": 443}
    assert "SourcePortRange" not in ingress.to_aws(*REQUEST)
    assert egress.to_aws(*REQUEST)["SourcePortRange"] == {"FromPort": 443, "ToPort": 443}
    assert ingress.to_aws(*REQUEST)["Protocol"] == 6


def test_remote_cidr_and_port_for_an_outbound_dependency() -> None:
    (egress,) = CaptureFilter(
        directions=["egress"], protocol="tcp", remote_ports=["5432"], cidrs=["10.1.0.0/16"]
    ).rules()

    assert egress.to_aws(*REQUEST) == {
        "TrafficMirrorFilterId": "tmf-0123456789abcdef0",
        "Description": "mirrorcap test",
        "ClientToken": "token",
        "TrafficDirection": "egress",
        "RuleNumber": 10,
        "RuleAction": "accept",
        "SourceCidrBlock": "0.0.0.0/0",
        "DestinationCidrBlock": "10.1.0.0/16",
        "Protocol": 6,
        "DestinationPortRange": {"FromPort": 5432, "ToPort": 5432},
    }


def test_ipv6_peer_pairs_with_ipv6_any() -> None:
    (ingress,) = CaptureFilter(directions=["ingress"], cidrs=["2001:db8::/32"]).rules()

    assert (ingress.source_cidr, ingress.destination_cidr) == ("2001:db8::/32", "::/0")


def test_rule_numbers_are_unique_per_direction() -> None:
    rules = CaptureFilter(protocol="udp", ports=[53, "5000-5010"], cidrs=["10.0.0.0/8"]).rules()

    for direction in ("ingress", "egress"):
        numbers = [r.rule_number for r in rules if r.direction == direction]
        assert len(numbers) == len(set(numbers)) == 2
        assert all(1 <= n <= 32766 for n in numbers)


@pytest.mark.parametrize(
    ("filter_document", "message"),
    [
        ({"ports": [443]}, "ports need protocol tcp or udp"),
        ({"protocol": "tcp", "ports": [0]}, "0 is not a port"),
        ({"protocol": "tcp", "ports": [65536]}, "65536 is not a port"),
        ({"protocol": "tcp", "ports": ["9000-8000"]}, "runs backwards"),
        ({"protocol": "tcp", "ports": ["http"]}, "'http' is not a port"),
        ({"protocol": "tcp", "ports": [True]}, "a port is a number"),
        ({"cidrs": ["10.0.0.1/8"]}, "is not a CIDR block"),
        ({"cidrs": ["not-a-cidr"]}, "is not a CIDR block"),
        ({"directions": []}, "at least 1 item"),
        ({"directions": ["ingress", "ingress"]}, "lists a direction twice"),
        ({"directions": ["sideways"]}, "Input should be 'ingress' or 'egress'"),
        ({"protocol": "sctp"}, "Input should be"),
        ({"protocol": "tcp", "ports": [1, 2, 3], "cidrs": ["10.0.0.0/8", "10.1.0.0/16"]}, "needs 12 rules"),
        ({"bpf": "port 80"}, "Extra inputs are not permitted"),
    ],
)
def test_filters_aws_would_reject_are_refused_with_the_reason(filter_document: dict, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CaptureFilter.model_validate(filter_document)
    assert message in str(caught.value)


def test_exactly_ten_rules_is_allowed() -> None:
    rules = CaptureFilter(protocol="tcp", ports=[1, 2, 3, 4, 5]).rules()

    assert len(rules) == 10


@pytest.mark.parametrize("instance_id", ["i-0123456789abcdef0", "i-01234567"], ids=["long", "short"])
def test_instance_ids_in_both_formats(instance_id: str) -> None:
    assert ManualRequest(instance_id=instance_id).instance_id == instance_id


@pytest.mark.parametrize(
    "instance_id",
    [
        "",
        "i-",
        "i-XYZ",
        "i-0123456789abcdef0\nreboot",
        "i-0123456789abcdef0 ; reboot",
        "$(reboot)",
        "i-0123456789abcdef00",
    ],
)
def test_instance_ids_are_checked_strictly(instance_id: str) -> None:
    with pytest.raises(ValidationError, match="instance_id"):
        ManualRequest.model_validate({"instance_id": instance_id})


def test_packet_length_bounds() -> None:
    assert ManualRequest(instance_id="i-01234567", packet_length=8500).packet_length == 8500
    with pytest.raises(ValidationError, match="packet_length"):
        ManualRequest(instance_id="i-01234567", packet_length=8501)

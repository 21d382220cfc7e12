"""VPC Traffic Mirroring: targets, filters and their rules, sessions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.type_defs import (
        CreateTrafficMirrorFilterRuleRequestTypeDef,
        CreateTrafficMirrorSessionRequestTypeDef,
        FilterTypeDef,
        TagSpecificationTypeDef,
        TrafficMirrorFilterTypeDef,
        TrafficMirrorSessionTypeDef,
        TrafficMirrorTargetTypeDef,
    )


def _by_interface(interface_id: str) -> list[FilterTypeDef]:
    return [{"Name": "network-interface-id", "Values": [interface_id]}]


# EC2 documents no `tag:` filters for the Traffic Mirroring Describe calls, so listings are whole and the
# caller matches the tags each item carries (mirrorcap.tagged).
@translated_errors
def all_sessions() -> list[TrafficMirrorSessionTypeDef]:
    pages = aws().ec2.get_paginator("describe_traffic_mirror_sessions").paginate()
    return [item for page in pages for item in page["TrafficMirrorSessions"]]


@translated_errors
def all_filters() -> list[TrafficMirrorFilterTypeDef]:
    pages = aws().ec2.get_paginator("describe_traffic_mirror_filters").paginate()
    return [item for page in pages for item in page["TrafficMirrorFilters"]]


@translated_errors
def all_targets() -> list[TrafficMirrorTargetTypeDef]:
    pages = aws().ec2.get_paginator("describe_traffic_mirror_targets").paginate()
    return [item for page in pages for item in page["TrafficMirrorTargets"]]


@translated_errors
def sessions_on_interface(interface_id: str) -> list[TrafficMirrorSessionTypeDef]:
    """The sessions whose SOURCE is this interface."""
    return aws().ec2.describe_traffic_mirror_sessions(Filters=_by_interface(interface_id))["TrafficMirrorSessions"]


@translated_errors
def targets_on_interface(interface_id: str) -> list[TrafficMirrorTargetTypeDef]:
    return aws().ec2.describe_traffic_mirror_targets(Filters=_by_interface(interface_id))["TrafficMirrorTargets"]


@translated_errors
def describe_filter(filter_id: str) -> TrafficMirrorFilterTypeDef:
    return aws().ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[filter_id])["TrafficMirrorFilters"][0]


@translated_errors
def create_target(
    interface_id: str, description: str, tag_specifications: Sequence[TagSpecificationTypeDef], client_token: str
) -> str:
    response = aws().ec2.create_traffic_mirror_target(
        NetworkInterfaceId=interface_id,
        Description=description,
        TagSpecifications=tag_specifications,
        ClientToken=client_token,
    )
    return str(response["TrafficMirrorTarget"]["TrafficMirrorTargetId"])


@translated_errors
def create_filter(description: str, tag_specifications: Sequence[TagSpecificationTypeDef], client_token: str) -> str:
    response = aws().ec2.create_traffic_mirror_filter(
        Description=description, TagSpecifications=tag_specifications, ClientToken=client_token
    )
    return str(response["TrafficMirrorFilter"]["TrafficMirrorFilterId"])


@translated_errors
def create_filter_rule(rule: CreateTrafficMirrorFilterRuleRequestTypeDef) -> None:
    aws().ec2.create_traffic_mirror_filter_rule(**rule)


@translated_errors
def add_amazon_dns(filter_id: str) -> None:
    aws().ec2.modify_traffic_mirror_filter_network_services(
        TrafficMirrorFilterId=filter_id, AddNetworkServices=["amazon-dns"]
    )


@translated_errors
def create_session(params: CreateTrafficMirrorSessionRequestTypeDef) -> TrafficMirrorSessionTypeDef:
    return aws().ec2.create_traffic_mirror_session(**params)["TrafficMirrorSession"]


@translated_errors
def delete_session(session_id: str) -> None:
    aws().ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session_id)


@translated_errors
def delete_filter(filter_id: str) -> None:
    aws().ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=filter_id)


@translated_errors
def delete_target(target_id: str) -> None:
    aws().ec2.delete_traffic_mirror_target(TrafficMirrorTargetId=target_id)

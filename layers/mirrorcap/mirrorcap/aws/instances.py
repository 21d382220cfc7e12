"""EC2 instances, their types and images, and security groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.literals import InstanceTypeType
    from mypy_boto3_ec2.type_defs import (
        FilterTypeDef,
        ImageTypeDef,
        InstanceStateChangeTypeDef,
        InstanceTypeDef,
        InstanceTypeInfoTypeDef,
        IpPermissionTypeDef,
        RunInstancesRequestTypeDef,
        SecurityGroupTypeDef,
        TagSpecificationTypeDef,
    )

# The public parameters of the standard Amazon Linux 2023 AMI (it has tcpdump, the SSM agent and curl;
# the minimal AMI has neither tcpdump nor the agent): docs/aws-facts.md#al2023-ami-parameters.
AL2023_IMAGE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"


@translated_errors
def describe_instance(instance_id: str) -> InstanceTypeDef | None:
    reservations = aws().ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    return instances[0] if instances else None


@translated_errors
def instances_matching(filters: Sequence[FilterTypeDef]) -> list[InstanceTypeDef]:
    pages = aws().ec2.get_paginator("describe_instances").paginate(Filters=filters)
    return [instance for page in pages for reservation in page["Reservations"] for instance in reservation["Instances"]]


@translated_errors
def describe_instance_type(instance_type: str) -> InstanceTypeInfoTypeDef | None:
    # The stubs list the instance types botocore knew when they were built; AWS adds more every month.
    types = aws().ec2.describe_instance_types(InstanceTypes=[cast("InstanceTypeType", instance_type)])["InstanceTypes"]
    return types[0] if types else None


@translated_errors
def al2023_image_id(architecture: str) -> str:
    name = AL2023_IMAGE_PARAMETER.format(architecture=architecture)
    return str(aws().ssm.get_parameter(Name=name)["Parameter"]["Value"])


@translated_errors
def describe_image(image_id: str) -> ImageTypeDef:
    return aws().ec2.describe_images(ImageIds=[image_id])["Images"][0]


@translated_errors
def run_instance(params: RunInstancesRequestTypeDef) -> InstanceTypeDef:
    """RunInstances for exactly one instance (`params` has MinCount = MaxCount = 1)."""
    return aws().ec2.run_instances(**params)["Instances"][0]


@translated_errors
def terminate_instances(instance_ids: list[str]) -> list[InstanceStateChangeTypeDef]:
    return aws().ec2.terminate_instances(InstanceIds=instance_ids)["TerminatingInstances"]


@translated_errors
def create_security_group(
    name: str, description: str, vpc_id: str, tag_specifications: Sequence[TagSpecificationTypeDef]
) -> str:
    return str(
        aws().ec2.create_security_group(
            GroupName=name, Description=description, VpcId=vpc_id, TagSpecifications=tag_specifications
        )["GroupId"]
    )


@translated_errors
def security_groups_matching(filters: Sequence[FilterTypeDef]) -> list[SecurityGroupTypeDef]:
    pages = aws().ec2.get_paginator("describe_security_groups").paginate(Filters=filters)
    return [group for page in pages for group in page["SecurityGroups"]]


@translated_errors
def authorize_ingress(group_id: str, permission: IpPermissionTypeDef) -> None:
    aws().ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission])


@translated_errors
def authorize_egress(group_id: str, permission: IpPermissionTypeDef) -> None:
    aws().ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[permission])


@translated_errors
def revoke_egress(group_id: str, permission: IpPermissionTypeDef) -> None:
    aws().ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[permission])


@translated_errors
def delete_security_group(group_id: str) -> None:
    aws().ec2.delete_security_group(GroupId=group_id)

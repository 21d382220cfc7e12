"""EC2 instances, their types and images, and security groups."""

from __future__ import annotations

from typing import Any

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws

# The public parameters of the standard Amazon Linux 2023 AMI (it has tcpdump, the SSM agent and curl;
# the minimal AMI has neither tcpdump nor the agent): docs/aws-facts.md#amazon-linux-2023-collector.
AL2023_IMAGE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"


@translated_errors
def describe_instance(instance_id: str) -> dict[str, Any] | None:
    reservations = aws().ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    return instances[0] if instances else None


@translated_errors
def instances_matching(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pages = aws().ec2.get_paginator("describe_instances").paginate(Filters=filters)
    return [instance for page in pages for reservation in page["Reservations"] for instance in reservation["Instances"]]


@translated_errors
def describe_instance_type(instance_type: str) -> dict[str, Any] | None:
    types = aws().ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    return types[0] if types else None


@translated_errors
def al2023_image_id(architecture: str) -> str:
    name = AL2023_IMAGE_PARAMETER.format(architecture=architecture)
    return str(aws().ssm.get_parameter(Name=name)["Parameter"]["Value"])


@translated_errors
def describe_image(image_id: str) -> dict[str, Any]:
    return dict(aws().ec2.describe_images(ImageIds=[image_id])["Images"][0])


@translated_errors
def run_instance(**params: Any) -> dict[str, Any]:
    """RunInstances for exactly one instance (MinCount = MaxCount = 1)."""
    return dict(aws().ec2.run_instances(MinCount=1, MaxCount=1, **params)["Instances"][0])


@translated_errors
def terminate_instances(instance_ids: list[str]) -> list[dict[str, Any]]:
    return list(aws().ec2.terminate_instances(InstanceIds=instance_ids)["TerminatingInstances"])


@translated_errors
def create_security_group(name: str, description: str, vpc_id: str, tag_specifications: list[dict]) -> str:
    return str(
        aws().ec2.create_security_group(
            GroupName=name, Description=description, VpcId=vpc_id, TagSpecifications=tag_specifications
        )["GroupId"]
    )


@translated_errors
def security_groups_matching(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pages = aws().ec2.get_paginator("describe_security_groups").paginate(Filters=filters)
    return [group for page in pages for group in page["SecurityGroups"]]


@translated_errors
def authorize_ingress(group_id: str, permission: dict[str, Any]) -> None:
    aws().ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission])


@translated_errors
def authorize_egress(group_id: str, permission: dict[str, Any]) -> None:
    aws().ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[permission])


@translated_errors
def revoke_egress(group_id: str, permission: dict[str, Any]) -> None:
    aws().ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[permission])


@translated_errors
def delete_security_group(group_id: str) -> None:
    aws().ec2.delete_security_group(GroupId=group_id)

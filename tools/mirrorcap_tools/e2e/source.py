"""The throwaway source instance an e2e run captures, and its security group.

It makes plain-HTTP requests to the regional S3 endpoint in a loop, so the mirrored traffic holds HTTP
requests (egress) and responses (ingress). A request to the instance's own address would not do: the
kernel delivers it over loopback and it never reaches the network interface that Traffic Mirroring
copies. The subnet already has to reach S3 (the collector uploads there), through an S3 gateway endpoint
or a NAT gateway, and S3 answers plain HTTP on port 80 (anonymously, with an error status: still HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from mirrorcap_tools.e2e.pacing import Pacing
from mirrorcap_tools.e2e.stack import E2E_TAG, RefusedToRun, aws_client

# The standard Amazon Linux 2023 AMI, from AWS's public SSM parameter (the collector uses the same family).
IMAGE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"
# Past this, the source powers itself off (= terminates, see InstanceInitiatedShutdownBehavior) even if
# the machine running make e2e died: the same backstop the collector has.
SELF_DESTRUCT_MINUTES = 90


@dataclass(frozen=True)
class SourceInstance:
    instance_id: str
    instance_type: str
    network_interface_id: str
    security_group_id: str


def subnet_vpc(session: boto3.session.Session, subnet_id: str) -> str:
    try:
        subnets = aws_client(session, "ec2").describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
            raise RefusedToRun(
                f"subnet {subnet_id} not found in {session.region_name}: {exc.response['Error']['Message']}"
            ) from None
        raise
    return subnets[0]["VpcId"]


def source_user_data(region: str, minutes: int = SELF_DESTRUCT_MINUTES) -> str:
    return (
        "#!/bin/bash\n"
        "# mirrorcap e2e source: plain-HTTP requests through the primary interface, for the capture to see\n"
        f"shutdown -h +{minutes}\n"
        "nohup bash -c 'while true; do "
        f"curl -s -o /dev/null --max-time 5 http://s3.{region}.amazonaws.com/mirrorcap-e2e; sleep 2; "
        "done' >/dev/null 2>&1 &\n"
    )


def _tags(run: str, name: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}, {"Key": E2E_TAG, "Value": run}]


def create_security_group(session: boto3.session.Session, subnet_id: str, run: str) -> str:
    """No inbound rule (nothing needs to reach the source); the default egress lets it reach S3."""
    return aws_client(session, "ec2").create_security_group(
        GroupName=f"{run}-source",
        Description=f"mirrorcap e2e {run}: throwaway capture source, no inbound",
        VpcId=subnet_vpc(session, subnet_id),
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(run, f"{run}-source")}],
    )["GroupId"]


def launch_source(
    session: boto3.session.Session, subnet_id: str, group_id: str, instance_type: str, run: str
) -> SourceInstance:
    ec2 = aws_client(session, "ec2")
    types = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    architecture = "arm64" if "arm64" in types[0]["ProcessorInfo"]["SupportedArchitectures"] else "x86_64"
    parameter = IMAGE_PARAMETER.format(architecture=architecture)
    image_id = aws_client(session, "ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    tags = _tags(run, f"{run}-source")
    instance = ec2.run_instances(
        ImageId=image_id,
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=[group_id],
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        InstanceInitiatedShutdownBehavior="terminate",
        UserData=source_user_data(session.region_name),
        TagSpecifications=[{"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")],
    )["Instances"][0]
    primary = next(i for i in instance["NetworkInterfaces"] if i["Attachment"]["DeviceIndex"] == 0)
    return SourceInstance(
        instance_id=instance["InstanceId"],
        instance_type=instance_type,
        network_interface_id=primary["NetworkInterfaceId"],
        security_group_id=group_id,
    )


def instance_state(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"] if reservations else "terminated"


def wait_running(session: boto3.session.Session, instance_id: str, pacing: Pacing) -> None:
    ec2 = aws_client(session, "ec2")

    def running() -> bool | None:
        state = instance_state(ec2, instance_id)
        if state in ("shutting-down", "terminated", "stopping", "stopped"):
            raise RuntimeError(f"source instance {instance_id} is {state} before it ran")
        return True if state == "running" else None

    pacing.wait_for(f"source instance {instance_id} to run", running, pacing.instance_timeout_seconds)


def terminate_source(session: boto3.session.Session, instance_id: str, pacing: Pacing) -> str:
    """Terminate and wait until terminated: its security group cannot be deleted before (DependencyViolation)."""
    ec2 = aws_client(session, "ec2")
    ec2.terminate_instances(InstanceIds=[instance_id])
    pacing.wait_for(
        f"source instance {instance_id} to terminate",
        lambda: True if instance_state(ec2, instance_id) == "terminated" else None,
        pacing.instance_timeout_seconds,
    )
    return f"source instance {instance_id} terminated"


def delete_security_group(session: boto3.session.Session, group_id: str) -> str:
    try:
        aws_client(session, "ec2").delete_security_group(GroupId=group_id)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidGroup.NotFound":
            raise
    return f"security group {group_id} deleted"

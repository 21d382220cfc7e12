"""LaunchCollector: the instance that receives the mirrored packets.

The collector is locked down: no key pair and no inbound port but VXLAN (UDP 4789) from the source's
address; egress only HTTPS (SSM and S3); IMDSv2 only; an encrypted root volume. It also schedules its
own power-off, which terminates it, as a last backstop should every teardown path fail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, cast

from mirrorcap.aws import instances
from mirrorcap.errors import AwsRequestFailed, CollectorLaunchFailed
from mirrorcap.models import CaptureRequest, LaunchCollectorInput, LaunchCollectorOutput
from mirrorcap.naming import (
    TAG_CAPTURE_SECONDS,
    TAG_EXPIRES_AT,
    client_token,
    resource_tags,
    tag_specifications,
)
from mirrorcap.observability import logger
from mirrorcap.runtime import now
from mirrorcap.settings import Settings

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.literals import InstanceTypeType
    from mypy_boto3_ec2.type_defs import (
        EbsBlockDeviceTypeDef,
        FilterTypeDef,
        InstanceTypeDef,
        IpPermissionTypeDef,
    )

VXLAN_PORT = 4789  # where a mirror target receives: docs/aws-facts.md#traffic-mirroring-encapsulation
# Minutes past the longest possible run after which the collector powers itself off (and terminates).
SELF_DESTRUCT_GRACE_MINUTES = 30
# A rule that is already there (or already gone) is what a retried launch wants.
ALREADY_SO = frozenset({"InvalidPermission.Duplicate", "InvalidPermission.NotFound"})


def launch_collector(data: LaunchCollectorInput, settings: Settings) -> LaunchCollectorOutput:
    capture = data.capture
    image_id, root_device = _collector_image(settings.collector_instance_type)
    group_id = _security_group(capture)
    instance = _run_instance(capture, settings, image_id, root_device, group_id)
    interface = instance["NetworkInterfaces"][0]
    logger.info("collector launched", extra={"collector": instance["InstanceId"], "image": image_id})
    return LaunchCollectorOutput(
        instance_id=instance["InstanceId"],
        security_group_id=group_id,
        network_interface_id=interface["NetworkInterfaceId"],
        private_ip=interface["PrivateIpAddress"],
        instance_type=instance["InstanceType"],
        image_id=image_id,
        launched_at=now(),
    )


def _collector_image(instance_type: str) -> tuple[str, str]:
    """The current standard Amazon Linux 2023 AMI for the collector type's architecture."""
    info = instances.describe_instance_type(instance_type)
    if info is None:
        raise CollectorLaunchFailed(f"CollectorInstanceType {instance_type} does not exist in this region")
    architecture = "arm64" if "arm64" in info["ProcessorInfo"]["SupportedArchitectures"] else "x86_64"
    image_id = instances.al2023_image_id(architecture)
    return image_id, instances.describe_image(image_id).get("RootDeviceName", "/dev/xvda")


def _security_group(capture: CaptureRequest) -> str:
    group_id = _create_or_find_group(capture)
    # Each rule change tolerates "already so", so a retried launch converges on the same group.
    vxlan_in = _permission("udp", VXLAN_PORT, f"{capture.source_ip}/32", "VXLAN from the mirror source")
    https_out = _permission("tcp", 443, "0.0.0.0/0", "SSM and S3")
    anything_out: IpPermissionTypeDef = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    for change, permission in (
        (instances.authorize_ingress, vxlan_in),
        (instances.revoke_egress, anything_out),
        (instances.authorize_egress, https_out),
    ):
        try:
            change(group_id, permission)
        except AwsRequestFailed as exc:
            if exc.code not in ALREADY_SO:
                raise CollectorLaunchFailed(f"security group {group_id}: {exc}") from exc
    return group_id


def _create_or_find_group(capture: CaptureRequest) -> str:
    name = f"mirrorcap-{capture.capture_id}"
    tags = resource_tags(capture.capture_id, capture.instance_id, capture.execution_id)
    try:
        return instances.create_security_group(
            name,
            f"mirrorcap collector {capture.capture_id}: VXLAN in from the source, HTTPS out",
            capture.vpc_id,
            tag_specifications("security-group", tags),
        )
    except AwsRequestFailed as exc:
        if exc.code != "InvalidGroup.Duplicate":
            raise CollectorLaunchFailed(f"security group: {exc}") from exc
    # A retried launch: the first attempt created it (security groups take no ClientToken).
    by_name: list[FilterTypeDef] = [
        {"Name": "group-name", "Values": [name]},
        {"Name": "vpc-id", "Values": [capture.vpc_id]},
    ]
    return str(instances.security_groups_matching(by_name)[0]["GroupId"])


def _permission(protocol: str, port: int, cidr: str, description: str) -> IpPermissionTypeDef:
    return {
        "IpProtocol": protocol,
        "FromPort": port,
        "ToPort": port,
        "IpRanges": [{"CidrIp": cidr, "Description": description}],
    }


def _self_destruct_minutes(capture: CaptureRequest, settings: Settings) -> int:
    longest_run = capture.duration_seconds + settings.readiness_timeout_seconds
    return longest_run // 60 + SELF_DESTRUCT_GRACE_MINUTES


def _self_destruct_user_data(capture: CaptureRequest, minutes: int) -> str:
    return (
        "#!/bin/bash\n"
        f"# mirrorcap {capture.capture_id}: power off (= terminate) if nobody tears us down\n"
        f"shutdown -h +{minutes}\n"
    )


def _run_instance(
    capture: CaptureRequest, settings: Settings, image_id: str, root_device: str, group_id: str
) -> InstanceTypeDef:
    minutes = _self_destruct_minutes(capture, settings)
    tags = resource_tags(
        capture.capture_id,
        capture.instance_id,
        capture.execution_id,
        extra={
            TAG_CAPTURE_SECONDS: str(capture.duration_seconds),
            TAG_EXPIRES_AT: (now() + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    volume: EbsBlockDeviceTypeDef = {
        "VolumeSize": settings.collector_volume_gib,
        "VolumeType": "gp3",
        "Encrypted": True,
        "DeleteOnTermination": True,
    }
    if settings.collector_kms_key_arn:
        volume["KmsKeyId"] = settings.collector_kms_key_arn
    try:
        return instances.run_instance(
            {
                "ImageId": image_id,
                "InstanceType": cast("InstanceTypeType", settings.collector_instance_type),
                "MinCount": 1,
                "MaxCount": 1,
                "SubnetId": capture.subnet_id,
                "SecurityGroupIds": [group_id],
                "IamInstanceProfile": {"Arn": settings.collector_instance_profile},
                "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
                "BlockDeviceMappings": [{"DeviceName": root_device, "Ebs": volume}],
                "InstanceInitiatedShutdownBehavior": "terminate",
                "UserData": _self_destruct_user_data(capture, minutes),
                "TagSpecifications": [
                    *tag_specifications("instance", tags),
                    *tag_specifications("volume", tags),
                    *tag_specifications("network-interface", tags),
                ],
                "ClientToken": client_token(capture.capture_id, capture.execution_id, "collector"),
            }
        )
    except AwsRequestFailed as exc:
        raise CollectorLaunchFailed(f"run_instances: {exc.code}: {exc.aws_message}") from exc

"""LaunchCollector and CheckCollectorReady: the instance that receives the mirrored packets.

The collector is locked down: no key pair and no inbound port but VXLAN (UDP 4789) from the source's
address; egress only HTTPS (SSM and S3); IMDSv2 only; an encrypted root volume. It also schedules its
own power-off, which terminates it, as a last backstop should every teardown path fail.
"""

from __future__ import annotations

from datetime import timedelta

from botocore.exceptions import ClientError

from mirrorcap.awserrors import error_code, error_message, throttling_is_transient
from mirrorcap.errors import CollectorLaunchFailed, CollectorNotReady
from mirrorcap.models import CaptureRequest, CollectorInstance, CollectorStep, LaunchCollectorInput, Readiness
from mirrorcap.naming import (
    TAG_CAPTURE_SECONDS,
    TAG_EXPIRES_AT,
    client_token,
    resource_tags,
    tag_specifications,
)
from mirrorcap.observability import logger
from mirrorcap.runtime import aws, now
from mirrorcap.settings import Settings

VXLAN_PORT = 4789
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"
# Minutes past the longest possible run after which the collector powers itself off (and terminates).
SELF_DESTRUCT_GRACE_MINUTES = 30


def launch_collector(data: LaunchCollectorInput, settings: Settings) -> CollectorInstance:
    capture = data.capture
    image_id, root_device = _collector_image(settings.collector_instance_type)
    group_id = _security_group(capture)
    instance = _run_instance(capture, settings, image_id, root_device, group_id)
    interface = instance["NetworkInterfaces"][0]
    logger.info("collector launched", extra={"collector": instance["InstanceId"], "image": image_id})
    return CollectorInstance(
        instance_id=instance["InstanceId"],
        security_group_id=group_id,
        network_interface_id=interface["NetworkInterfaceId"],
        private_ip=interface["PrivateIpAddress"],
        instance_type=instance["InstanceType"],
        image_id=image_id,
        launched_at=now(),
    )


def _collector_image(instance_type: str) -> tuple[str, str]:
    """The current standard Amazon Linux 2023 AMI (it has tcpdump, the SSM agent and AWS CLI v2)."""
    ec2 = aws().ec2
    with throttling_is_transient():
        types = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
        architecture = "arm64" if "arm64" in types[0]["ProcessorInfo"]["SupportedArchitectures"] else "x86_64"
        image_id = aws().ssm.get_parameter(Name=AMI_PARAMETER.format(architecture=architecture))["Parameter"]["Value"]
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return image_id, image.get("RootDeviceName", "/dev/xvda")


def _security_group(capture: CaptureRequest) -> str:
    group_id = _create_or_find_group(capture)
    # Each rule change tolerates "already so", so a retried launch converges on the same group.
    _apply_rule(
        "authorize_security_group_ingress",
        group_id,
        _permission("udp", VXLAN_PORT, f"{capture.source_ip}/32", "VXLAN from the mirror source"),
    )
    _apply_rule("revoke_security_group_egress", group_id, {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]})
    _apply_rule("authorize_security_group_egress", group_id, _permission("tcp", 443, "0.0.0.0/0", "SSM and S3"))
    return group_id


def _create_or_find_group(capture: CaptureRequest) -> str:
    ec2 = aws().ec2
    name = f"mirrorcap-{capture.capture_id}"
    tags = resource_tags(capture.capture_id, capture.instance_id, capture.execution_id)
    try:
        with throttling_is_transient():
            return ec2.create_security_group(
                GroupName=name,
                Description=f"mirrorcap collector {capture.capture_id}: VXLAN in from the source, HTTPS out",
                VpcId=capture.vpc_id,
                TagSpecifications=tag_specifications("security-group", tags),
            )["GroupId"]
    except ClientError as exc:
        if error_code(exc) != "InvalidGroup.Duplicate":
            raise CollectorLaunchFailed(f"security group: {error_code(exc)}: {error_message(exc)}") from exc
    by_name = [{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [capture.vpc_id]}]
    return ec2.describe_security_groups(Filters=by_name)["SecurityGroups"][0]["GroupId"]


def _apply_rule(operation: str, group_id: str, permission: dict) -> None:
    try:
        with throttling_is_transient():
            getattr(aws().ec2, operation)(GroupId=group_id, IpPermissions=[permission])
    except ClientError as exc:
        if error_code(exc) not in ("InvalidPermission.Duplicate", "InvalidPermission.NotFound"):
            raise CollectorLaunchFailed(f"{operation}: {error_code(exc)}: {error_message(exc)}") from exc


def _permission(protocol: str, port: int, cidr: str, description: str) -> dict:
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


def _run_instance(capture: CaptureRequest, settings: Settings, image_id: str, root_device: str, group_id: str) -> dict:
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
    try:
        with throttling_is_transient():
            reservation = aws().ec2.run_instances(
                ImageId=image_id,
                InstanceType=settings.collector_instance_type,
                MinCount=1,
                MaxCount=1,
                SubnetId=capture.subnet_id,
                SecurityGroupIds=[group_id],
                IamInstanceProfile={"Arn": settings.collector_instance_profile},
                MetadataOptions={
                    "HttpTokens": "required",
                    "HttpEndpoint": "enabled",
                    "HttpPutResponseHopLimit": 1,
                },
                BlockDeviceMappings=[
                    {
                        "DeviceName": root_device,
                        "Ebs": {
                            "VolumeSize": settings.collector_volume_gib,
                            "VolumeType": "gp3",
                            "Encrypted": True,
                            "DeleteOnTermination": True,
                        },
                    }
                ],
                InstanceInitiatedShutdownBehavior="terminate",
                UserData=_self_destruct_user_data(capture, minutes),
                TagSpecifications=[
                    *tag_specifications("instance", tags),
                    *tag_specifications("volume", tags),
                    *tag_specifications("network-interface", tags),
                ],
                ClientToken=client_token(capture.capture_id, capture.execution_id, "collector"),
            )
    except ClientError as exc:
        raise CollectorLaunchFailed(f"run_instances: {error_code(exc)}: {error_message(exc)}") from exc
    return reservation["Instances"][0]


def check_collector_ready(data: CollectorStep, settings: Settings) -> Readiness:
    """Ready = the instance is running AND its SSM agent is online (SendCommand fails before that)."""
    collector = data.collector
    ec2 = aws().ec2
    with throttling_is_transient():
        reservations = ec2.describe_instances(InstanceIds=[collector.instance_id])["Reservations"]
    instance = reservations[0]["Instances"][0]
    state = instance["State"]["Name"]
    if state in ("shutting-down", "terminated", "stopping", "stopped"):
        reason = instance.get("StateReason", {}).get("Message", "no reason given")
        raise CollectorLaunchFailed(f"collector {collector.instance_id} is {state} before it was ready: {reason}")
    ping_status = _agent_ping_status(collector.instance_id) if state == "running" else None
    checked_at = now()
    deadline = collector.launched_at + timedelta(seconds=settings.readiness_timeout_seconds)
    ready = state == "running" and ping_status == "Online"
    if not ready and checked_at >= deadline:
        raise CollectorNotReady(
            f"collector {collector.instance_id} not ready after {settings.readiness_timeout_seconds}s: instance "
            f"{state}, SSM agent {ping_status or 'not registered'}. The collector's subnet needs a route to SSM "
            "(NAT, or VPC endpoints for ssm, ssmmessages and ec2messages) and to S3."
        )
    return Readiness(
        ready=ready, instance_state=state, ping_status=ping_status, checked_at=checked_at, deadline=deadline
    )


def _agent_ping_status(instance_id: str) -> str | None:
    with throttling_is_transient():
        info = aws().ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])[
            "InstanceInformationList"
        ]
    return info[0]["PingStatus"] if info else None

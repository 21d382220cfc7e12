"""Instance states that take time (emulation/ec2_lifecycle.py): pending -> running after boot_seconds,
shutting-down -> terminated after shutdown_seconds, and a security group that cannot be deleted while an
instance that is not yet terminated uses it. Virtual time passes with `aws.clock.sleep`."""

from __future__ import annotations

import pytest

# Virtual seconds a state lasts in tests that look at it before it ends: half a real second at the tier's
# speedup, a window no slow machine steps over. Tests that only wait for the end keep the short defaults.
WINDOW = 5000


@pytest.mark.offline_aws(boot_seconds=WINDOW)
def test_a_launched_instance_is_pending(ec2, network) -> None:
    (launched,) = ec2.run_instances(
        ImageId=network.image_id, InstanceType="m5.large", MinCount=1, MaxCount=1, SubnetId=network.subnet_id
    )["Instances"]
    described = ec2.describe_instances(InstanceIds=[launched["InstanceId"]])["Reservations"][0]["Instances"][0]

    assert launched["State"] == {"Code": 0, "Name": "pending"}
    assert described["State"] == {"Code": 0, "Name": "pending"}


def test_an_instance_is_running_once_boot_seconds_have_passed(aws, ec2, launch) -> None:
    instance = launch()

    aws.clock.sleep(aws.lifecycle.boot_seconds + 1)

    described = ec2.describe_instances(InstanceIds=[instance.instance_id])["Reservations"][0]["Instances"][0]
    assert described["State"] == {"Code": 16, "Name": "running"}


@pytest.mark.offline_aws(shutdown_seconds=WINDOW)
def test_a_terminated_instance_is_shutting_down_first(ec2, launch, boot, instance_state) -> None:
    instance = launch()
    boot()

    (change,) = ec2.terminate_instances(InstanceIds=[instance.instance_id])["TerminatingInstances"]

    assert change["PreviousState"] == {"Code": 16, "Name": "running"}
    assert change["CurrentState"] == {"Code": 32, "Name": "shutting-down"}
    assert instance_state(instance.instance_id) == "shutting-down"


def test_an_instance_is_terminated_once_shutdown_seconds_have_passed(aws, ec2, launch, boot, instance_state) -> None:
    instance = launch()
    boot()
    ec2.terminate_instances(InstanceIds=[instance.instance_id])

    aws.clock.sleep(aws.lifecycle.shutdown_seconds + 1)

    assert instance_state(instance.instance_id) == "terminated"


@pytest.mark.offline_aws(shutdown_seconds=4000)
def test_terminating_again_does_not_restart_the_shutdown(aws, ec2, launch, boot, instance_state) -> None:
    instance = launch()
    boot()
    ec2.terminate_instances(InstanceIds=[instance.instance_id])
    aws.clock.sleep(3000)

    ec2.terminate_instances(InstanceIds=[instance.instance_id])
    aws.clock.sleep(1500)

    # 4,500 s after the first call: done. A restarted timer would run until 7,000 s.
    assert instance_state(instance.instance_id) == "terminated"


def test_terminating_a_terminated_instance_leaves_it_terminated(aws, ec2, launch, boot, instance_state) -> None:
    instance = launch()
    boot()
    ec2.terminate_instances(InstanceIds=[instance.instance_id])
    aws.clock.sleep(aws.lifecycle.shutdown_seconds + 1)

    (change,) = ec2.terminate_instances(InstanceIds=[instance.instance_id])["TerminatingInstances"]

    assert change["PreviousState"]["Name"] == "terminated"
    assert instance_state(instance.instance_id) == "terminated"


@pytest.mark.offline_aws(boot_seconds=2000, shutdown_seconds=20)
def test_a_pending_instance_that_is_terminated_never_runs(aws, ec2, launch, instance_state) -> None:
    instance = launch()

    ec2.terminate_instances(InstanceIds=[instance.instance_id])
    aws.clock.sleep(2000 + 1)  # past the boot it would have finished

    assert instance_state(instance.instance_id) == "terminated"


def test_describe_instance_status_sees_the_instance_running(aws, ec2, launch) -> None:
    instance = launch()
    aws.clock.sleep(aws.lifecycle.boot_seconds + 1)

    (status,) = ec2.describe_instance_status(InstanceIds=[instance.instance_id], IncludeAllInstances=True)[
        "InstanceStatuses"
    ]

    assert status["InstanceState"]["Name"] == "running"


# --- security groups ----------------------------------------------------------------------------------------


@pytest.fixture
def group_id(ec2, network) -> str:
    return ec2.create_security_group(GroupName="collector", Description="collector", VpcId=network.vpc_id)["GroupId"]


def test_a_group_used_by_a_running_instance_cannot_be_deleted(ec2, launch, boot, group_id, error_code) -> None:
    launch(SecurityGroupIds=[group_id])
    boot()

    assert error_code(ec2.delete_security_group, GroupId=group_id) == "DependencyViolation"


@pytest.mark.offline_aws(boot_seconds=WINDOW)
def test_a_group_used_by_a_pending_instance_cannot_be_deleted(ec2, launch, group_id, error_code) -> None:
    launch(SecurityGroupIds=[group_id])

    assert error_code(ec2.delete_security_group, GroupId=group_id) == "DependencyViolation"


@pytest.mark.offline_aws(shutdown_seconds=WINDOW)
def test_a_group_used_by_a_shutting_down_instance_cannot_be_deleted(ec2, launch, boot, group_id, error_code) -> None:
    instance = launch(SecurityGroupIds=[group_id])
    boot()
    ec2.terminate_instances(InstanceIds=[instance.instance_id])

    assert error_code(ec2.delete_security_group, GroupId=group_id) == "DependencyViolation"


def test_a_group_can_be_deleted_once_its_instance_is_terminated(aws, ec2, launch, boot, group_id) -> None:
    instance = launch(SecurityGroupIds=[group_id])
    boot()
    ec2.terminate_instances(InstanceIds=[instance.instance_id])
    aws.clock.sleep(aws.lifecycle.shutdown_seconds + 1)

    ec2.delete_security_group(GroupId=group_id)

    remaining = ec2.describe_security_groups()["SecurityGroups"]
    assert group_id not in [group["GroupId"] for group in remaining]


def test_an_unused_group_is_deleted_at_once(ec2, launch, boot, group_id, network) -> None:
    other = ec2.create_security_group(GroupName="other", Description="other", VpcId=network.vpc_id)["GroupId"]
    launch(SecurityGroupIds=[other])
    boot()

    ec2.delete_security_group(GroupId=group_id)


def test_a_group_in_use_cannot_be_deleted_by_name_either(ec2, network, boot, error_code) -> None:
    # Names identify groups of the default VPC, so this instance goes there (no SubnetId).
    ec2.create_security_group(GroupName="by-name", Description="by name")
    ec2.run_instances(
        ImageId=network.image_id, InstanceType="m5.large", MinCount=1, MaxCount=1, SecurityGroups=["by-name"]
    )
    boot()

    assert error_code(ec2.delete_security_group, GroupName="by-name") == "DependencyViolation"

"""The SSM agent moto lacks (emulation/ssm_agent.py): registration after `running` + registration_seconds,
SendCommand only to named, online instances, and a command's status over virtual time with the executor's
outcome and side effects."""

from __future__ import annotations

import threading

import pytest
from mirrorcap_tools.emulation.ssm_agent import CommandOutcome
from moto.ssm.models import SimpleSystemManagerBackend

BOOT = 20
REGISTRATION = 75  # OfflineAws's defaults
UNTIL_ONLINE = BOOT + REGISTRATION + 1


@pytest.fixture
def launch_managed(launch, instance_profile):
    """Launch an instance the SSM agent can register (it has an instance profile)."""
    return lambda: launch(IamInstanceProfile={"Name": instance_profile})


@pytest.fixture
def online(aws, launch_managed):
    """One managed instance whose agent is online."""
    instance = launch_managed()
    aws.clock.sleep(UNTIL_ONLINE)
    return instance


def _listed(ssm, **arguments) -> dict[str, str]:
    """Instance id -> PingStatus, as DescribeInstanceInformation lists them."""
    return {
        i["InstanceId"]: i["PingStatus"]
        for i in ssm.describe_instance_information(**arguments)["InstanceInformationList"]
    }


def _send(ssm, *instance_ids: str, comment: str = "capture-0123") -> str:
    return ssm.send_command(
        InstanceIds=list(instance_ids),
        DocumentName="AWS-RunShellScript",
        Comment=comment,
        Parameters={"commands": ["tcpdump -i ens5 -w /var/mirrorcap/dump.pcap"]},
        OutputS3BucketName="captures",
        OutputS3KeyPrefix="captures/0123/",
    )["Command"]["CommandId"]


def _invocation(ssm, command_id: str, instance_id: str) -> dict:
    return ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)


def _listed_status(ssm, command_id: str) -> str:
    (command,) = ssm.list_commands(CommandId=command_id)["Commands"]
    return command["Status"]


# --- registration -------------------------------------------------------------------------------------------


def test_a_managed_instance_is_online_after_running_and_registration(ssm, online) -> None:
    assert _listed(ssm) == {online.instance_id: "Online"}


def test_the_listing_describes_a_linux_ec2_instance(ssm, online) -> None:
    (information,) = ssm.describe_instance_information()["InstanceInformationList"]

    assert information["ResourceType"] == "EC2Instance"
    assert information["PlatformType"] == "Linux"
    assert information["IPAddress"]


@pytest.mark.offline_aws(registration_seconds=5000)  # half a real second of running without an agent
def test_a_running_instance_is_not_listed_before_its_agent_registers(aws, ssm, launch_managed, instance_state) -> None:
    instance = launch_managed()
    aws.clock.sleep(BOOT + 1)

    assert instance_state(instance.instance_id) == "running"
    assert _listed(ssm) == {}


@pytest.mark.offline_aws(boot_seconds=5000, registration_seconds=5000)
def test_registration_time_counts_from_running_not_from_launch(aws, ssm, launch_managed) -> None:
    instance = launch_managed()

    aws.clock.sleep(6000)  # running since 5,000 s, online at 10,000 s
    assert _listed(ssm) == {}

    aws.clock.sleep(4500)
    assert _listed(ssm) == {instance.instance_id: "Online"}


def test_an_instance_without_an_instance_profile_never_registers(aws, ssm, launch) -> None:
    launch()

    aws.clock.sleep(10 * UNTIL_ONLINE)

    assert _listed(ssm) == {}


@pytest.mark.offline_aws(registration_seconds=None)
def test_no_agent_registers_when_registration_seconds_is_none(aws, ssm, launch_managed) -> None:
    launch_managed()

    aws.clock.sleep(10 * UNTIL_ONLINE)

    assert _listed(ssm) == {}


def test_the_instance_ids_filter_lists_only_those_instances(aws, ssm, launch_managed) -> None:
    wanted, other = launch_managed(), launch_managed()
    aws.clock.sleep(UNTIL_ONLINE)

    listed = _listed(ssm, Filters=[{"Key": "InstanceIds", "Values": [wanted.instance_id]}])

    assert listed == {wanted.instance_id: "Online"}
    assert other.instance_id in _listed(ssm)


def test_a_terminated_instance_is_no_longer_online(aws, ec2, ssm, online) -> None:
    ec2.terminate_instances(InstanceIds=[online.instance_id])

    assert _listed(ssm).get(online.instance_id) != "Online"


# --- SendCommand ------------------------------------------------------------------------------------------------


@pytest.mark.offline_aws(registration_seconds=5000)
def test_a_command_to_an_instance_not_yet_online_is_refused(aws, ssm, launch_managed, error_code) -> None:
    instance = launch_managed()
    aws.clock.sleep(BOOT + 1)

    assert error_code(_send, ssm, instance.instance_id) == "InvalidInstanceId"


def test_a_command_to_an_unmanaged_instance_is_refused(aws, ssm, launch, error_code) -> None:
    instance = launch()
    aws.clock.sleep(UNTIL_ONLINE)

    assert error_code(ssm.send_command, InstanceIds=[instance.instance_id], DocumentName="AWS-RunShellScript") == (
        "InvalidInstanceId"
    )


def test_a_command_to_an_unknown_instance_is_refused(ssm, online, error_code) -> None:
    assert error_code(ssm.send_command, InstanceIds=["i-0123456789abcdef0"], DocumentName="AWS-RunShellScript") == (
        "InvalidInstanceId"
    )


def test_a_command_to_a_terminated_instance_is_refused(ec2, ssm, online, error_code) -> None:
    ec2.terminate_instances(InstanceIds=[online.instance_id])

    assert error_code(ssm.send_command, InstanceIds=[online.instance_id], DocumentName="AWS-RunShellScript") == (
        "InvalidInstanceId"
    )


def test_a_command_over_the_document_size_quota_is_refused(ssm, online, error_code) -> None:
    too_big = {"commands": ["echo " + "x" * 64 * 1024]}
    fits = {"commands": ["echo " + "x" * 60 * 1024]}

    assert (
        error_code(
            ssm.send_command, InstanceIds=[online.instance_id], DocumentName="AWS-RunShellScript", Parameters=too_big
        )
        == "MaxDocumentSizeExceeded"
    )
    ssm.send_command(InstanceIds=[online.instance_id], DocumentName="AWS-RunShellScript", Parameters=fits)


def test_a_command_goes_to_the_named_instance_only(aws, ssm, launch_managed, executor) -> None:
    named = launch_managed()
    launch_managed()  # a bystander in the same region
    aws.clock.sleep(UNTIL_ONLINE)

    sent = ssm.send_command(InstanceIds=[named.instance_id], DocumentName="AWS-RunShellScript")["Command"]

    assert sent["InstanceIds"] == [named.instance_id]
    assert sent["TargetCount"] == 1
    (listed,) = ssm.list_commands(CommandId=sent["CommandId"])["Commands"]
    assert listed["InstanceIds"] == [named.instance_id]
    assert [command.instance.id for command in executor.planned] == [named.instance_id]


def test_there_is_no_invocation_on_an_instance_not_named(aws, ssm, launch_managed, error_code) -> None:
    named, bystander = launch_managed(), launch_managed()
    aws.clock.sleep(UNTIL_ONLINE)
    command_id = _send(ssm, named.instance_id)

    assert error_code(_invocation, ssm, command_id, bystander.instance_id) == ("InvocationDoesNotExist")


def test_the_executor_is_given_the_command_as_sent(ssm, online, executor) -> None:
    command_id = _send(ssm, online.instance_id, comment="capture-0123")

    (planned,) = executor.planned
    assert (planned.command_id, planned.instance.id) == (command_id, online.instance_id)
    assert planned.comment == "capture-0123"
    assert planned.parameters == {"commands": ["tcpdump -i ens5 -w /var/mirrorcap/dump.pcap"]}
    assert (planned.output_bucket, planned.output_prefix) == ("captures", "captures/0123/")


def test_a_command_to_two_instances_runs_on_both(aws, ssm, launch_managed, executor) -> None:
    first, second = launch_managed(), launch_managed()
    aws.clock.sleep(UNTIL_ONLINE)
    command_id = _send(ssm, first.instance_id, second.instance_id)

    aws.clock.sleep(executor.duration + 1)

    assert _invocation(ssm, command_id, first.instance_id)["Status"] == "Success"
    assert _invocation(ssm, command_id, second.instance_id)["Status"] == "Success"
    assert len(executor.finished) == 2


# --- command status over time -----------------------------------------------------------------------------------

RUN = 600  # virtual seconds a command runs in tests that wait for its end


def test_a_command_is_in_progress_until_the_executor_is_done(ssm, online, executor) -> None:
    executor.duration = 100_000  # ten real seconds: no slow machine gets there before the assertions
    command_id = _send(ssm, online.instance_id)

    assert _invocation(ssm, command_id, online.instance_id)["Status"] == "InProgress"
    assert _listed_status(ssm, command_id) == "InProgress"
    assert executor.finished == []


def test_a_finished_command_reports_the_executors_success(aws, ssm, online, executor) -> None:
    executor.duration = RUN
    executor.outcome = CommandOutcome(status="Success", stdout="3 packets captured")
    command_id = _send(ssm, online.instance_id)

    aws.clock.sleep(RUN + 1)

    invocation = _invocation(ssm, command_id, online.instance_id)
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Success", 0)
    assert invocation["StandardOutputContent"] == "3 packets captured"
    assert _listed_status(ssm, command_id) == "Success"


def test_a_finished_command_reports_the_executors_failure(aws, ssm, online, executor) -> None:
    executor.duration = RUN
    executor.outcome = CommandOutcome(status="Failed", response_code=1, stderr="tcpdump: ens5: No such device")
    command_id = _send(ssm, online.instance_id)

    aws.clock.sleep(RUN + 1)

    invocation = _invocation(ssm, command_id, online.instance_id)
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Failed", 1)
    assert invocation["StandardErrorContent"] == "tcpdump: ens5: No such device"
    assert _listed_status(ssm, command_id) == "Failed"


def test_the_finish_side_effect_runs_exactly_once(aws, ssm, online, executor) -> None:
    executor.duration = RUN
    command_id = _send(ssm, online.instance_id)
    aws.clock.sleep(RUN + 1)

    for _ in range(3):
        _invocation(ssm, command_id, online.instance_id)
        _listed_status(ssm, command_id)

    assert executor.finished == [command_id]


def test_listing_commands_alone_finishes_a_command(aws, ssm, online, executor) -> None:
    # Whichever call looks first after the end (here ListCommands) sees the outcome and runs the side effect.
    executor.duration = RUN
    command_id = _send(ssm, online.instance_id)
    aws.clock.sleep(RUN + 1)

    assert _listed_status(ssm, command_id) == "Success"
    assert executor.finished == [command_id]


def test_an_unknown_command_has_no_invocation(ssm, online, error_code) -> None:
    assert (
        error_code(_invocation, ssm, "00000000-0000-0000-0000-000000000000", online.instance_id) == "InvalidCommandId"
    )


def test_long_output_is_cut_to_its_first_24000_characters(aws, ssm, online, executor) -> None:
    executor.duration = RUN
    executor.outcome = CommandOutcome(status="Success", stdout="x" * 24_000 + "manifest", stderr="e" * 8_000 + "tail")
    command_id = _send(ssm, online.instance_id)
    aws.clock.sleep(RUN + 1)

    invocation = _invocation(ssm, command_id, online.instance_id)

    assert invocation["StandardOutputContent"] == "x" * 24_000
    assert invocation["StandardErrorContent"] == "e" * 8_000


def test_the_ping_status_filter_is_applied(ssm, online) -> None:
    assert _listed(ssm, Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}]) == {}
    assert _listed(ssm, Filters=[{"Key": "PingStatus", "Values": ["Online"]}]) == {online.instance_id: "Online"}


def test_a_filter_the_emulation_cannot_apply_is_refused_not_ignored(ssm, online, error_code) -> None:
    # AWS can filter on tags; the emulation refuses rather than list instances AWS would leave out.
    assert (
        error_code(ssm.describe_instance_information, Filters=[{"Key": "tag:team", "Values": ["payments"]}])
        == "InvalidFilterKey"
    )


def test_commands_sent_at_the_same_time_each_go_to_their_own_instance(
    aws, ssm, launch_managed, executor, monkeypatch
) -> None:
    first, second = launch_managed(), launch_managed()
    aws.clock.sleep(UNTIL_ONLINE)
    executor.duration = 100_000
    # Make the race certain instead of likely: each command is in moto's list before either sender looks at it.
    # (An emulation that serializes sends never lets both arrive: the wait then gives up after a second.)
    both_stored = threading.Barrier(2, timeout=1)
    store = SimpleSystemManagerBackend.send_command

    def store_then_wait(backend, **arguments):
        command = store(backend, **arguments)
        try:
            both_stored.wait()
        except threading.BrokenBarrierError:
            pass
        return command

    monkeypatch.setattr(SimpleSystemManagerBackend, "send_command", store_then_wait)
    sent: dict[str, dict] = {}

    def send(instance_id: str) -> None:
        sent[instance_id] = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript")["Command"]

    senders = [threading.Thread(target=send, args=(i.instance_id,)) for i in (first, second)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(10)

    command_ids = {instance_id: command["CommandId"] for instance_id, command in sent.items()}
    assert len(set(command_ids.values())) == 2
    for instance_id, command_id in command_ids.items():
        assert _invocation(ssm, command_id, instance_id)["Status"] == "InProgress"

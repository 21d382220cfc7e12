"""Canaries: the ground under the emulation. Each test pins a gap or bug of moto 5.2.5 as it is *without* the
emulation (plain `mock_aws`), or a moto internal the emulation patches. When a moto upgrade fills a gap or
moves an internal, the test fails and names the emulation module to re-check: the emulation may now be
redundant, shadow moto's own (better or worse) behaviour, or patch something that no longer exists."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import Any

import moto
import pytest
from botocore.exceptions import ClientError
from mirrorcap_tools.emulation import MOTO_VERSION, OfflineAws, UnsupportedMotoVersion
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction


def recheck(module: str, change: str) -> str:
    return (
        f"moto {moto.__version__} changed the ground under tools/mirrorcap_tools/emulation/{module}: {change}. "
        f"Re-check that module against this moto (is it still needed, still right?), then update this canary."
    )


def assert_not_implemented(call: Callable[[], Any], operation: str, module: str) -> None:
    """moto raises NotImplementedError straight through boto3 (no HTTP error) for an operation it lacks."""
    try:
        call()
    except NotImplementedError as missing:
        assert f"The {operation} action has not been implemented" in str(missing)
        return
    except ClientError as answered:
        pytest.fail(recheck(module, f"moto now implements {operation} (it answered {answered.response['Error']})"))
    pytest.fail(recheck(module, f"moto now implements {operation}"))


# --- the version --------------------------------------------------------------------------------------------


def test_the_installed_moto_is_the_one_the_emulation_was_written_against() -> None:
    assert moto.__version__ == MOTO_VERSION, recheck(
        "__init__.py", f"the installed moto is {moto.__version__}, the emulation is pinned to {MOTO_VERSION}"
    )


def test_offline_aws_refuses_another_moto_version(monkeypatch, executor) -> None:
    monkeypatch.setattr(moto, "__version__", "5.2.6")

    with pytest.raises(UnsupportedMotoVersion, match="tests/emulation"):
        OfflineAws(executor)


# --- what the emulation patches must exist as the emulation expects -------------------------------------------

# The operations moto 5.2.5 has no handler for: the emulation creates them (mock.patch create=True). Every
# other patched name must already exist, or the patch would silently add an unused attribute.
ADDED_BY_THE_EMULATION = {
    ("EC2Response", "create_traffic_mirror_filter_rule"),
    ("EC2Response", "delete_traffic_mirror_filter"),
    ("EC2Response", "delete_traffic_mirror_target"),
    ("EC2Response", "delete_traffic_mirror_filter_rule"),
    ("EC2Response", "modify_traffic_mirror_filter_network_services"),
    ("SimpleSystemManagerResponse", "describe_instance_information"),
}


def _patched_names(executor) -> set[tuple[str, str, bool]]:
    return {
        (getattr(owner, "__name__", str(owner)).rsplit(".", 1)[-1], name, hasattr(owner, name))
        for owner, name, _replacement in OfflineAws(executor)._patches()
    }


def test_the_operations_the_emulation_adds_are_still_missing_from_moto(executor) -> None:
    now_in_moto = {(owner, name) for owner, name, exists in _patched_names(executor) if exists}

    assert not ADDED_BY_THE_EMULATION & now_in_moto, recheck(
        "ec2_mirroring.py / ssm_agent.py", f"moto now implements {sorted(ADDED_BY_THE_EMULATION & now_in_moto)}"
    )


def test_everything_else_the_emulation_patches_exists_in_moto(executor) -> None:
    missing = {(owner, name) for owner, name, exists in _patched_names(executor) if not exists}

    assert missing <= ADDED_BY_THE_EMULATION, recheck(
        "(the module patching it)", f"moto no longer has {sorted(missing - ADDED_BY_THE_EMULATION)}"
    )


@pytest.mark.parametrize(
    ("method", "parameters", "module"),
    [
        (InstanceBackend.terminate_instances, ["self", "instance_ids"], "ec2_lifecycle.py"),
        (SecurityGroupBackend.delete_security_group, ["self", "name", "group_id"], "ec2_lifecycle.py"),
        (
            LambdaSimpleBackend.invoke,
            ["self", "function_name", "qualifier", "body", "headers", "response_headers"],
            "lambda_runtime.py",
        ),
        (WaitFunction._wait_interval, ["self", "env", "wait_seconds"], "__init__.py"),
    ],
    ids=["terminate_instances", "delete_security_group", "lambda-invoke", "wait_interval"],
)
def test_the_signatures_the_emulation_replaces_are_unchanged(method, parameters, module) -> None:
    assert list(inspect.signature(method).parameters) == parameters, recheck(
        module, f"{method.__qualname__}{inspect.signature(method)}"
    )


@pytest.mark.parametrize(
    ("module", "name", "provided"),
    [(retrier_decl, "time", {"sleep"}), (execute_state, "threading", {"Event"})],
    ids=["retrier-sleeps-with-time.sleep", "task-timeout-waits-on-threading.Event"],
)
def test_the_modules_the_emulation_swaps_use_only_what_it_provides(module, name, provided) -> None:
    # The emulation replaces these module globals with a namespace holding only `sleep` / `Event`.
    used = set(re.findall(rf"\b{name}\.(\w+)", inspect.getsource(module)))

    assert used == provided, recheck("__init__.py", f"{module.__name__} uses {name}.{sorted(used)}")


# --- EC2 without the emulation ----------------------------------------------------------------------------------


@pytest.fixture
def plain_ec2(plain_moto) -> Any:
    return plain_moto("ec2")


@pytest.fixture
def two_instances(plain_moto, plain_ec2) -> list[dict]:
    vpc_id = plain_ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id = plain_ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    image_id = plain_moto("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )["Parameter"]["Value"]
    return plain_ec2.run_instances(
        ImageId=image_id, InstanceType="m5.large", MinCount=2, MaxCount=2, SubnetId=subnet_id
    )["Instances"]


def _eni(instance: dict) -> str:
    return instance["NetworkInterfaces"][0]["NetworkInterfaceId"]


def _state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


@pytest.mark.parametrize(
    ("operation", "arguments"),
    [
        (
            "create_traffic_mirror_filter_rule",
            {
                "TrafficMirrorFilterId": "tmf-0123456789abcdef0",
                "TrafficDirection": "ingress",
                "RuleNumber": 1,
                "RuleAction": "accept",
                "SourceCidrBlock": "0.0.0.0/0",
                "DestinationCidrBlock": "0.0.0.0/0",
            },
        ),
        ("delete_traffic_mirror_filter", {"TrafficMirrorFilterId": "tmf-0123456789abcdef0"}),
        ("delete_traffic_mirror_target", {"TrafficMirrorTargetId": "tmt-0123456789abcdef0"}),
        ("delete_traffic_mirror_filter_rule", {"TrafficMirrorFilterRuleId": "tmfr-0123456789abcdef0"}),
        (
            "modify_traffic_mirror_filter_network_services",
            {"TrafficMirrorFilterId": "tmf-0123456789abcdef0", "AddNetworkServices": ["amazon-dns"]},
        ),
    ],
)
def test_moto_lacks_these_traffic_mirroring_calls(plain_ec2, operation, arguments) -> None:
    assert_not_implemented(lambda: getattr(plain_ec2, operation)(**arguments), operation, "ec2_mirroring.py")


def test_moto_describes_filters_without_rules_or_network_services(plain_ec2) -> None:
    filter_id = plain_ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]

    (described,) = plain_ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[filter_id])["TrafficMirrorFilters"]

    assert {"IngressFilterRules", "EgressFilterRules", "NetworkServices"}.isdisjoint(described), recheck(
        "ec2_mirroring.py (_describe_filters)", f"DescribeTrafficMirrorFilters now returns {sorted(described)}"
    )


def test_moto_ignores_client_tokens(plain_ec2) -> None:
    first = plain_ec2.create_traffic_mirror_filter(ClientToken="same")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    second = plain_ec2.create_traffic_mirror_filter(ClientToken="same")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]

    assert first != second, recheck("ec2_mirroring.py (_idempotent)", "moto now honours ClientToken")


def test_moto_checks_nothing_when_a_session_is_created(plain_ec2, two_instances) -> None:
    filter_id = plain_ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    source = _eni(two_instances[0])

    # An unknown target, a session number out of range, and a fourth session on one interface: all accepted.
    for session_number in (40_000, 1, 2, 3):
        plain_ec2.create_traffic_mirror_session(
            NetworkInterfaceId=source,
            TrafficMirrorTargetId="tmt-0123456789abcdef0",
            TrafficMirrorFilterId=filter_id,
            SessionNumber=session_number,
        )

    sessions = plain_ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert len(sessions) == 4, recheck("ec2_mirroring.py (_check_session)", "moto now checks sessions")


def test_moto_deletes_an_unknown_session_without_error(plain_ec2) -> None:
    deleted = plain_ec2.delete_traffic_mirror_session(TrafficMirrorSessionId="tms-0123456789abcdef0")

    assert deleted["TrafficMirrorSessionId"] == "tms-0123456789abcdef0", recheck(
        "ec2_mirroring.py (_delete_session)", "moto now refuses an unknown session id"
    )


def test_moto_instances_are_running_at_once(plain_ec2, two_instances) -> None:
    # RunInstances's own response says pending, but the instance is already running when described.
    assert two_instances[0]["State"]["Name"] == "pending"
    assert _state(plain_ec2, two_instances[0]["InstanceId"]) == "running", recheck(
        "ec2_lifecycle.py", "instances no longer start running at once"
    )


def test_moto_instances_are_terminated_at_once(plain_ec2, two_instances) -> None:
    instance_id = two_instances[0]["InstanceId"]

    plain_ec2.terminate_instances(InstanceIds=[instance_id])

    assert _state(plain_ec2, instance_id) == "terminated", recheck(
        "ec2_lifecycle.py", "terminated instances no longer skip shutting-down"
    )


def test_moto_deletes_a_security_group_an_instance_still_uses(plain_moto, plain_ec2) -> None:
    group_id = plain_ec2.create_security_group(GroupName="collector", Description="collector")["GroupId"]
    image_id = plain_moto("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )["Parameter"]["Value"]
    plain_ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, SecurityGroupIds=[group_id])

    plain_ec2.delete_security_group(GroupId=group_id)  # AWS: DependencyViolation

    groups = plain_ec2.describe_security_groups()["SecurityGroups"]
    assert group_id not in [g["GroupId"] for g in groups], recheck(
        "ec2_lifecycle.py", "moto now keeps a security group that an instance uses"
    )


# --- SSM without the emulation ----------------------------------------------------------------------------------


def test_moto_lacks_describe_instance_information(plain_moto) -> None:
    assert_not_implemented(
        plain_moto("ssm").describe_instance_information, "describe_instance_information", "ssm_agent.py"
    )


def test_moto_sends_a_command_to_every_instance_of_the_region(plain_moto, two_instances) -> None:
    named, bystander = (instance["InstanceId"] for instance in two_instances)

    command = plain_moto("ssm").send_command(InstanceIds=[named], DocumentName="AWS-RunShellScript")["Command"]

    assert sorted(command["InstanceIds"]) == sorted([named, bystander]), recheck(
        "ssm_agent.py (_send)", f"SendCommand to {named} now lists {command['InstanceIds']}"
    )


def test_moto_accepts_a_command_to_any_instance_and_it_succeeds_at_once(plain_moto) -> None:
    ssm = plain_moto("ssm")

    command = ssm.send_command(InstanceIds=["i-0123456789abcdef0"], DocumentName="AWS-RunShellScript")["Command"]
    invocation = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId="i-0123456789abcdef0")

    assert (command["Status"], invocation["Status"]) == ("Success", "Success"), recheck(
        "ssm_agent.py", "SendCommand to an unknown instance no longer succeeds at once"
    )


# --- Lambda and Step Functions without the emulation --------------------------------------------------------------


def test_moto_simple_lambda_echoes_the_request(plain_moto) -> None:
    role = plain_moto("iam").create_role(RoleName="functions", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_client = plain_moto("lambda")
    lambda_client.create_function(
        FunctionName="echo", Runtime="python3.11", Role=role, Handler="app.lambda_handler", Code={"ZipFile": b"PK"}
    )

    payload = lambda_client.invoke(FunctionName="echo", Payload=b'{"seconds": 60}')["Payload"].read()

    assert json.loads(payload) == {"seconds": 60}, recheck(
        "lambda_runtime.py", f"simple Invoke now answers {payload!r}"
    )


def test_moto_refuses_input_that_is_not_json_without_an_error_code(plain_moto) -> None:
    sfn = plain_moto("stepfunctions")
    role = plain_moto("iam").create_role(RoleName="states", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    machine_arn = sfn.create_state_machine(name="pass-only", definition=definition, roleArn=role)["stateMachineArn"]

    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine_arn, input="{not json")

    assert refused.value.response["Error"]["Code"] == "", recheck(
        "stepfunctions_input.py", f"StartExecution now answers {refused.value.response['Error']}"
    )

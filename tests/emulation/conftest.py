"""Fixtures for the emulation tier: one fresh emulated account per test, and the EC2 pieces most tests need.

Virtual time runs 10,000 times faster than real time here, so a 20 s boot is 2 ms. A test that must see
an in-between state (pending, shutting-down, not yet registered, still running) asks for a window long
enough in real terms (`@pytest.mark.offline_aws(boot_seconds=5000)` is half a real second) that a slow
machine cannot step over it.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mirrorcap_tools.emulation import OFFLINE_ENVIRONMENT, OfflineAws
from mirrorcap_tools.emulation.ssm_agent import CommandOutcome, SentCommand
from moto import mock_aws

SPEEDUP = 10_000.0
AL2023_X86_64 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
AL2023_ARM64 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
REGION = "us-east-1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "offline_aws(**options): keyword arguments for the test's OfflineAws (boot_seconds, ...)"
    )


# --- the SSM command executor ------------------------------------------------------------------------------


@dataclass
class FakeExecutor:
    """Runs every command for `duration` virtual seconds, then ends with `outcome`; records what happened."""

    duration: float = 600.0
    outcome: CommandOutcome = field(default_factory=lambda: CommandOutcome(status="Success", stdout="captured"))
    planned: list[SentCommand] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # command ids, once per finish side effect

    def plan(self, command: SentCommand) -> tuple[float, Callable[[], CommandOutcome]]:
        self.planned.append(command)
        outcome = self.outcome

        def finish() -> CommandOutcome:
            self.finished.append(command.command_id)
            return outcome

        return self.duration, finish


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def aws(executor: FakeExecutor, request: pytest.FixtureRequest) -> Iterator[OfflineAws]:
    marker = request.node.get_closest_marker("offline_aws")
    options = {"speedup": SPEEDUP, **(marker.kwargs if marker else {})}
    with OfflineAws(executor, **options) as offline:
        yield offline


# --- clients -----------------------------------------------------------------------------------------------

# Creating an EC2 client costs ~0.4 s (its service model is huge), so each client is made once, inside the
# first test that needs it (credentials and region come from OfflineAws's environment), and handed to later
# tests: moto intercepts a client however old it is, and each OfflineAws starts from empty backends.
_clients: dict[str, Any] = {}


def _client(service: str, **options: Any) -> Any:
    key = f"{service} {options}"
    if key not in _clients:
        _clients[key] = boto3.client(service, region_name=REGION, **options)
    return _clients[key]


@pytest.fixture
def ec2(aws: OfflineAws) -> Any:
    return _client("ec2")


@pytest.fixture
def unvalidated_ec2(aws: OfflineAws) -> Any:
    """An EC2 client that sends requests botocore would refuse (e.g. without a required parameter)."""
    return _client("ec2", config=Config(parameter_validation=False))


@pytest.fixture
def ssm(aws: OfflineAws) -> Any:
    return _client("ssm")


@pytest.fixture
def iam(aws: OfflineAws) -> Any:
    return _client("iam")


@pytest.fixture
def lambda_client(aws: OfflineAws) -> Any:
    return _client("lambda")


@pytest.fixture
def sfn(aws: OfflineAws) -> Any:
    return _client("stepfunctions")


@pytest.fixture
def error_code() -> Callable[..., str]:
    """Call `operation(*arguments, **keywords)`, which must fail, and return the AWS error code it failed with."""

    def code_of(operation: Callable[..., Any], *arguments: Any, **keywords: Any) -> str:
        with pytest.raises(ClientError) as caught:
            operation(*arguments, **keywords)
        return caught.value.response["Error"]["Code"]

    return code_of


@pytest.fixture
def plain_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """moto 5.2.5 as it is, without the emulation (configured as OfflineAws configures it); gives clients."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        yield lambda service: _client(service)


# --- EC2 ---------------------------------------------------------------------------------------------------


@dataclass
class Network:
    vpc_id: str
    subnet_id: str
    image_id: str
    arm_image_id: str


@pytest.fixture
def network(ec2: Any, ssm: Any) -> Network:
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
        "SubnetId"
    ]
    # Not describe_images: listing every AMI moto knows takes seconds.
    image_id = ssm.get_parameter(Name=AL2023_X86_64)["Parameter"]["Value"]
    arm_image_id = ssm.get_parameter(Name=AL2023_ARM64)["Parameter"]["Value"]
    return Network(vpc_id, subnet_id, image_id, arm_image_id)


@pytest.fixture
def instance_profile(iam: Any) -> str:
    """The name of an instance profile with a role in it (what makes an instance SSM-manageable)."""
    iam.create_role(RoleName="collector", AssumeRolePolicyDocument=_trust_policy("ec2.amazonaws.com"))
    iam.create_instance_profile(InstanceProfileName="collector")
    iam.add_role_to_instance_profile(InstanceProfileName="collector", RoleName="collector")
    return "collector"


@dataclass(frozen=True)
class Instance:
    instance_id: str
    eni_id: str


@pytest.fixture
def launch(ec2: Any, network: Network) -> Callable[..., Instance]:
    """Run one instance (it starts `pending`); keyword arguments go to RunInstances."""

    def launch_one(instance_type: str = "m5.large", *, arm: bool = False, **run_arguments: Any) -> Instance:
        reservation = ec2.run_instances(
            ImageId=network.arm_image_id if arm else network.image_id,
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            SubnetId=network.subnet_id,
            **run_arguments,
        )
        instance = reservation["Instances"][0]
        return Instance(instance["InstanceId"], instance["NetworkInterfaces"][0]["NetworkInterfaceId"])

    return launch_one


@pytest.fixture
def boot(aws: OfflineAws) -> Callable[[], None]:
    """Let every instance launched so far finish booting."""

    def wait_for_boot() -> None:
        aws.clock.sleep(aws.lifecycle.boot_seconds + 1)

    return wait_for_boot


def state_of(ec2: Any, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


@pytest.fixture
def instance_state(ec2: Any) -> Callable[[str], str]:
    return lambda instance_id: state_of(ec2, instance_id)


# --- Traffic Mirroring -------------------------------------------------------------------------------------


@dataclass
class Mirror:
    """A running source and a running collector, with a target on the collector and an empty filter."""

    ec2: Any
    network: Network
    source: Instance
    collector: Instance
    target_id: str
    filter_id: str

    def session(self, session_number: int = 1, **overrides: Any) -> dict[str, Any]:
        arguments = {
            "NetworkInterfaceId": self.source.eni_id,
            "TrafficMirrorTargetId": self.target_id,
            "TrafficMirrorFilterId": self.filter_id,
            "SessionNumber": session_number,
            **overrides,
        }
        return self.ec2.create_traffic_mirror_session(**arguments)["TrafficMirrorSession"]

    def rule(self, rule_number: int = 100, **overrides: Any) -> dict[str, Any]:
        arguments = {
            "TrafficMirrorFilterId": self.filter_id,
            "TrafficDirection": "ingress",
            "RuleNumber": rule_number,
            "RuleAction": "accept",
            "SourceCidrBlock": "0.0.0.0/0",
            "DestinationCidrBlock": "0.0.0.0/0",
            **overrides,
        }
        return self.ec2.create_traffic_mirror_filter_rule(**arguments)["TrafficMirrorFilterRule"]


@pytest.fixture
def mirror(ec2: Any, network: Network, launch: Callable[..., Instance], boot: Callable[[], None]) -> Mirror:
    source = launch("m5.large")
    collector = launch("m5.large")
    boot()
    target_id = ec2.create_traffic_mirror_target(NetworkInterfaceId=collector.eni_id)["TrafficMirrorTarget"][
        "TrafficMirrorTargetId"
    ]
    filter_id = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    return Mirror(ec2, network, source, collector, target_id, filter_id)


# --- Lambda and Step Functions -----------------------------------------------------------------------------


def _trust_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


@pytest.fixture
def lambda_role(iam: Any) -> str:
    return iam.create_role(RoleName="functions", AssumeRolePolicyDocument=_trust_policy("lambda.amazonaws.com"))[
        "Role"
    ]["Arn"]


@pytest.fixture
def states_role(iam: Any) -> str:
    return iam.create_role(RoleName="states", AssumeRolePolicyDocument=_trust_policy("states.amazonaws.com"))["Role"][
        "Arn"
    ]


@pytest.fixture
def deploy_function(aws: OfflineAws, lambda_client: Any, lambda_role: str) -> Callable[..., str]:
    """Create a Lambda function whose invocations run `handler` in-process; returns its ARN."""

    def deploy(name: str, handler: Callable[[dict[str, Any], Any], Any]) -> str:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr(
                "app.py", "def lambda_handler(event, context):\n    raise RuntimeError('not run offline')\n"
            )
        function_arn = lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=lambda_role,
            Handler="app.lambda_handler",
            Code={"ZipFile": archive.getvalue()},
        )["FunctionArn"]
        aws.lambdas.register(name, handler)
        return function_arn

    return deploy


@pytest.fixture
def run_state_machine(sfn: Any, states_role: str) -> Callable[..., dict[str, Any]]:
    """Create a state machine from an ASL document, run it once, and return the finished execution."""

    def run(definition: dict[str, Any], execution_input: str = "{}") -> dict[str, Any]:
        machine_arn = sfn.create_state_machine(
            name=f"machine-{len(sfn.list_state_machines()['stateMachines'])}",
            definition=json.dumps(definition),
            roleArn=states_role,
        )["stateMachineArn"]
        execution_arn = sfn.start_execution(stateMachineArn=machine_arn, input=execution_input)["executionArn"]
        return wait_for_execution(sfn, execution_arn)

    return run


def wait_for_execution(sfn: Any, execution_arn: str, attempts: int = 1000) -> dict[str, Any]:
    for _ in range(attempts):
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.01)
    raise AssertionError(f"{execution_arn} still RUNNING after {attempts} polls")

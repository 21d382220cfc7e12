"""The emulated account an offline run happens in, deployed from template.yaml.

A VPC with one subnet and a few source instances (the ones events/ refer to), the capture bucket and
the collector's role, and the stack itself: one Lambda function per template function, running the
real handler in-process, and the state machine from statemachine/ with its DefinitionSubstitutions.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from mirrorcap_tools.emulation import ACCOUNT_ID, OfflineAws
from mirrorcap_tools.template import (
    PROJECT_ROOT,
    TemplateContext,
    load_template,
    parameter_defaults,
    resources_of_type,
)

STACK_NAME = "mirrorcap-offline"
CAPTURE_BUCKET = "mirrorcap-offline-captures-123456789012"
LOCK_TABLE = "mirrorcap-offline-source-locks"
SOURCE_IMAGE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@dataclass(frozen=True)
class SourceInstance:
    name: str
    instance_id: str
    instance_type: str
    tags: dict[str, str] = field(default_factory=dict)


# The instances events/ refer to. Their ids are fixed so the sample events can name them.
SOURCE_INSTANCES = (
    SourceInstance("web-1", "i-0123456789abcdef0", "m5.large", {"mirrorcap:sample": "true", "team": "payments"}),
    SourceInstance("web-2", "i-0fedcba9876543210", "m5.large", {"mirrorcap:sample": "true", "team": "payments"}),
    SourceInstance("legacy-1", "i-0aaaabbbbccccdddd", "t2.micro", {"team": "legacy"}),
    SourceInstance("api-1", "i-0a1a1a1a1a1a1a1a1", "c5.large", {"team": "api"}),
    SourceInstance("api-2", "i-0a2a2a2a2a2a2a2a2", "c5.large", {"team": "api"}),
    SourceInstance("api-3", "i-0a3a3a3a3a3a3a3a3", "c5.large", {"team": "api"}),
)


@dataclass
class OfflineWorld:
    aws: OfflineAws
    bucket: str
    inbox_url: str  # an SQS queue subscribed to the notifications topic: what subscribers would receive
    state_machine_arn: str
    parameters: dict[str, str]
    sources: dict[str, str]  # name -> instance id
    baseline: set[str]  # resource ids that existed before any capture ran

    def client(self, service: str) -> Any:
        # Any service by name, for tests: boto3's stubs type a client only for a literal service name.
        return boto3.client(service, region_name=self.aws.region)  # type: ignore[call-overload]


def build_world(aws: OfflineAws, parameter_overrides: dict[str, str] | None = None) -> OfflineWorld:
    """Create the account and deploy the stack into it. Call inside `with aws:`."""
    template = load_template()
    parameters = {**parameter_defaults(template), **(parameter_overrides or {})}
    ec2 = boto3.client("ec2", region_name=aws.region)
    iam = boto3.client("iam", region_name=aws.region)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{aws.region}a")["Subnet"][
        "SubnetId"
    ]
    image_id = boto3.client("ssm", region_name=aws.region).get_parameter(Name=SOURCE_IMAGE_PARAMETER)["Parameter"][
        "Value"
    ]
    sources = {source.name: _launch_source(ec2, aws, subnet_id, image_id, source) for source in SOURCE_INSTANCES}

    boto3.client("s3", region_name=aws.region).create_bucket(Bucket=CAPTURE_BUCKET)
    boto3.client("dynamodb", region_name=aws.region).create_table(
        TableName=LOCK_TABLE,
        AttributeDefinitions=[{"AttributeName": "source", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "source", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn = boto3.client("sns", region_name=aws.region).create_topic(Name="mirrorcap-offline-captures")["TopicArn"]
    inbox_url = _subscribe_inbox(aws.region, topic_arn)
    collector_role = _role(iam, "mirrorcap-offline-collector", "ec2.amazonaws.com")
    profile = iam.create_instance_profile(InstanceProfileName="mirrorcap-offline-collector")["InstanceProfile"]
    iam.add_role_to_instance_profile(
        InstanceProfileName=profile["InstanceProfileName"], RoleName="mirrorcap-offline-collector"
    )

    # The template's path for the signer: StartCapture and RenewUploadGrant may assume roles under it.
    signer_trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ID}, "Action": "sts:AssumeRole"}],
    }
    upload_signer = iam.create_role(
        RoleName="mirrorcap-offline-upload-signer",
        Path=f"/mirrorcap/{STACK_NAME}/",
        AssumeRolePolicyDocument=json.dumps(signer_trust),
    )["Role"]["Arn"]

    context = TemplateContext(
        stack_name=STACK_NAME,
        region=aws.region,
        account_id=ACCOUNT_ID,
        parameters=parameters,
        physical_ids={
            "CaptureBucket": CAPTURE_BUCKET,
            "CollectorRole": "mirrorcap-offline-collector",
            "SourceLockTable": LOCK_TABLE,
            "CaptureNotificationsTopic": topic_arn,
        },
        attributes={
            "CaptureBucket.Arn": f"arn:aws:s3:::{CAPTURE_BUCKET}",
            "CollectorInstanceProfile.Arn": profile["Arn"],
            "CollectorRole.Arn": collector_role,
            "UploadSignerRole.Arn": upload_signer,
            "SourceLockTable.Arn": f"arn:aws:dynamodb:{aws.region}:{ACCOUNT_ID}:table/{LOCK_TABLE}",
        },
    )
    function_arns = _deploy_functions(
        aws, template, context, _role(iam, "mirrorcap-offline-functions", "lambda.amazonaws.com")
    )
    context.attributes.update({f"{name}.Arn": arn for name, arn in function_arns.items()})
    state_machine_arn = _deploy_state_machine(
        aws, template, context, _role(iam, "mirrorcap-offline-states", "states.amazonaws.com")
    )
    return OfflineWorld(
        aws=aws,
        bucket=CAPTURE_BUCKET,
        inbox_url=inbox_url,
        state_machine_arn=state_machine_arn,
        parameters=parameters,
        sources=sources,
        baseline=_existing_ids(ec2),
    )


def _subscribe_inbox(region: str, topic_arn: str) -> str:
    sqs = boto3.client("sqs", region_name=region)
    queue_url = sqs.create_queue(QueueName="mirrorcap-offline-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=region).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def _launch_source(ec2: Any, aws: OfflineAws, subnet_id: str, image_id: str, source: SourceInstance) -> str:
    tags = [{"Key": "Name", "Value": source.name}, *({"Key": k, "Value": v} for k, v in source.tags.items())]
    # moto draws instance ids at random; the sample events need these exact ones.
    with mock.patch("moto.ec2.models.instances.random_instance_id", return_value=source.instance_id):
        ec2.run_instances(
            ImageId=image_id,
            InstanceType=source.instance_type,
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet_id,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
    # Sources were up long before anyone thought of capturing them.
    aws.lifecycle.advance_now(source.instance_id)
    return source.instance_id


def _role(iam: Any, name: str, service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# runs in-process offline; see mirrorcap_tools.emulation.lambda_runtime\n")
    return buffer.getvalue()


def load_handler(code_uri: str) -> Any:
    """Import functions/<step>/app.py under a unique module name and return its lambda_handler."""
    path = PROJECT_ROOT / code_uri / "app.py"
    spec = importlib.util.spec_from_file_location(f"mirrorcap_function_{Path(code_uri).name}", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def _deploy_functions(aws: OfflineAws, template: dict, context: TemplateContext, role_arn: str) -> dict[str, str]:
    lambda_client = boto3.client("lambda", region_name=aws.region)
    global_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    arns = {}
    for name, spec in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = spec["Properties"]
        arns[name] = lambda_client.create_function(
            FunctionName=name,
            Runtime=template["Globals"]["Function"]["Runtime"],
            Role=role_arn,
            Handler="app.lambda_handler",
            Code={"ZipFile": _empty_zip()},
        )["FunctionArn"]
        aws.lambdas.register(name, load_handler(properties["CodeUri"]))
        # All functions share one process offline: the union of their environments (they do not conflict).
        own_env = properties.get("Environment", {}).get("Variables", {})
        os.environ.update({k: str(context.resolve(v)) for k, v in {**global_env, **own_env}.items()})
    return arns


def _deploy_state_machine(aws: OfflineAws, template: dict, context: TemplateContext, role_arn: str) -> str:
    properties = template["Resources"]["CaptureStateMachine"]["Properties"]
    definition = (PROJECT_ROOT / properties["DefinitionUri"]).read_text()
    for key, value in properties["DefinitionSubstitutions"].items():
        definition = definition.replace("${" + key + "}", str(context.resolve(value)))
    return boto3.client("stepfunctions", region_name=aws.region).create_state_machine(
        name=context.resolve(properties["Name"]), definition=definition, roleArn=role_arn, type="STANDARD"
    )["stateMachineArn"]


def _existing_ids(ec2: Any) -> set[str]:
    ids = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    ids |= {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    return ids

"""`make e2e`'s refusals, its SAM deploy and stack deletion, and its capture-object deletion, on moto."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from mirrorcap_tools.e2e import E2eOptions, Pacing, SamStacks, run_e2e
from mirrorcap_tools.e2e.cli import EXIT_PASSED, EXIT_REFUSED, main
from mirrorcap_tools.e2e.stack import E2E_TAG, delete_capture_objects
from moto import mock_aws

REGION = "us-east-1"
# What `sam deploy` would create, reduced to what the run reads back: the outputs and two physical ids.
STACK_TEMPLATE = {
    "Resources": {
        "SourceLockTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "AttributeDefinitions": [{"AttributeName": "source", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "source", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
        "FunctionRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": []}}},
        "SweepOrphansFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "app.lambda_handler",
                "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                "Code": {"ZipFile": "def lambda_handler(event, context): return {}"},
            },
        },
        "CaptureBucket": {"Type": "AWS::S3::Bucket"},
    },
    "Outputs": {
        "StateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:stateMachine:e2e-capture"},
        "CaptureBucketName": {"Value": {"Ref": "CaptureBucket"}},
    },
}


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where boto3's credential chain finds nothing (and asks no metadata service)."""
    for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def _subnet(session: boto3.session.Session) -> tuple[str, str]:
    ec2 = session.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"], vpc_id


def test_refuses_without_a_subnet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--region", REGION]) == EXIT_REFUSED
    assert "no subnet: make e2e SUBNET_ID=subnet-..." in capsys.readouterr().err


def test_refuses_without_credentials(no_credentials, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--subnet-id", "subnet-0123456789abcdef0", "--region", REGION]) == EXIT_REFUSED
    assert "no AWS credentials: make e2e needs credentials that can deploy" in capsys.readouterr().err


def test_refuses_an_unknown_profile(no_credentials, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--subnet-id", "subnet-0123456789abcdef0", "--profile", "nobody"]) == EXIT_REFUSED
    assert "check --profile / AWS_PROFILE" in capsys.readouterr().err


def test_preflight_names_the_account_and_refuses_a_missing_subnet(account, capsys) -> None:
    subnet_id, vpc_id = _subnet(account)
    lines: list[str] = []

    assert main(["--subnet-id", subnet_id, "--region", REGION, "--preflight"], out=lines.append) == EXIT_PASSED
    assert lines == [
        f"make e2e: account 123456789012 as arn:aws:sts::123456789012:user/moto, region {REGION}, "
        f"subnet {subnet_id} in {vpc_id}"
    ]
    assert main(["--subnet-id", "subnet-0000000000000000f", "--region", REGION, "--preflight"]) == EXIT_REFUSED
    assert "subnet subnet-0000000000000000f not found in us-east-1" in capsys.readouterr().err


def test_never_deploys_over_or_deletes_a_stack_it_did_not_make(account, capsys) -> None:
    subnet_id, _ = _subnet(account)
    cloudformation = account.client("cloudformation")
    cloudformation.create_stack(StackName="mirrorcap-prod", TemplateBody=json.dumps(STACK_TEMPLATE))
    commands: list[list[str]] = []
    stacks = SamStacks(run=lambda command, cwd, log: commands.append(command), log=lambda _: None)
    pacing = Pacing(poll_seconds=0.01, instance_timeout_seconds=5, execution_timeout_seconds=5, sweep_rounds=1)

    report = run_e2e(account, E2eOptions(subnet_id, "mirrorcap-prod"), stacks, pacing, log=lambda _: None)

    assert report.error and report.error.startswith("RefusedToRun: stack mirrorcap-prod exists and was not made")
    assert report.cleanup == [] and commands == []
    assert cloudformation.describe_stacks(StackName="mirrorcap-prod")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    # The preflight says so before anything is installed or deployed.
    argv = ["--subnet-id", subnet_id, "--region", REGION, "--stack-name", "mirrorcap-prod", "--preflight"]
    assert main(argv, out=lambda _: None) == EXIT_REFUSED
    assert "choose another --stack-name" in capsys.readouterr().err


def test_sam_deploy_reads_the_stack_back_and_delete_removes_it(account) -> None:
    cloudformation = account.client("cloudformation")
    commands: list[list[str]] = []

    def sam(command: list[str], cwd: Path, log: object) -> None:
        commands.append(command)
        if command[1] == "deploy":  # what sam deploy leaves behind: the tagged stack
            cloudformation.create_stack(
                StackName="mirrorcap-e2e-abc123",
                TemplateBody=json.dumps(STACK_TEMPLATE),
                Tags=[{"Key": E2E_TAG, "Value": "mirrorcap-e2e-abc123"}],
            )

    stacks = SamStacks(sam=".venv-sam/bin/sam", region=REGION, profile="sandbox", run=sam, log=lambda _: None)
    stacks.claim(account, "mirrorcap-e2e-abc123")
    deployed = stacks.deploy(account, "mirrorcap-e2e-abc123")

    assert commands == [
        [".venv-sam/bin/sam", "build", "--template-file", "template.yaml"],
        [".venv-sam/bin/sam", "deploy", "--stack-name", "mirrorcap-e2e-abc123", "--resolve-s3",
         "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND", "--no-confirm-changeset",
         "--no-fail-on-empty-changeset", "--tags", "mirrorcap-e2e=mirrorcap-e2e-abc123",
         "--region", REGION, "--profile", "sandbox"],
    ]  # fmt: skip
    assert deployed.state_machine_arn == "arn:aws:states:us-east-1:123456789012:stateMachine:e2e-capture"
    assert deployed.bucket.startswith("mirrorcap-e2e-abc123-capturebucket-")
    assert deployed.lock_table.startswith("mirrorcap-e2e-abc123-SourceLockTable-")
    assert deployed.sweeper_function.startswith("mirrorcap-e2e-abc123-SweepOrphansFunction-")
    assert deployed.function_names == (deployed.sweeper_function,)
    stacks.claim(account, "mirrorcap-e2e-abc123")  # its own stack, from an earlier --keep-stack run: fine

    done = stacks.delete(account, "mirrorcap-e2e-abc123", keep_bucket=False)

    assert done == "stack mirrorcap-e2e-abc123 deleted, and the log groups of its 1 functions"
    assert stacks.delete(account, "mirrorcap-e2e-abc123", keep_bucket=False) == (
        "stack mirrorcap-e2e-abc123 does not exist: nothing to delete"
    )


def test_deleting_captures_removes_every_version_under_the_prefix(account) -> None:
    s3 = account.client("s3")
    s3.create_bucket(Bucket="captures-versioned")
    s3.put_bucket_versioning(Bucket="captures-versioned", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"first", b"second"):
        s3.put_object(Bucket="captures-versioned", Key="captures/mc-1/manifest.json", Body=body)
    s3.put_object(Bucket="captures-versioned", Key="captures/mc-1/report.html", Body=b"<html>")
    s3.delete_object(Bucket="captures-versioned", Key="captures/mc-1/report.html")  # leaves a delete marker
    s3.put_object(Bucket="captures-versioned", Key="captures/mc-2/manifest.json", Body=b"other capture")

    assert delete_capture_objects(account, "captures-versioned", prefix="captures/mc-1/") == 4

    left = s3.list_object_versions(Bucket="captures-versioned")
    assert [v["Key"] for v in left.get("Versions", [])] == ["captures/mc-2/manifest.json"]
    assert left.get("DeleteMarkers", []) == []

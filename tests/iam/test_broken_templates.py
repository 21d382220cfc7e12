"""The check must reject templates with the mistakes it exists to catch. Each variant edits the loaded
template (never a copy of the file) and asserts the finding that names the mistake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mirrorcap_tools.iam.check import check
from mirrorcap_tools.template import load_template


def _statements(template: dict, resource: str) -> list[dict]:
    properties = template["Resources"][resource]["Properties"]
    if "PolicyDocument" in properties:
        return properties["PolicyDocument"]["Statement"]
    return [s for policy in properties["Policies"] if "Statement" in policy for s in policy["Statement"]]


def _by_sid(template: dict, resource: str, sid: str) -> dict:
    (statement,) = [s for s in _statements(template, resource) if s.get("Sid") == sid]
    return statement


def _tag_condition_on_source_eni(template: dict) -> None:
    statement = _by_sid(template, "CreateMirrorSessionFunction", "MirrorAnySourceInterface")
    statement["Condition"] = {"StringEquals": {"aws:ResourceTag/mirrorcap:managed-by": "mirrorcap"}}


def _tag_condition_on_subnet(template: dict) -> None:
    statement = _by_sid(template, "LaunchCollectorFunction", "LaunchIntoTheSourceSubnet")
    statement["Condition"] = {"StringEquals": {"aws:ResourceTag/mirrorcap:managed-by": "mirrorcap"}}


def _request_tag_condition_on_source_eni(template: dict) -> None:
    statement = _by_sid(template, "CreateMirrorSessionFunction", "MirrorAnySourceInterface")
    statement["Condition"] = {"StringEquals": {"aws:RequestTag/mirrorcap:managed-by": "mirrorcap"}}


def _list_bucket_under_prefix_only(template: dict) -> None:
    statement = _by_sid(template, "CollectCaptureFunction", "ListTheCaptureBucket")
    statement["Condition"] = {"StringLike": {"s3:prefix": "captures/*"}}


def _misspelled_action(template: dict) -> None:
    _by_sid(template, "CleanupPolicy", "TerminateOnlyCollectors")["Action"] = "ec2:TerminateInstance"


def _document_arn_with_account(template: dict) -> None:
    (statement,) = [s for s in _statements(template, "SendToCollectorsPolicy") if "document/" in str(s["Resource"])]
    statement["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/AWS-RunShellScript"
    }


def _abort_removed(template: dict) -> None:
    for statement in _statements(template, "ReportCaptureFunction"):
        if isinstance(statement["Action"], list) and "s3:AbortMultipartUpload" in statement["Action"]:
            statement["Action"].remove("s3:AbortMultipartUpload")


def _actions_of_different_resource_types_in_one_statement(template: dict) -> None:
    statement = _by_sid(template, "CreateMirrorSessionFunction", "CreateOnlyTaggedMirrorTargets")
    statement["Action"] = ["ec2:CreateTrafficMirrorTarget", "ec2:CreateTrafficMirrorFilter"]


def _any_image(template: dict) -> None:
    del _by_sid(template, "LaunchCollectorFunction", "LaunchFromAmazonImagesOnly")["Condition"]


def _terminate_trusting_the_tag_only(template: dict) -> None:
    del _by_sid(template, "CleanupPolicy", "TerminateOnlyCollectors")["Condition"]["ArnEquals"]


def _collector_may_read_parameters(template: dict) -> None:
    del template["Resources"]["CollectorRole"]["Properties"]["Policies"]


def _any_public_parameter(template: dict) -> None:
    statement = _by_sid(template, "LaunchCollectorFunction", "ReadOnlyTheAl2023AmiParameters")
    statement["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/aws/service/ami-amazon-linux-latest/*"
    }


def _kms_statements_dropped(template: dict) -> None:
    policy = template["Resources"]["LaunchCollectorFunction"]["Properties"]["Policies"][0]
    policy["Statement"] = [s for s in policy["Statement"] if "Fn::If" not in s]


BROKEN: dict[str, tuple[Callable[[dict], None], list[str]]] = {
    "tag condition on the source ENI": (
        _tag_condition_on_source_eni,
        ["simulation: CreateMirrorSessionFunction ec2:CreateTrafficMirrorSession on "
         "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-0123456789abcdef0: DENIED"],
    ),
    "tag condition on the subnet": (
        _tag_condition_on_subnet,
        ["simulation: LaunchCollectorFunction ec2:RunInstances on "
         "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0123456789abcdef0: DENIED"],
    ),
    "misspelled action": (
        _misspelled_action,
        ["lint: CleanupPolicy#4 (TerminateOnlyCollectors): ec2:TerminateInstance: no such action",
         "ec2:TerminateInstances on arn:aws:ec2:us-east-1:123456789012:instance/i-0c011ec7000000001: DENIED"],
    ),
    "document ARN with an account id": (
        _document_arn_with_account,
        ["simulation: StartCaptureFunction ssm:SendCommand on arn:aws:ssm:us-east-1::document/AWS-RunShellScript: DENIED",
         "simulation: RenewUploadGrantFunction ssm:SendCommand on arn:aws:ssm:us-east-1::document/AWS-RunShellScript: DENIED"],
    ),
    "missing grant: s3:AbortMultipartUpload": (
        _abort_removed,
        ["simulation: ReportCaptureFunction s3:AbortMultipartUpload on arn:aws:s3:::mirrorcap-capturebucket-1a2b3c4d5e6f"
         "/captures/mc-20260101t100000z-23456789ab-1f2e3d/decapsulated.pcap: DENIED"],
    ),
    "actions of different resource types in one statement": (
        _actions_of_different_resource_types_in_one_statement,
        ["ec2:CreateTrafficMirrorFilter is never authorized against "
         "arn:aws:ec2:us-east-1:123456789012:traffic-mirror-target/*"],
    ),
    "RequestTag condition on a resource the call does not create": (
        _request_tag_condition_on_source_eni,
        ["condition key aws:RequestTag/mirrorcap:managed-by does not apply to ec2:CreateTrafficMirrorSession "
         "on ['network-interface']"],
    ),
    "ListBucket only under a prefix (a missing manifest would be 403)": (
        _list_bucket_under_prefix_only,
        ["simulation: CollectCaptureFunction s3:ListBucket on arn:aws:s3:::mirrorcap-capturebucket-1a2b3c4d5e6f: DENIED"],
    ),
    "any AMI": (
        _any_image,
        ["must be denied (collectors boot Amazon's images only): LaunchCollectorFunction ec2:RunInstances on "
         "arn:aws:ec2:us-east-1::image/ami-0deadbeef0000000: allowed"],
    ),
    "terminate trusting the tag only": (
        _terminate_trusting_the_tag_only,
        ["SweepOrphansFunction ec2:TerminateInstances on arn:aws:ec2:us-east-1:123456789012:instance/i-0000000000000prod: allowed",
         "TeardownCaptureFunction ec2:TerminateInstances on arn:aws:ec2:us-east-1:123456789012:instance/i-0000000000000prod: allowed"],
    ),
    "any public parameter": (
        _any_public_parameter,
        ["LaunchCollectorFunction ssm:GetParameter on arn:aws:ssm:us-east-1::parameter/aws/service/"
         "ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2: allowed"],
    ),
    "collector may read parameters": (
        _collector_may_read_parameters,
        ["CollectorRole ssm:GetParameter on arn:aws:ssm:us-east-1:123456789012:parameter/prod/db-password: DENIED: "
         "no Allow statement matches (implicit deny)"],
    ),
    "KMS statements without their key": (
        _kms_statements_dropped,
        ["simulation [CollectorKmsKeyArn set]: LaunchCollectorFunction kms:CreateGrant on "
         "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab: DENIED"],
    ),
}  # fmt: skip


def _broken(edit: Callable[[dict], None]) -> dict[str, Any]:
    template = load_template()
    edit(template)
    return template


@pytest.mark.parametrize("name", list(BROKEN))
def test_the_check_rejects_each_broken_template_for_its_mistake(name: str) -> None:
    edit, expected = BROKEN[name]
    problems = check(_broken(edit)).problems
    print(f"\n{name}: rejected for {len(problems)} problem(s), first: {problems[0] if problems else None}")
    assert expected
    for fragment in expected:
        assert any(fragment in problem for problem in problems), (fragment, problems)


def test_the_untouched_template_has_none_of_those_findings() -> None:
    assert check().problems == []

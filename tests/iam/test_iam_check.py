"""The IAM check over the real template: no lint finding, every declared call allowed, the evaluator and
the reference data behave as IAM and AWS's tables do."""

from __future__ import annotations

import pytest
from mirrorcap_tools.iam.calls import CALLS, FORBIDDEN_CALLS, KMS_CALLS
from mirrorcap_tools.iam.check import check
from mirrorcap_tools.iam.evaluate import conditions_hold, decide
from mirrorcap_tools.iam.expansion import Statement, expand
from mirrorcap_tools.iam.reference import load_reference


def test_the_template_passes_the_whole_check_and_the_counts_are_printed() -> None:
    report = check()
    print(f"\n{report.summary()}")
    assert report.problems == []
    assert report.statements >= 50 and report.action_resource_pairs >= report.statements
    assert report.simulated_calls == len(CALLS) + len(KMS_CALLS) + len(FORBIDDEN_CALLS)


def test_every_function_has_calls_in_the_table() -> None:
    assert {call.principal for call in CALLS} >= set(expand().function_roles)


def test_reference_data_knows_required_resource_types_and_arn_formats() -> None:
    reference = load_reference()
    session = reference.action("EC2:createtrafficmirrorsession")  # IAM action names are case-insensitive
    assert session is not None
    assert session.required_resource_types == {
        "network-interface", "traffic-mirror-filter", "traffic-mirror-session", "traffic-mirror-target"
    }  # fmt: skip
    document = reference.resource_type("ssm", "document")
    assert document is not None and document.matches("arn:aws:ssm:us-east-1::document/AWS-RunShellScript")
    bucket, obj = reference.resource_type("s3", "bucket"), reference.resource_type("s3", "object")
    assert bucket is not None and obj is not None
    assert bucket.matches("arn:aws:s3:::b") and not bucket.matches("arn:aws:s3:::b/captures/*")
    assert obj.matches("arn:aws:s3:::b/captures/*")
    assert reference.action("ec2:TerminateInstance") is None
    assert {a.name for a in reference.actions_matching("kms:ReEncrypt*")} == {"ReEncryptFrom", "ReEncryptTo"}


def _statement(document: dict) -> Statement:
    return Statement("test", 0, document)


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"StringEquals": {"aws:ResourceTag/k": "v"}}, {"aws:resourcetag/k": "v"}, True),
        ({"StringEquals": {"aws:ResourceTag/k": "v"}}, {}, False),  # a missing key fails
        ({"StringEqualsIfExists": {"aws:ResourceTag/k": "v"}}, {}, True),
        ({"StringNotEquals": {"aws:ResourceTag/k": "v"}}, {"aws:resourcetag/k": "w"}, True),
        ({"StringLike": {"s3:prefix": "captures/*"}}, {"s3:prefix": "captures/mc-1/"}, True),
        ({"StringLike": {"s3:prefix": "captures/*"}}, {"s3:prefix": "other/"}, False),
        ({"ArnEquals": {"ec2:InstanceProfile": "arn:aws:iam::1:instance-profile/p"}},
         {"ec2:instanceprofile": "arn:aws:iam::1:instance-profile/q"}, False),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::b*"}}, {"aws:sourcearn": "arn:aws:s3:::bucket"}, True),
        ({"Bool": {"kms:GrantIsForAWSResource": "true"}}, {"kms:grantisforawsresource": True}, True),
        ({"Bool": {"kms:GrantIsForAWSResource": "true"}}, {"kms:grantisforawsresource": False}, False),
        ({"Null": {"aws:RequestTag/k": "true"}}, {}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:tagkeys": ["a"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:tagkeys": ["a", "c"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}}, {"aws:tagkeys": ["a", "c"]}, True),
        # every operator of a block must hold
        ({"StringEquals": {"aws:ResourceTag/k": "v"}, "Bool": {"aws:SecureTransport": "true"}},
         {"aws:resourcetag/k": "v", "aws:securetransport": False}, False),
    ],
)  # fmt: skip
def test_conditions_evaluate_like_iam(condition: dict, context: dict, holds: bool) -> None:
    assert conditions_hold(condition, context) is holds


def test_an_explicit_deny_wins_over_any_allow() -> None:
    statements = [
        _statement({"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}),
        _statement({"Effect": "Deny", "Action": ["ssm:GetParameter"], "Resource": "*"}),
    ]
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/x"
    assert not decide(statements, "ssm:GetParameter", arn, {}).allowed
    assert decide(statements, "ssm:SendCommand", arn, {}).allowed
    assert not decide(statements[:1], "ec2:RunInstances", "*", {}).allowed  # implicit deny


def test_the_upload_signer_is_assumable_by_the_grant_minting_steps_only_for_an_hour() -> None:
    stack = expand()
    signer = stack.template["Resources"]["UploadSignerRole"]["Properties"]
    (trust,) = signer["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"]["AWS"] == [
        stack.role_of("StartCaptureFunction").arn,
        stack.role_of("RenewUploadGrantFunction").arn,
    ]
    assert signer["MaxSessionDuration"] == 3600  # AssumeRole from a Lambda is role chaining: one hour at most


def test_the_collector_role_is_for_ec2_of_this_account_only() -> None:
    collector = expand().template["Resources"]["CollectorRole"]["Properties"]
    (trust,) = collector["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}

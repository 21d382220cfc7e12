"""Every AWS call mirrorcap's code makes, as IAM authorizes it: the principal, the action, each resource
AWS checks for that action (its type, an example ARN, the tags it has) and the request context.

tests/iam/test_calls_match_offline_runs.py keeps this table equal to what the offline runs call, and
`simulate` checks each entry against the principal's policies. Resource types and condition keys are
AWS's (reference.py): an entry may not name a resource type the action is not authorized against, must
name every one AWS marks required, and a context key reaches a resource only where AWS lists it for that
action and resource type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mirrorcap_tools.iam.evaluate import ContextValue
from mirrorcap_tools.iam.expansion import ACCOUNT, REGION, STACK
from mirrorcap_tools.iam.reference import ACTION_LEVEL

EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
BUCKET = f"arn:aws:s3:::{STACK}-capturebucket-1a2b3c4d5e6f"
CAPTURE_ID = "mc-20260101t100000z-23456789ab-1f2e3d"
COLLECTOR_PROFILE = f"arn:aws:iam::{ACCOUNT}:instance-profile/{STACK}-CollectorInstanceProfile"
COLLECTOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-CollectorRole"
UPLOAD_SIGNER = f"arn:aws:iam::{ACCOUNT}:role/mirrorcap/{STACK}/{STACK}-UploadSignerRole"
STATE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-capture"

# What mirrorcap puts on everything it creates (naming.resource_tags); the offline cross-check compares
# these keys with the TagSpecifications the code really sends.
MIRRORCAP_TAGS = {
    "Name": f"mirrorcap {CAPTURE_ID}",
    "mirrorcap:managed-by": "mirrorcap",
    "mirrorcap:capture-id": CAPTURE_ID,
    "mirrorcap:source-instance": "i-0123456789abcdef0",
    "mirrorcap:execution": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK}-capture:offline-1",
}
COLLECTOR_TAGS = {**MIRRORCAP_TAGS, "mirrorcap:capture-seconds": "300", "mirrorcap:expires-at": "2026-01-01T11:35:00Z"}
NOT_OURS: dict[str, str] = {"Name": "web-1"}  # the source instance's, the subnet's: never mirrorcap's tags


@dataclass(frozen=True)
class Resource:
    type: str  # AWS's resource type name for the action; "" for actions without resource-level permissions
    arn: str
    tags: dict[str, str] = field(default_factory=dict)  # the tags it already has (-> ResourceTag keys)
    request_tags: dict[str, str] | None = None  # created by the call, with these tags (-> RequestTag keys)
    context: dict[str, ContextValue] = field(default_factory=dict)  # keys about this resource (ec2:Owner)


@dataclass(frozen=True)
class Call:
    principal: str  # function logical id, or a role's logical id
    action: str
    resources: tuple[Resource, ...]
    context: dict[str, ContextValue] = field(default_factory=dict)  # keys about the request
    observed_as: tuple[str, ...] = ()  # API operations of the offline ledger that make this call
    not_observed_because: str = ""  # why no offline run can see it (then observed_as is empty)
    only_with: dict[str, str] = field(default_factory=dict)  # template parameters under which the call exists


# Resource types AWS marks required that are alternatives, not companions, for mirrorcap's calls.
NOT_APPLICABLE_REQUIRED_TYPES = {
    ("states:DescribeExecution", "express"): "the capture workflow is a STANDARD state machine: execution ARNs only",
}


def _any() -> tuple[Resource, ...]:
    return (Resource(ACTION_LEVEL, "*"),)


def _describe(principal: str, *actions: str) -> list[Call]:
    return [Call(principal, action, _any(), observed_as=(action,)) for action in actions]


SECURITY_GROUP = Resource("security-group", f"{EC2}:security-group/sg-0c011ec7000000001", tags=MIRRORCAP_TAGS)
COLLECTOR_ENI = f"{EC2}:network-interface/eni-0c011ec7000000001"
SOURCE_ENI = Resource("network-interface", f"{EC2}:network-interface/eni-0123456789abcdef0", tags=NOT_OURS)
TARGET = Resource("traffic-mirror-target", f"{EC2}:traffic-mirror-target/tmt-0c011ec7000000001", tags=MIRRORCAP_TAGS)
FILTER = Resource("traffic-mirror-filter", f"{EC2}:traffic-mirror-filter/tmf-0c011ec7000000001", tags=MIRRORCAP_TAGS)
SESSION = Resource("traffic-mirror-session", f"{EC2}:traffic-mirror-session/tms-0c011ec7000000001", tags=MIRRORCAP_TAGS)
COLLECTOR = Resource(
    "instance",
    f"{EC2}:instance/i-0c011ec7000000001",
    tags=COLLECTOR_TAGS,
    context={"ec2:InstanceProfile": COLLECTOR_PROFILE},
)
CAPTURE_OBJECT = f"{BUCKET}/captures/{CAPTURE_ID}"
LOCK_TABLE = Resource("table", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-SourceLockTable")
AL2023_PARAMETER = f"arn:aws:ssm:{REGION}::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default"


def _created(resource: Resource) -> Resource:
    return Resource(resource.type, resource.arn, request_tags=dict(resource.tags), context=dict(resource.context))


def _tag_on_create(principal: str, create_action: str, *created: Resource) -> Call:
    # EC2 authorizes tags given at creation as ec2:CreateTags with ec2:CreateAction = the create call
    # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
    return Call(
        principal,
        "ec2:CreateTags",
        tuple(_created(r) for r in created),
        context={"ec2:CreateAction": create_action.split(":")[1]},
        observed_as=(create_action,),
    )


CALLS: list[Call] = [
    *_describe("ResolveRequestFunction", "ec2:DescribeInstances", "ec2:DescribeInstanceTypes"),
    *_describe("ResolveRequestFunction", "ec2:DescribeTrafficMirrorTargets", "ec2:DescribeTrafficMirrorSessions"),
    Call("FanOutFunction", "states:StartExecution", (Resource("statemachine", STATE_MACHINE),),
         observed_as=("states:StartExecution",)),
    Call("LockSourceFunction", "dynamodb:PutItem", (LOCK_TABLE,), observed_as=("dynamodb:PutItem",)),
    Call("LockSourceFunction", "dynamodb:GetItem", (LOCK_TABLE,), observed_as=("dynamodb:GetItem",)),
    # LaunchCollector
    *_describe("LaunchCollectorFunction", "ec2:DescribeInstanceTypes", "ec2:DescribeImages"),
    *_describe("LaunchCollectorFunction", "ec2:DescribeSecurityGroups"),
    *[
        Call("LaunchCollectorFunction", "ssm:GetParameter", (Resource("parameter", f"{AL2023_PARAMETER}-{arch}"),),
             observed_as=("ssm:GetParameter",))
        for arch in ("x86_64", "arm64")
    ],
    Call("LaunchCollectorFunction", "ec2:CreateSecurityGroup",
         (_created(SECURITY_GROUP), Resource("vpc", f"{EC2}:vpc/vpc-0123456789abcdef0", tags=NOT_OURS)),
         observed_as=("ec2:CreateSecurityGroup",)),
    _tag_on_create("LaunchCollectorFunction", "ec2:CreateSecurityGroup", SECURITY_GROUP),
    *[
        Call("LaunchCollectorFunction", action, (SECURITY_GROUP,), observed_as=(action,))
        for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
                       "ec2:RevokeSecurityGroupEgress")
    ],
    Call(
        "LaunchCollectorFunction",
        "ec2:RunInstances",
        (
            _created(COLLECTOR),
            Resource("volume", f"{EC2}:volume/vol-0c011ec7000000001", request_tags=COLLECTOR_TAGS),
            Resource("network-interface", COLLECTOR_ENI, request_tags=COLLECTOR_TAGS),
            SECURITY_GROUP,
            Resource("subnet", f"{EC2}:subnet/subnet-0123456789abcdef0", tags=NOT_OURS),
            # Amazon's AL2023 images: public, owned by amazon, in no account.
            Resource("image", f"arn:aws:ec2:{REGION}::image/ami-0a1b2c3d4e5f60718", context={"ec2:Owner": "amazon"}),
        ),
        observed_as=("ec2:RunInstances",),
    ),
    _tag_on_create(
        "LaunchCollectorFunction",
        "ec2:RunInstances",
        COLLECTOR,
        Resource("volume", f"{EC2}:volume/vol-0c011ec7000000001", tags=COLLECTOR_TAGS),
        Resource("network-interface", COLLECTOR_ENI, tags=COLLECTOR_TAGS),
    ),
    # RunInstances with an instance profile passes its role (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html)
    Call("LaunchCollectorFunction", "iam:PassRole", (Resource("role", COLLECTOR_ROLE),),
         context={"iam:PassedToService": "ec2.amazonaws.com"}, observed_as=("ec2:RunInstances",)),
    # CheckCollectorReady
    *_describe("CheckCollectorReadyFunction", "ec2:DescribeInstances", "ssm:DescribeInstanceInformation"),
    # CreateMirrorSession
    *_describe("CreateMirrorSessionFunction", "ec2:DescribeTrafficMirrorTargets", "ec2:DescribeTrafficMirrorFilters"),
    *_describe("CreateMirrorSessionFunction", "ec2:DescribeTrafficMirrorSessions"),
    Call("CreateMirrorSessionFunction", "ec2:CreateTrafficMirrorTarget",
         (_created(TARGET), Resource("network-interface", COLLECTOR_ENI, tags=COLLECTOR_TAGS)),
         observed_as=("ec2:CreateTrafficMirrorTarget",)),
    Call("CreateMirrorSessionFunction", "ec2:CreateTrafficMirrorFilter", (_created(FILTER),),
         observed_as=("ec2:CreateTrafficMirrorFilter",)),
    Call("CreateMirrorSessionFunction", "ec2:CreateTrafficMirrorFilterRule",
         (FILTER, Resource("traffic-mirror-filter-rule", f"{EC2}:traffic-mirror-filter-rule/tmfr-0c011ec7000000001")),
         observed_as=("ec2:CreateTrafficMirrorFilterRule",)),
    Call("CreateMirrorSessionFunction", "ec2:ModifyTrafficMirrorFilterNetworkServices", (FILTER,),
         observed_as=("ec2:ModifyTrafficMirrorFilterNetworkServices",)),
    # The session: new (request tags), on the SOURCE interface (someone else's), to our target, with our filter.
    Call("CreateMirrorSessionFunction", "ec2:CreateTrafficMirrorSession",
         (_created(SESSION), SOURCE_ENI, TARGET, FILTER), observed_as=("ec2:CreateTrafficMirrorSession",)),
    *[
        _tag_on_create("CreateMirrorSessionFunction", f"ec2:CreateTrafficMirror{kind.title()}", resource)
        for kind, resource in (("target", TARGET), ("filter", FILTER), ("session", SESSION))
    ],
    # StartCapture, RenewUploadGrant: run the script on the collector, with a grant signed by the signer.
    *[
        call
        for principal in ("StartCaptureFunction", "RenewUploadGrantFunction")
        for call in (
            Call(principal, "ssm:SendCommand",
                 (COLLECTOR, Resource("document", f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript")),
                 observed_as=("ssm:SendCommand",)),
            Call(principal, "sts:AssumeRole",
                 (Resource("role", UPLOAD_SIGNER),),
                 observed_as=("sts:AssumeRole",)),
        )
    ],
    *_describe("StartCaptureFunction", "ssm:ListCommands"),
    Call("UploadSignerRole", "s3:PutObject", (Resource("object", f"{CAPTURE_OBJECT}/{CAPTURE_ID}-0001.pcap"),),
         not_observed_because="the collector uploads with the signer's presigned POST; the ledger sees functions"),
    # CollectCapture
    *_describe("CollectCaptureFunction", "ssm:GetCommandInvocation"),
    Call("CollectCaptureFunction", "s3:GetObject", (Resource("object", f"{CAPTURE_OBJECT}/manifest.json"),),
         observed_as=("s3:GetObject",)),
    Call("CollectCaptureFunction", "s3:ListBucket", (Resource("bucket", BUCKET),),
         context={"s3:prefix": f"captures/{CAPTURE_ID}/"}, observed_as=("s3:ListObjectsV2",)),
    # A GetObject of a key that does not exist (no manifest yet) is answered 404 NoSuchKey only if the caller
    # may s3:ListBucket the bucket, checked with no prefix; otherwise 403 AccessDenied
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions").
    Call("CollectCaptureFunction", "s3:ListBucket", (Resource("bucket", BUCKET),), observed_as=("s3:GetObject",)),
    # Teardown and the sweeper: delete only what mirrorcap made (tags) and, for instances, only collectors.
    *[
        call
        for principal in ("TeardownCaptureFunction", "SweepOrphansFunction")
        for call in (
            *_describe(principal, "ec2:DescribeInstances", "ec2:DescribeSecurityGroups"),
            *_describe(principal, "ec2:DescribeTrafficMirrorTargets", "ec2:DescribeTrafficMirrorFilters"),
            *_describe(principal, "ec2:DescribeTrafficMirrorSessions"),
            Call(principal, "ec2:DeleteTrafficMirrorSession", (SESSION,),
                 observed_as=("ec2:DeleteTrafficMirrorSession",)),
            Call(principal, "ec2:DeleteTrafficMirrorFilter", (FILTER,), observed_as=("ec2:DeleteTrafficMirrorFilter",)),
            Call(principal, "ec2:DeleteTrafficMirrorTarget", (TARGET,), observed_as=("ec2:DeleteTrafficMirrorTarget",)),
            Call(principal, "ec2:TerminateInstances", (COLLECTOR,), observed_as=("ec2:TerminateInstances",)),
            Call(principal, "ec2:DeleteSecurityGroup", (SECURITY_GROUP,), observed_as=("ec2:DeleteSecurityGroup",)),
            Call(principal, "dynamodb:DeleteItem", (LOCK_TABLE,), observed_as=("dynamodb:DeleteItem",)),
        )
    ],
    Call("SweepOrphansFunction", "states:DescribeExecution",
         (Resource("execution", f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK}-capture:offline-1"),),
         observed_as=("states:DescribeExecution",)),
    Call("SweepOrphansFunction", "dynamodb:Scan", (LOCK_TABLE,), observed_as=("dynamodb:Scan",)),
    # ReportCapture: reads the pcaps, writes the report (s3transfer: multipart for large files, aborted on
    # failure), links it, notifies.
    Call("ReportCaptureFunction", "s3:GetObject", (Resource("object", f"{CAPTURE_OBJECT}/manifest.json"),),
         observed_as=("s3:GetObject", "s3:HeadObject")),
    Call("ReportCaptureFunction", "s3:PutObject", (Resource("object", f"{CAPTURE_OBJECT}/decapsulated.pcap"),),
         observed_as=("s3:PutObject", "s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload")),
    Call("ReportCaptureFunction", "s3:AbortMultipartUpload",
         (Resource("object", f"{CAPTURE_OBJECT}/decapsulated.pcap"),),
         observed_as=("s3:AbortMultipartUpload",),
         not_observed_because="s3transfer aborts a multipart upload only when one fails; the offline files are small"),
    Call("ReportCaptureFunction", "sns:Publish",
         (Resource("topic", f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-CaptureNotificationsTopic"),),
         observed_as=("sns:Publish",)),
]  # fmt: skip

# With CollectorKmsKeyArn set, EBS uses the key on LaunchCollector's behalf to encrypt the collector's volume
# (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html).
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_CALLS: list[Call] = [
    Call("LaunchCollectorFunction", action, (Resource("key", KMS_KEY),),
         context={"kms:ViaService": f"ec2.{REGION}.amazonaws.com", **extra},
         not_observed_because="EBS calls KMS on the launch's behalf; the emulation has no KMS",
         only_with={"CollectorKmsKeyArn": KMS_KEY})
    for action, extra in (
        ("kms:CreateGrant", {"kms:GrantIsForAWSResource": True}),
        ("kms:Decrypt", {}),
        ("kms:GenerateDataKeyWithoutPlaintext", {}),
        ("kms:ReEncryptFrom", {}),
        ("kms:ReEncryptTo", {}),
        ("kms:DescribeKey", {}),
    )
]  # fmt: skip

# Calls that must be DENIED: what each role could do if a condition or a resource were missing. Each
# names why; the check fails if any is allowed.
PRODUCTION = Resource(
    "instance",
    f"{EC2}:instance/i-0000000000000prod",
    tags={"Name": "prod-db", "mirrorcap:managed-by": "mirrorcap"},  # someone with ec2:CreateTags tagged it
    context={"ec2:InstanceProfile": f"arn:aws:iam::{ACCOUNT}:instance-profile/prod-db"},
)
UNTAGGED_SESSION = Resource(
    "traffic-mirror-session", f"{EC2}:traffic-mirror-session/tms-0000000000000prod", tags=NOT_OURS
)
FORBIDDEN_CALLS: list[Call] = [
    *[
        Call("CollectorRole", action,
             (Resource("parameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/db-password"),),
             not_observed_because="the collector reads no parameter; its managed policy would allow all")
        for action in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath")
    ],
    *[
        Call(principal, "ec2:TerminateInstances", (PRODUCTION,),
             not_observed_because="a mirrorcap tag on an instance launched with another profile is not a collector")
        for principal in ("TeardownCaptureFunction", "SweepOrphansFunction")
    ],
    Call("SweepOrphansFunction", "ec2:DeleteTrafficMirrorSession", (UNTAGGED_SESSION,),
         not_observed_because="deletes only what carries the mirrorcap tag"),
    Call("LaunchCollectorFunction", "ec2:RunInstances",
         (Resource("image", f"arn:aws:ec2:{REGION}::image/ami-0deadbeef0000000",
                   context={"ec2:Owner": "aws-marketplace"}),),
         not_observed_because="collectors boot Amazon's images only"),
    Call("LaunchCollectorFunction", "ec2:RunInstances",
         (Resource("instance", f"{EC2}:instance/i-0c011ec7000000002", request_tags={"Name": "untagged"}),),
         not_observed_because="every collector carries mirrorcap:managed-by from its creation"),
    Call("LaunchCollectorFunction", "iam:PassRole", (Resource("role", f"arn:aws:iam::{ACCOUNT}:role/admin"),),
         context={"iam:PassedToService": "ec2.amazonaws.com"}, not_observed_because="passes the collector role only"),
    Call("LaunchCollectorFunction", "iam:PassRole", (Resource("role", COLLECTOR_ROLE),),
         context={"iam:PassedToService": "lambda.amazonaws.com"}, not_observed_because="and only to EC2"),
    *[
        Call("LaunchCollectorFunction", "ssm:GetParameter", (Resource("parameter", arn),),
             not_observed_because="reads the two AL2023 AMI parameters only")
        for arn in (
            f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/db-password",
            f"arn:aws:ssm:{REGION}::parameter/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2",
        )
    ],
    Call("StartCaptureFunction", "ssm:SendCommand",
         (Resource("instance", f"{EC2}:instance/i-0123456789abcdef0", tags=NOT_OURS),),
         not_observed_because="runs commands on collectors only, never on the source or any other instance"),
    Call("StartCaptureFunction", "ssm:SendCommand",
         (Resource("document", f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/SomeonesDocument"),),
         not_observed_because="runs AWS-RunShellScript only"),
    Call("CreateMirrorSessionFunction", "ec2:CreateTrafficMirrorTarget",
         (Resource("network-interface", f"{EC2}:network-interface/eni-0123456789abcdef0", tags=NOT_OURS),),
         not_observed_because="mirrors only to a collector's interface"),
    Call("UploadSignerRole", "s3:PutObject", (Resource("object", f"{BUCKET}/report.html"),),
         not_observed_because="grants upload under captures/ only"),
    *[
        Call(principal, "sts:AssumeRole", (Resource("role", UPLOAD_SIGNER),),
             not_observed_because="only the steps that mint upload grants may sign as the signer")
        for principal in ("LaunchCollectorFunction", "CollectCaptureFunction", "ReportCaptureFunction",
                          "TeardownCaptureFunction", "SweepOrphansFunction")
    ],
]  # fmt: skip

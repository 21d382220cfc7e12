"""Every AWS call each function makes offline is granted by that function's role in template.yaml.

A missing grant is the most common first-deploy failure; here it fails CI instead. The calls are
recorded per function while the real handlers run the trigger samples and the failure paths.
"""

from __future__ import annotations

import fnmatch

from mirrorcap_tools.offline.faults import Fault, FaultPlan
from mirrorcap_tools.offline.runner import instrument_functions, run_input
from mirrorcap_tools.template import load_template, resources_of_type
from test_sweeper import _start_and_wait_for

from tests.support import event_text

# API operation -> IAM action, where the two differ.
IAM_ACTION_FOR = {"s3:ListObjectsV2": "s3:ListBucket", "s3:HeadObject": "s3:GetObject"}
DESTRUCTIVE = ("ec2:Delete", "ec2:Terminate", "ec2:Revoke", "ec2:Authorize")


TEMPLATE = load_template()


def _statements(function: dict) -> list[dict]:
    """Inline statements and those of the template's managed policies the function references."""
    statements = []
    for policy in function["Properties"].get("Policies", []):
        if set(policy) == {"Ref"}:
            policy = TEMPLATE["Resources"][policy["Ref"]]["Properties"]["PolicyDocument"]
        statements += policy.get("Statement", [])
    return statements


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def _granted(statements: list[dict], action: str) -> bool:
    return any(
        s["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, pattern) for pattern in _actions(s))
        for s in statements
    )


def _exercise(world) -> set[tuple[str, str]]:
    calls: set[tuple[str, str]] = set()
    runs = [
        ("triggers/alarm.json", None),
        ("triggers/schedule.json", None),
        ("triggers/manual-long.json", None),  # long enough to renew its upload grant
        ("triggers/manual.json", FaultPlan([Fault.parse("ec2:CreateTrafficMirrorSession=NetworkInterfaceNotSupported")])),
        ("triggers/manual.json", FaultPlan([Fault("ssm", "SendCommand", "InvalidInstanceId")])),
        # A retried launch finds the security group its first attempt created.
        ("triggers/alarm-metric-math.json", FaultPlan([Fault("ec2", "RunInstances", "RequestLimitExceeded", times=1)])),
    ]  # fmt: skip
    for path, faults in runs:
        calls |= set(run_input(world, event_text(path), faults=faults).aws_calls)
    # A burst: the second execution finds the source locked.
    calls |= set(run_input(world, [event_text("triggers/alarm.json")] * 2).aws_calls)
    # The sweeper, after a run stopped mid-capture.
    ledger = instrument_functions(world, FaultPlan())
    arn = _start_and_wait_for(
        world, '{"instance_id": "i-0fedcba9876543210", "duration_seconds": 3600}', "WaitCaptureWindow"
    )
    world.client("stepfunctions").stop_execution(executionArn=arn)
    world.client("lambda").invoke(FunctionName="SweepOrphansFunction", Payload=b"{}")
    world.aws.clock.sleep(world.aws.lifecycle.shutdown_seconds + 5)
    world.client("lambda").invoke(FunctionName="SweepOrphansFunction", Payload=b"{}")
    return calls | ledger.calls


def test_every_call_is_granted_to_the_function_that_makes_it(offline) -> None:
    functions = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
    calls = _exercise(offline)

    missing = sorted(
        (function, IAM_ACTION_FOR.get(call, call))
        for function, call in calls
        if not _granted(_statements(functions[function]), IAM_ACTION_FOR.get(call, call))
    )
    assert not missing, f"calls the template does not grant: {missing}"
    called_by = {function for function, _ in calls}
    assert called_by == set(functions), f"functions never exercised: {set(functions) - called_by}"

    used = {(f, IAM_ACTION_FOR.get(c, c)) for f, c in calls}
    unused = sorted(
        (name, action)
        for name, spec in functions.items()
        for statement in _statements(spec)
        for action in _actions(statement)
        if not any(f == name and fnmatch.fnmatchcase(a, action) for f, a in used)
    )
    print(
        f"\nIAM: {len(used)} distinct (function, action) calls made offline, all granted; granted but not exercised: {unused}"
    )
    # Only grants whose calls the offline paths cannot reach may stay unused (each named, with why).
    assert set(unused) <= {
        (
            "LaunchCollectorFunction",
            "iam:PassRole",
        ),  # RunInstances checks it; the API call itself is RunInstances
        ("CreateMirrorSessionFunction", "ec2:CreateTags"),  # tags are set by TagSpecifications at creation
        ("LaunchCollectorFunction", "ec2:CreateTags"),  # idem
        (
            "CreateMirrorSessionFunction",
            "ec2:ModifyTrafficMirrorFilterNetworkServices",
        ),  # only with amazon-dns
    }, unused


def test_destructive_actions_are_scoped_to_mirrorcap_tags() -> None:
    for name, spec in resources_of_type(load_template(), "AWS::Serverless::Function").items():
        for statement in _statements(spec):
            destructive = [a for a in _actions(statement) if a.startswith(DESTRUCTIVE)]
            if not destructive:
                continue
            assert statement.get("Resource") != "*", (name, destructive)
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert condition.get("aws:ResourceTag/mirrorcap:managed-by") == "mirrorcap", (name, destructive)


def test_creates_require_the_mirrorcap_tag() -> None:
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    for name in ("LaunchCollectorFunction", "CreateMirrorSessionFunction"):
        for statement in _statements(functions[name]):
            sid = statement.get("Sid", "")
            if sid.startswith("CreateOnly") or sid.startswith("LaunchOnly"):
                assert statement["Condition"]["StringEquals"]["aws:RequestTag/mirrorcap:managed-by"] == "mirrorcap"


def test_pass_role_only_for_the_collector_role_to_ec2() -> None:
    launch = resources_of_type(load_template(), "AWS::Serverless::Function")["LaunchCollectorFunction"]
    passes = [s for s in _statements(launch) if "iam:PassRole" in _actions(s)]
    assert len(passes) == 1
    assert passes[0]["Resource"] == {"Fn::GetAtt": ["CollectorRole", "Arn"]}
    assert passes[0]["Condition"]["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"


def test_the_upload_signer_writes_captures_only_and_only_the_grant_minting_steps_assume_it() -> None:
    template = load_template()
    signer = template["Resources"]["UploadSignerRole"]["Properties"]
    (trust,) = signer["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"]["AWS"] == [
        {"Fn::GetAtt": ["StartCaptureFunctionRole", "Arn"]},
        {"Fn::GetAtt": ["RenewUploadGrantFunctionRole", "Arn"]},
    ]
    (policy,) = signer["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Fn::Sub": "${CaptureBucket.Arn}/captures/*"}}
    ]
    assert signer["MaxSessionDuration"] == 3600  # AssumeRole from a Lambda is role chaining: one hour at most
    # Functions assume it by its path (the trust policy already names their roles).
    path = signer["Path"]["Fn::Sub"]
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assumers = sorted(
        name
        for name, spec in functions.items()
        for statement in _statements(spec)
        if "sts:AssumeRole" in _actions(statement)
    )
    assert assumers == ["RenewUploadGrantFunction", "StartCaptureFunction"]
    for name in assumers:
        (statement,) = [s for s in _statements(functions[name]) if "sts:AssumeRole" in _actions(s)]
        assert statement["Resource"]["Fn::Sub"].endswith(f":role{path}*")

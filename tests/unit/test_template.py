"""template.yaml: what the offline runner cannot show (it deploys the same template) is checked here."""

from __future__ import annotations

import json

import pytest
from mirrorcap.settings import Settings
from mirrorcap_tools.offline.world import load_handler
from mirrorcap_tools.template import PROJECT_ROOT, load_template, resources_of_type

from tests.support import EVENTS

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_code_exists_and_exposes_a_handler(name: str) -> None:
    handler = load_handler(FUNCTIONS[name]["Properties"]["CodeUri"])

    assert callable(handler)
    assert FUNCTIONS[name]["Metadata"] == {"BuildMethod": "makefile", "ContextPath": "."}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_sample_event_matches_the_function_input_model(name: str) -> None:
    sample = EVENTS / "functions" / f"{name}.json"
    handler = load_handler(FUNCTIONS[name]["Properties"]["CodeUri"])

    handler.input_model.model_validate(json.loads(sample.read_text()))


def test_every_build_target_exists_in_the_makefile() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for name in [*FUNCTIONS, "MirrorcapLayer"]:
        assert f"build-{name}" in makefile or name in makefile.split("FUNCTIONS :=")[1].split("\n\n")[0], name


def test_settings_and_template_environment_agree() -> None:
    aliases = {field.alias for field in Settings.model_fields.values()}
    own = {k for spec in FUNCTIONS.values() for k in spec["Properties"].get("Environment", {}).get("Variables", {})}
    template_vars = {k for k in GLOBAL_ENV if not k.startswith("POWERTOOLS_")} | own
    assert template_vars <= aliases, template_vars - aliases
    required = {f.alias for f in Settings.model_fields.values() if f.is_required()}
    assert required <= template_vars


def test_runtime_is_current() -> None:
    assert TEMPLATE["Globals"]["Function"]["Runtime"] in ("python3.13", "python3.14")
    assert RESOURCES["MirrorcapLayer"]["Properties"]["CompatibleRuntimes"] == [
        TEMPLATE["Globals"]["Function"]["Runtime"]
    ]


def test_state_machine_is_standard_logged_and_traced() -> None:
    properties = RESOURCES["CaptureStateMachine"]["Properties"]
    assert properties["Type"] == "STANDARD"  # Express stops at 5 minutes
    assert properties["Logging"]["Level"] == "ALL"
    assert properties["Tracing"] == {"Enabled": True}
    assert properties["DefinitionUri"].startswith("statemachine/")


def test_alarm_rule_only_takes_opted_in_alarms_going_to_alarm() -> None:
    pattern = RESOURCES["CaptureStateMachine"]["Properties"]["Events"]["OptedInAlarm"]["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"]["state"]["value"] == ["ALARM"]
    assert pattern["detail"]["alarmName"] == [{"prefix": {"Ref": "AlarmNamePrefix"}}]


def test_sampling_schedule_is_off_by_default_and_its_input_is_valid() -> None:
    from mirrorcap.models import ScheduledSampleRequest

    schedule = RESOURCES["CaptureStateMachine"]["Properties"]["Events"]["SamplingSchedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert TEMPLATE["Parameters"]["SampleScheduleState"]["Default"] == "DISABLED"
    ScheduledSampleRequest.model_validate_json(TEMPLATE["Parameters"]["SampleScheduleInput"]["Default"])


def test_capture_bucket_is_private_encrypted_tls_only_and_expiring() -> None:
    bucket = RESOURCES["CaptureBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "CaptureRetentionDays"}
    (deny,) = RESOURCES["CaptureBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_collectors_have_no_s3_permission_of_their_own() -> None:
    """They upload with a per-capture grant (a presigned POST) instead: an instance-profile permission
    would be shared by every collector and so reach every capture's prefix."""
    role = RESOURCES["CollectorRole"]["Properties"]
    # Its only policy of its own takes away (SSM parameters, docs/iam.md); nothing is allowed.
    statements = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    assert all(s["Effect"] == "Deny" for s in statements), statements
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    ]


def test_parameters_have_safe_defaults() -> None:
    parameters = TEMPLATE["Parameters"]
    assert int(parameters["DefaultCaptureSeconds"]["Default"]) <= int(parameters["MaxCaptureSeconds"]["Default"])
    for name, spec in parameters.items():
        assert "Default" in spec, f"{name} has no default: `sam deploy --guided` should need no answers"

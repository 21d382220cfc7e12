"""Each step's decisions, with the AWS adapters replaced by fakes: what a refusal, a throttle, an
eventual-consistency miss or a half-finished earlier attempt means for the step. Fast (no moto)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from mirrorcap import runtime
from mirrorcap.aws import artifacts, commands, executions, instances, locks, mirroring
from mirrorcap.errors import (
    AwsRequestFailed,
    AwsThrottled,
    CaptureCommandFailed,
    CaptureStillRunning,
    CollectorLaunchFailed,
    CollectorNotReady,
    MirrorSetupFailed,
    SourceAlreadyCapturing,
)
from mirrorcap.models import (
    CheckCollectorReadyInput,
    CollectCaptureInput,
    CreateMirrorSessionInput,
    FanOutInput,
    LaunchCollectorInput,
    LockSourceInput,
    TeardownCaptureInput,
)
from mirrorcap.settings import load_settings
from mirrorcap.steps.check_collector_ready import check_collector_ready
from mirrorcap.steps.collect_capture import collect_capture
from mirrorcap.steps.create_mirror_session import create_mirror_session
from mirrorcap.steps.fan_out import fan_out
from mirrorcap.steps.launch_collector import launch_collector
from mirrorcap.steps.lock_source import lock_source
from mirrorcap.steps.teardown_capture import teardown_capture

from tests.support import event

SETTINGS = load_settings(
    {
        "CAPTURE_BUCKET": "mirrorcap-captures-123456789012",
        "COLLECTOR_INSTANCE_PROFILE_ARN": "arn:aws:iam::123456789012:instance-profile/mirrorcap-collector",
        "LOCK_TABLE": "mirrorcap-locks",
        "UPLOAD_SIGNER_ROLE_ARN": "arn:aws:iam::123456789012:role/mirrorcap/mirrorcap/signer",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:mirrorcap-capture",
    }
)
COLLECTOR_STEP = event("functions/CheckCollectorReadyFunction.json")
COLLECT_STEP = event("functions/CollectCaptureFunction.json")


def refused(code: str, operation: str = "call") -> AwsRequestFailed:
    return AwsRequestFailed(operation, code, f"AWS says {code}")


def raises(exc: Exception):
    def call(*_: Any, **__: Any) -> Any:
        raise exc

    return call


# --- The one place AWS errors are translated -----------------------------------------------------------


@pytest.fixture
def stubbed_ec2():
    clients = runtime.AwsClients(
        boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    )
    runtime.configure(clients=clients)
    with Stubber(clients.ec2) as stub:
        yield stub
    runtime.configure()


def test_throttling_that_outlives_the_sdk_retries_becomes_aws_throttled(stubbed_ec2) -> None:
    stubbed_ec2.add_client_error("describe_traffic_mirror_sessions", "RequestLimitExceeded", "Request limit exceeded.")

    with pytest.raises(AwsThrottled, match="sessions_on_interface: RequestLimitExceeded"):
        mirroring.sessions_on_interface("eni-0123456789abcdef0")


def test_any_other_refusal_keeps_aws_code_and_message(stubbed_ec2) -> None:
    stubbed_ec2.add_client_error(
        "create_traffic_mirror_session", "TrafficMirrorSessionsPerInterfaceLimitExceeded", "3 sessions already"
    )

    with pytest.raises(AwsRequestFailed) as refusal:
        mirroring.create_session(
            {
                "NetworkInterfaceId": "eni-1",
                "TrafficMirrorTargetId": "tmt-1",
                "TrafficMirrorFilterId": "tmf-1",
                "SessionNumber": 1,
            }
        )

    assert refusal.value.code == "TrafficMirrorSessionsPerInterfaceLimitExceeded"
    assert refusal.value.aws_message == "3 sessions already"
    assert refusal.value.operation == "create_session"
    assert not isinstance(refusal.value, AwsThrottled)


def test_the_places_that_once_missed_throttling_now_retry(stubbed_ec2, monkeypatch) -> None:
    """The reviewer's four: filter rules, the session number lookup, the security-group lookup, the lock
    holder's read. Each now reaches the state machine as AwsThrottled (retried), not a plain failure."""
    stubbed_ec2.add_client_error("describe_traffic_mirror_filters", "RequestLimitExceeded")
    stubbed_ec2.add_client_error("describe_traffic_mirror_sessions", "RequestLimitExceeded")
    stubbed_ec2.add_client_error("describe_security_groups", "RequestLimitExceeded")
    for call in (
        lambda: mirroring.describe_filter("tmf-0123456789abcdef0"),
        lambda: mirroring.sessions_on_interface("eni-0123456789abcdef0"),
        lambda: instances.security_groups_matching([{"Name": "group-name", "Values": ["x"]}]),
    ):
        with pytest.raises(AwsThrottled):
            call()


# --- LockSource ------------------------------------------------------------------------------------------


def test_a_held_lock_ends_the_request_naming_the_holder(monkeypatch) -> None:
    monkeypatch.setattr(locks, "write_lock_if_free", lambda *a, **k: False)
    monkeypatch.setattr(locks, "read_lock", lambda table, source: {"capture_id": "mc-other", "acquired_at": "09:00"})

    with pytest.raises(SourceAlreadyCapturing, match="being captured by mc-other .since 09:00.; nothing was created"):
        lock_source(LockSourceInput.model_validate(COLLECTOR_STEP), SETTINGS)


# --- LaunchCollector -------------------------------------------------------------------------------------


@pytest.fixture
def launchable(monkeypatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        instances, "describe_instance_type", lambda t: {"ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}}
    )
    monkeypatch.setattr(instances, "al2023_image_id", lambda arch: f"ami-{arch}")
    monkeypatch.setattr(instances, "describe_image", lambda image: {"RootDeviceName": "/dev/xvda"})
    monkeypatch.setattr(instances, "create_security_group", raises(refused("InvalidGroup.Duplicate")))
    monkeypatch.setattr(instances, "security_groups_matching", lambda filters: [{"GroupId": "sg-first-attempt"}])
    for change in ("authorize_ingress", "revoke_egress", "authorize_egress"):
        monkeypatch.setattr(instances, change, raises(refused("InvalidPermission.Duplicate")))

    def run_instance(params: dict[str, Any]) -> dict[str, Any]:
        seen.update(params)
        interface = {"NetworkInterfaceId": "eni-collector", "PrivateIpAddress": "10.0.1.9"}
        return {"InstanceId": "i-collector", "InstanceType": "t3.medium", "NetworkInterfaces": [interface]}

    monkeypatch.setattr(instances, "run_instance", run_instance)
    return seen


def test_a_retried_launch_reuses_the_first_attempts_security_group(launchable) -> None:
    launched = launch_collector(LaunchCollectorInput.model_validate(COLLECTOR_STEP), SETTINGS)

    assert launched.security_group_id == "sg-first-attempt"
    assert launchable["SecurityGroupIds"] == ["sg-first-attempt"]
    assert launchable["ImageId"] == "ami-x86_64"
    assert launchable["MetadataOptions"]["HttpTokens"] == "required"
    (volume,) = launchable["BlockDeviceMappings"]
    assert volume["Ebs"]["Encrypted"] is True and "KmsKeyId" not in volume["Ebs"]


def test_a_customer_managed_kms_key_encrypts_the_collector_volume(launchable) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = SETTINGS.model_copy(update={"collector_kms_key_arn": key})

    launch_collector(LaunchCollectorInput.model_validate(COLLECTOR_STEP), settings)

    assert launchable["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == key


def test_a_refused_launch_names_aws_code(launchable, monkeypatch) -> None:
    monkeypatch.setattr(instances, "run_instance", raises(refused("InsufficientInstanceCapacity")))

    with pytest.raises(CollectorLaunchFailed, match="run_instances: InsufficientInstanceCapacity"):
        launch_collector(LaunchCollectorInput.model_validate(COLLECTOR_STEP), SETTINGS)


# --- CheckCollectorReady ---------------------------------------------------------------------------------


def _ready_input(**collector: Any) -> CheckCollectorReadyInput:
    data = CheckCollectorReadyInput.model_validate(COLLECTOR_STEP)
    return data.model_copy(update={"collector": data.collector.model_copy(update=collector)})


@pytest.fixture
def clock():
    """Set the step's clock: `clock(seconds)` is that long after the collector's launch."""
    launched_at = _ready_input().collector.launched_at
    yield lambda seconds: runtime.configure(clock=lambda: launched_at + timedelta(seconds=seconds))
    runtime.configure()


def test_an_instance_ec2_does_not_show_yet_is_pending_not_gone(monkeypatch, clock) -> None:
    monkeypatch.setattr(instances, "describe_instance", raises(refused("InvalidInstanceID.NotFound")))
    clock(5)

    readiness = check_collector_ready(_ready_input(), SETTINGS)

    assert readiness.ready is False and readiness.instance_state == "pending"


def test_a_collector_ec2_terminated_at_launch_for_its_kms_key_says_which_parameter_fixes_it(monkeypatch) -> None:
    terminated = {
        "State": {"Name": "terminated"},
        "StateReason": {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"},
    }
    monkeypatch.setattr(instances, "describe_instance", lambda instance_id: terminated)

    with pytest.raises(CollectorLaunchFailed, match="set the template parameter CollectorKmsKeyArn"):
        check_collector_ready(_ready_input(), SETTINGS)


def test_past_the_deadline_an_offline_agent_is_not_ready(monkeypatch, clock) -> None:
    monkeypatch.setattr(instances, "describe_instance", lambda instance_id: {"State": {"Name": "running"}})
    monkeypatch.setattr(commands, "agent_ping_status", lambda instance_id: None)
    clock(SETTINGS.readiness_timeout_seconds)

    with pytest.raises(CollectorNotReady, match="SSM agent not registered"):
        check_collector_ready(_ready_input(), SETTINGS)


# --- CreateMirrorSession ---------------------------------------------------------------------------------


@pytest.fixture
def empty_account(monkeypatch) -> dict[str, list]:
    made: dict[str, list] = {"rules": []}
    for listing in ("all_sessions", "all_filters", "all_targets"):
        monkeypatch.setattr(mirroring, listing, lambda: [])
    monkeypatch.setattr(mirroring, "create_target", lambda *a: "tmt-new")
    monkeypatch.setattr(mirroring, "create_filter", lambda *a: "tmf-new")
    monkeypatch.setattr(
        mirroring,
        "describe_filter",
        lambda filter_id: {"IngressFilterRules": [{"TrafficDirection": "ingress", "RuleNumber": 10}]},
    )
    monkeypatch.setattr(mirroring, "create_filter_rule", lambda request: made["rules"].append(request))
    monkeypatch.setattr(mirroring, "sessions_on_interface", lambda eni: [{"SessionNumber": 1}])
    return made


def test_mirror_setup_adds_only_the_rules_an_earlier_attempt_did_not(empty_account, monkeypatch) -> None:
    sessions: list[dict] = []
    monkeypatch.setattr(
        mirroring,
        "create_session",
        lambda p: sessions.append(p) or {"TrafficMirrorSessionId": "tms-new", "SessionNumber": p["SessionNumber"]},
    )

    mirror = create_mirror_session(CreateMirrorSessionInput.model_validate(COLLECTOR_STEP), SETTINGS)

    assert [r["TrafficDirection"] for r in empty_account["rules"]] == ["egress"]  # ingress 10 was there
    assert sessions[0]["SessionNumber"] == 2  # 1 is taken on the source interface
    assert sessions[0]["VirtualNetworkId"] == mirror.vni
    assert mirror.session_id == "tms-new"


def test_a_refused_session_is_a_setup_failure_with_aws_code(empty_account, monkeypatch) -> None:
    monkeypatch.setattr(mirroring, "create_session", raises(refused("NetworkInterfaceNotSupported", "create_session")))

    with pytest.raises(MirrorSetupFailed, match="create_session: NetworkInterfaceNotSupported"):
        create_mirror_session(CreateMirrorSessionInput.model_validate(COLLECTOR_STEP), SETTINGS)


def test_a_throttled_mirror_call_stays_throttled_for_the_state_machine_to_retry(empty_account, monkeypatch) -> None:
    monkeypatch.setattr(
        mirroring, "create_filter_rule", raises(AwsThrottled("create_filter_rule: RequestLimitExceeded"))
    )

    with pytest.raises(AwsThrottled):
        create_mirror_session(CreateMirrorSessionInput.model_validate(COLLECTOR_STEP), SETTINGS)


# --- CollectCapture --------------------------------------------------------------------------------------


def test_a_command_still_running_is_retried(monkeypatch) -> None:
    monkeypatch.setattr(commands, "command_invocation", lambda c, i: {"Status": "InProgress"})

    with pytest.raises(CaptureStillRunning):
        collect_capture(CollectCaptureInput.model_validate(COLLECT_STEP), SETTINGS)


@pytest.mark.parametrize("code", ["NoSuchKey", "AccessDenied"])
def test_a_missing_manifest_fails_with_a_message_that_survives_s3s_403(monkeypatch, code: str) -> None:
    """Without an unconditioned s3:ListBucket, S3 answers a missing key with 403, not 404."""
    monkeypatch.setattr(commands, "command_invocation", lambda c, i: {"Status": "Success"})
    monkeypatch.setattr(artifacts, "read_object", raises(refused(code, "read_object")))

    with pytest.raises(CaptureCommandFailed, match=f"no manifest.json could be read .*S3 answered {code}"):
        collect_capture(CollectCaptureInput.model_validate(COLLECT_STEP), SETTINGS)


# --- TeardownCapture -------------------------------------------------------------------------------------


@pytest.fixture
def leftovers(monkeypatch) -> dict[str, list]:
    tags = [{"Key": "mirrorcap:managed-by", "Value": "mirrorcap"},
            {"Key": "mirrorcap:capture-id", "Value": COLLECTOR_STEP["capture"]["capture_id"]}]  # fmt: skip
    calls: dict[str, list] = {"deleted": []}
    monkeypatch.setattr(mirroring, "all_sessions", lambda: [{"TrafficMirrorSessionId": "tms-1", "Tags": tags}])
    monkeypatch.setattr(mirroring, "all_filters", lambda: [{"TrafficMirrorFilterId": "tmf-1", "Tags": tags}])
    monkeypatch.setattr(mirroring, "all_targets", lambda: [{"TrafficMirrorTargetId": "tmt-1", "Tags": tags}])
    monkeypatch.setattr(
        instances, "instances_matching", lambda f: [{"InstanceId": "i-c", "State": {"Name": "running"}}]
    )
    monkeypatch.setattr(instances, "security_groups_matching", lambda f: [{"GroupId": "sg-c"}])
    monkeypatch.setattr(
        instances,
        "terminate_instances",
        lambda ids: [{"InstanceId": i, "CurrentState": {"Name": "shutting-down"}} for i in ids],
    )
    for delete in ("delete_session", "delete_filter", "delete_target"):
        monkeypatch.setattr(mirroring, delete, lambda resource_id: calls["deleted"].append(resource_id))
    monkeypatch.setattr(instances, "delete_security_group", lambda group_id: calls["deleted"].append(group_id))
    monkeypatch.setattr(locks, "delete_lock_if_held", lambda *a: True)
    return calls


def _teardown_input() -> TeardownCaptureInput:
    return TeardownCaptureInput.model_validate(
        {**COLLECTOR_STEP, "teardown": {"attempt": 0, "complete": False, "deleted": [], "pending": []}}
    )


def test_teardown_deletes_in_aws_order_and_waits_for_the_collector_before_its_group(leftovers) -> None:
    progress = teardown_capture(_teardown_input(), SETTINGS)

    assert leftovers["deleted"] == ["tms-1", "tmf-1", "tmt-1"]
    assert progress.pending == ["i-c", "sg-c"] and progress.complete is False  # the lock stays until then


def test_teardown_counts_not_found_as_done_and_in_use_as_not_yet(leftovers, monkeypatch) -> None:
    monkeypatch.setattr(mirroring, "delete_session", raises(refused("InvalidTrafficMirrorSessionId.NotFound")))
    monkeypatch.setattr(mirroring, "delete_filter", raises(refused("TrafficMirrorFilterInUse")))

    progress = teardown_capture(_teardown_input(), SETTINGS)

    assert "tms-1" not in progress.pending and "tmf-1" in progress.pending
    assert "tmt-1" in progress.deleted


def test_teardown_does_not_swallow_throttling_or_unknown_refusals(leftovers, monkeypatch) -> None:
    monkeypatch.setattr(mirroring, "delete_session", raises(AwsThrottled("delete_session: RequestLimitExceeded")))
    with pytest.raises(AwsThrottled):
        teardown_capture(_teardown_input(), SETTINGS)

    monkeypatch.setattr(mirroring, "delete_session", raises(refused("UnauthorizedOperation")))
    with pytest.raises(AwsRequestFailed, match="UnauthorizedOperation"):
        teardown_capture(_teardown_input(), SETTINGS)


# --- FanOut ----------------------------------------------------------------------------------------------


def test_fan_out_counts_an_execution_an_earlier_attempt_started(monkeypatch) -> None:
    monkeypatch.setattr(executions, "start_execution", raises(refused("ExecutionAlreadyExists")))
    data = FanOutInput.model_validate(event("functions/FanOutFunction.json"))

    started = fan_out(data, SETTINGS).started

    assert [s.execution_arn.rsplit(":", 1)[1] for s in started] == [r.capture_id for r in data.fanout]
    assert all(":execution:mirrorcap-capture:" in s.execution_arn for s in started)

"""The backstop: executions stopped mid-capture leave resources (Catch does not run); a sweep removes them,
and never touches what mirrorcap did not create or what a running capture still uses."""

from __future__ import annotations

import json

from mirrorcap.naming import resource_tags, tag_specifications
from mirrorcap.tagged import managed_resources
from mirrorcap_tools.offline.world import LOCK_TABLE

from tests.support import event_text, start_and_wait_for


def _sweep(world) -> dict:
    response = world.client("lambda").invoke(FunctionName="SweepOrphansFunction", Payload=b"{}")
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload


def _locks(world) -> list[dict]:
    return world.client("dynamodb").scan(TableName=LOCK_TABLE)["Items"]


def _everything_gone(world) -> bool:
    return not managed_resources() and not _locks(world)


def test_stopped_mid_capture_is_swept_clean(offline) -> None:
    document = json.dumps({"instance_id": "i-0123456789abcdef0", "duration_seconds": 3600})
    arn = start_and_wait_for(offline, document, "WaitCaptureWindow")
    offline.client("stepfunctions").stop_execution(executionArn=arn, cause="operator stopped it")
    left = managed_resources()
    assert left.instances and left.sessions and _locks(offline), "a stopped run leaves everything behind"

    first = _sweep(offline)
    offline.aws.clock.sleep(offline.aws.lifecycle.shutdown_seconds + 5)  # the collector shuts down
    second = _sweep(offline)

    print(f"\nsweeper: stopped run -> first sweep deleted {len(first['deleted'])}, waited on {first['pending']}, "
          f"second sweep deleted {second['deleted']}")  # fmt: skip
    assert len(first["swept"]) == 1 and first["locks_released"]
    assert _everything_gone(offline)


def test_run_whose_execution_is_gone_is_swept(offline) -> None:
    ec2 = offline.client("ec2")
    vpc_id = ec2.describe_vpcs()["Vpcs"][-1]["VpcId"]
    tags = resource_tags(
        "mc-orphan-000",
        "i-0123456789abcdef0",
        "arn:aws:states:us-east-1:123456789012:execution:mirrorcap-offline-capture:expired",
    )
    ec2.create_security_group(GroupName="orphan", Description="left by a run whose history expired", VpcId=vpc_id,
                              TagSpecifications=tag_specifications("security-group", tags))  # fmt: skip

    report = _sweep(offline)

    assert report["swept"] == ["mc-orphan-000"]
    assert _everything_gone(offline)


def test_sweep_never_touches_untagged_or_running_captures(offline) -> None:
    ec2 = offline.client("ec2")
    vpc_id = ec2.describe_vpcs()["Vpcs"][-1]["VpcId"]
    foreign = ec2.create_security_group(GroupName="someone-elses", Description="not mirrorcap", VpcId=vpc_id)["GroupId"]
    foreign_filter = ec2.create_traffic_mirror_filter(Description="security team's own")["TrafficMirrorFilter"]
    arn = start_and_wait_for(offline, json.dumps({"instance_id": "i-0123456789abcdef0", "duration_seconds": 3600}),
                              "WaitCaptureWindow")  # fmt: skip

    report = _sweep(offline)

    assert report["swept"] == [] and len(report["kept"]) == 1
    assert ec2.describe_security_groups(GroupIds=[foreign])["SecurityGroups"]
    assert ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[foreign_filter["TrafficMirrorFilterId"]])[
        "TrafficMirrorFilters"
    ]
    assert managed_resources().sessions, "the running capture keeps its session"
    offline.client("stepfunctions").stop_execution(executionArn=arn)


def test_dry_run_reports_without_deleting(offline) -> None:
    arn = start_and_wait_for(offline, event_text("triggers/manual.json").replace("120", "3600"), "WaitCaptureWindow")
    offline.client("stepfunctions").stop_execution(executionArn=arn)

    response = offline.client("lambda").invoke(FunctionName="SweepOrphansFunction", Payload=b'{"dry_run": true}')
    report = json.loads(response["Payload"].read())

    assert report["dry_run"] is True and len(report["swept"]) == 1 and report["deleted"] == []
    assert managed_resources().instances


def test_a_redriven_teardown_finishes_what_a_partial_one_left(offline) -> None:
    arn = start_and_wait_for(offline, json.dumps({"instance_id": "i-0123456789abcdef0", "duration_seconds": 3600}),
                              "WaitCaptureWindow")  # fmt: skip
    sfn = offline.client("stepfunctions")
    history = sfn.get_execution_history(executionArn=arn)["events"]
    sfn.stop_execution(executionArn=arn)
    capture = next(
        json.loads(e["stateExitedEventDetails"]["output"])["capture"]
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "ResolveRequest"
    )
    # A partial teardown: someone deleted the session and the filter by hand, then the run died.
    ec2 = offline.client("ec2")
    session = managed_resources(capture["capture_id"]).sessions[0]
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session["TrafficMirrorSessionId"])
    ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=session["TrafficMirrorFilterId"])

    # As PrepareTeardown starts it.
    teardown = {"capture": capture, "teardown": {"attempt": 0, "complete": False, "deleted": [], "pending": []}}
    rounds = []
    for _ in range(5):
        response = offline.client("lambda").invoke(FunctionName="TeardownCaptureFunction", Payload=json.dumps(teardown))
        teardown["teardown"] = json.loads(response["Payload"].read())
        rounds.append(teardown["teardown"])
        if teardown["teardown"]["complete"]:
            break
        offline.aws.clock.sleep(20)  # the state machine's WaitForTeardown

    assert rounds[-1]["complete"], rounds
    assert _everything_gone(offline)
    again = offline.client("lambda").invoke(FunctionName="TeardownCaptureFunction", Payload=json.dumps(teardown))
    assert json.loads(again["Payload"].read())["complete"], "a teardown of nothing is complete"


def test_a_collector_that_outlived_its_longest_run_is_swept(offline) -> None:
    """A run stuck past its maximum (say, an execution timeout Catch could not see) is not trusted."""
    arn = start_and_wait_for(offline, json.dumps({"instance_id": "i-0123456789abcdef0", "duration_seconds": 3600}),
                              "WaitCaptureWindow")  # fmt: skip
    (collector,) = managed_resources().instances
    offline.client("ec2").create_tags(
        Resources=[collector["InstanceId"]], Tags=[{"Key": "mirrorcap:expires-at", "Value": "2000-01-01T00:00:00Z"}]
    )

    report = _sweep(offline)

    assert len(report["swept"]) == 1 and collector["InstanceId"] in report["pending"] + report["deleted"]
    assert not managed_resources().sessions
    offline.client("stepfunctions").stop_execution(executionArn=arn)

"""`make e2e`'s own code, run against the emulated account so it is known to run before anyone pays for it.

Only the deploy is replaced (the world is already deployed from template.yaml). The source instance is
launched for real into the emulated subnet, the capture runs the real ASL and handlers, and the checks,
the sweep and every cleanup step make their real calls.
"""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError
from mirrorcap.naming import MANAGED_BY_VALUE, TAG_MANAGED_BY
from mirrorcap_tools.e2e import E2eOptions, run_e2e
from mirrorcap_tools.e2e.stack import E2E_TAG
from mirrorcap_tools.offline.faults import Fault, FaultPlan
from mirrorcap_tools.offline.runner import instrument_functions

RISK_CHECKS = {
    "collector instance credentials (role trust aws:SourceAccount)",
    "AMI owner condition (RunInstances allowed)",
    "encrypted collector volume",
}
CAPTURE_CHECKS = {
    "execution succeeded",
    "objects in S3",
    "pcap SHA-256s match the manifest",
    "HTTP in the capture",
    "nothing left tagged with the capture id",
}


def _session(world) -> boto3.session.Session:
    return boto3.session.Session(region_name=world.aws.region)


def _options(world, **overrides) -> E2eOptions:
    ec2 = world.client("ec2")
    web = ec2.describe_instances(InstanceIds=[world.sources["web-1"]])["Reservations"][0]["Instances"][0]
    return E2eOptions(subnet_id=web["SubnetId"], stack_name="mirrorcap-e2e-test", **overrides)


def _e2e_instances(world) -> list[dict]:
    reservations = world.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{E2E_TAG}", "Values": ["mirrorcap-e2e-test"]}]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def _live_mirrorcap_resources(world) -> list[str]:
    ec2 = world.client("ec2")
    managed = [{"Name": f"tag:{TAG_MANAGED_BY}", "Values": [MANAGED_BY_VALUE]}]
    left = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=managed)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    left += [g["GroupId"] for g in ec2.describe_security_groups(Filters=managed)["SecurityGroups"]]
    left += [s["TrafficMirrorSessionId"] for s in ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]]
    left += [t["TrafficMirrorTargetId"] for t in ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"]]
    return left


def test_e2e_passes_on_the_emulated_account_and_deletes_what_it_made(e2e_world, stacks, fast_pacing) -> None:
    instrument_functions(e2e_world, FaultPlan())
    lines: list[str] = []

    report = run_e2e(_session(e2e_world), _options(e2e_world), stacks, fast_pacing, log=lines.append)

    assert report.passed, report.text()
    assert {c.name for c in report.checks} == CAPTURE_CHECKS | RISK_CHECKS
    http = next(c for c in report.checks if c.name == "HTTP in the capture")
    assert "14 HTTP request(s), 14 response(s)" in http.detail  # the sample capture's (sample-capture.md)
    assert [c.step for c in report.cleanup] == [
        "stop the capture if it still runs, and sweep what it left",
        "terminate the source instance",
        "delete the source's security group",
        "delete the stack",
    ]
    assert report.cleanup[0].detail == "the capture had ended by itself"
    assert stacks.deletions == [("mirrorcap-e2e-test", True)]  # captures kept unless asked: bucket kept
    (source,) = _e2e_instances(e2e_world)
    assert source["State"]["Name"] == "terminated"
    assert source["InstanceType"] == "t3.micro"
    assert source["MetadataOptions"]["HttpTokens"] == "required"
    groups = e2e_world.client("ec2").describe_security_groups(
        Filters=[{"Name": f"tag:{E2E_TAG}", "Values": ["mirrorcap-e2e-test"]}]
    )["SecurityGroups"]
    assert groups == []
    assert report.notes == [f"captures kept in s3://{e2e_world.bucket}/captures/{report.capture_id}/"]
    assert report.cost and report.cost.lines[0].startswith("source t3.micro: ")
    assert report.cost.lines[1].startswith("collector (at most) t3.medium: ")
    assert any(line.startswith("PASS  encrypted collector volume: vol-") for line in lines), lines


def test_a_failure_midway_still_stops_the_capture_and_deletes_everything(e2e_world, stacks, fast_pacing) -> None:
    instrument_functions(e2e_world, FaultPlan())
    session = _session(e2e_world)

    def lose_the_network(**_: object) -> None:
        # The run's first look at the collector's volumes: the capture is under way, a collector exists.
        raise ClientError({"Error": {"Code": "RequestExpired", "Message": "injected"}}, "DescribeVolumes")

    session.events.register("before-call.ec2.DescribeVolumes", lose_the_network)

    report = run_e2e(session, _options(e2e_world, delete_captures=True), stacks, fast_pacing, log=lambda _: None)

    assert not report.passed
    assert report.error and "RequestExpired" in report.error, report.text()
    assert report.checks == []
    assert all(c.ok for c in report.cleanup), report.text()
    assert report.cleanup[0].detail.startswith("stopped the capture; "), report.text()
    execution = e2e_world.client("stepfunctions").describe_execution(executionArn=report.execution_arn)
    assert execution["status"] == "ABORTED"
    assert _live_mirrorcap_resources(e2e_world) == []  # the sweeper removed what the stopped run had made
    (source,) = _e2e_instances(e2e_world)
    assert source["State"]["Name"] == "terminated"
    assert stacks.deletions == [("mirrorcap-e2e-test", False)]


def test_a_failed_capture_is_a_failed_check_and_the_source_still_goes(e2e_world, stacks, fast_pacing) -> None:
    # The workflow itself fails after the collector exists: its own teardown runs, the e2e reports it.
    instrument_functions(e2e_world, FaultPlan([Fault.parse("lambda:CreateMirrorSessionFunction=crash")]))

    report = run_e2e(_session(e2e_world), _options(e2e_world), stacks, fast_pacing, log=lambda _: None)

    assert not report.passed and report.error is None
    results = {c.name: c for c in report.checks}
    assert not results["execution succeeded"].passed
    assert results["execution succeeded"].detail.startswith("FAILED: ")
    assert results["nothing left tagged with the capture id"].passed, results
    assert not results["objects in S3"].passed
    assert results["AMI owner condition (RunInstances allowed)"].passed
    (source,) = _e2e_instances(e2e_world)
    assert source["State"]["Name"] == "terminated"


def test_kept_stack_and_deleted_captures_remove_only_this_capture(e2e_world, stacks, fast_pacing) -> None:
    instrument_functions(e2e_world, FaultPlan())
    s3 = e2e_world.client("s3")
    s3.put_object(Bucket=e2e_world.bucket, Key="captures/an-earlier-capture/manifest.json", Body=b"{}")

    report = run_e2e(
        _session(e2e_world),
        _options(e2e_world, keep_stack=True, delete_captures=True),
        stacks,
        fast_pacing,
        log=lambda _: None,
    )

    assert report.passed, report.text()
    assert stacks.deletions == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=e2e_world.bucket).get("Contents", [])]
    assert keys == ["captures/an-earlier-capture/manifest.json"]

"""The declared call table (mirrorcap_tools.iam.calls) is what the code really calls: the triggers and the
failure paths run on the emulated account, every AWS call each function makes is recorded, and the set
must equal the table's (so the table, and the IAM simulation built on it, cannot drift from the code).
The tags the code sends at creation are compared with the table's request tags too.
"""

from __future__ import annotations

import time

import pytest
from mirrorcap_tools.iam.calls import CALLS, MIRRORCAP_TAGS, Call
from mirrorcap_tools.offline import runner
from mirrorcap_tools.offline.faults import Fault, FaultPlan
from mirrorcap_tools.offline.ledger import ResourceLedger

from tests.support import event_text

AMAZON_DNS_CAPTURE = (
    '{"instance_id": "i-0fedcba9876543210", "duration_seconds": 60,'
    ' "filter": {"protocol": "udp", "ports": [53], "include_amazon_dns": true}}'
)


def _start_and_wait_for(world, document: str, state: str) -> str:
    sfn = world.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=world.state_machine_arn, input=document, name="swept")["executionArn"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=arn)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
            return arn
        time.sleep(0.01)
    raise AssertionError(f"{state} never entered")


def _exercise(world, monkeypatch: pytest.MonkeyPatch) -> list[ResourceLedger]:
    ledgers: list[ResourceLedger] = []
    instrument = runner.instrument_functions

    def keep_ledger(*args, **kwargs) -> ResourceLedger:
        ledgers.append(instrument(*args, **kwargs))
        return ledgers[-1]

    monkeypatch.setattr(runner, "instrument_functions", keep_ledger)
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
        runner.run_input(world, event_text(path), faults=faults)
    runner.run_input(world, AMAZON_DNS_CAPTURE)  # the only path to ModifyTrafficMirrorFilterNetworkServices
    runner.run_input(world, [event_text("triggers/alarm.json")] * 2)  # the second finds the source locked
    # The sweeper, after a run stopped mid-capture.
    keep_ledger(world, FaultPlan())
    arn = _start_and_wait_for(
        world, '{"instance_id": "i-0fedcba9876543210", "duration_seconds": 3600}', "WaitCaptureWindow"
    )
    world.client("stepfunctions").stop_execution(executionArn=arn)
    world.client("lambda").invoke(FunctionName="SweepOrphansFunction", Payload=b"{}")
    world.aws.clock.sleep(world.aws.lifecycle.shutdown_seconds + 5)
    world.client("lambda").invoke(FunctionName="SweepOrphansFunction", Payload=b"{}")
    return ledgers


def _observable(call: Call) -> bool:
    return not call.not_observed_because


def test_the_calls_and_tags_observed_offline_are_the_declared_table(offline, monkeypatch: pytest.MonkeyPatch) -> None:
    ledgers = _exercise(offline, monkeypatch)
    observed = set().union(*(ledger.calls for ledger in ledgers))

    # Every observed API call is explained by some table entry of that function...
    unexplained = sorted(
        (f, op) for f, op in observed if not any(c.principal == f and op in c.observed_as for c in CALLS)
    )
    assert not unexplained, f"calls the code makes that the IAM table does not declare: {unexplained}"
    # ...and every table entry that offline runs can reach was reached.
    unreached = sorted(
        (c.principal, c.action)
        for c in CALLS
        if _observable(c) and not any((c.principal, op) in observed for op in c.observed_as)
    )
    assert not unreached, f"declared calls the code never made offline: {unreached}"
    print(f"\nIAM table: {len(CALLS)} calls; observed offline: {len(observed)} distinct (function, API operation)")

    # The tags the code sends at creation are the table's request tags (what aws:RequestTag sees).
    sent = [spec for ledger in ledgers for spec in ledger.tag_specifications]
    assert sent, "no create call sent TagSpecifications"
    declared = {
        (c.principal, c.action, r.type): r.request_tags
        for c in CALLS
        if c.action != "ec2:CreateTags"
        for r in c.resources
        if r.request_tags is not None
    }
    for function, operation, resource_type, tags in sent:
        assert (function, operation, resource_type) in declared, (function, operation, resource_type)
        expected = declared[(function, operation, resource_type)]
        assert set(tags) == set(expected), (function, operation, resource_type, set(tags) ^ set(expected))
        assert tags["mirrorcap:managed-by"] == MIRRORCAP_TAGS["mirrorcap:managed-by"]
    assert {(f, o, r) for f, o, r, _ in sent} == set(declared)

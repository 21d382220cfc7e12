"""Run the real workflow offline on one input: the ASL from statemachine/ executed by moto's Step
Functions interpreter, the real handlers in-process, AWS emulated (see mirrorcap_tools.emulation).

The record it returns (and writes as run.json) answers what an operator asks of a capture: did it
succeed, which states ran in which order, what did it create and is any of it still there, and which
objects landed in S3.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from mirrorcap import runtime

from mirrorcap_tools.emulation import OfflineAws
from mirrorcap_tools.offline.collector import SIMULATION_NOTICE, SampleCaptureCollector
from mirrorcap_tools.offline.faults import Fault, FaultPlan
from mirrorcap_tools.offline.ledger import ResourceLedger
from mirrorcap_tools.offline.world import OfflineWorld, build_world

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
REAL_TIMEOUT_SECONDS = 300


def readable_cause(cause: str | None) -> str | None:
    """A Lambda error's cause is the runtime's JSON payload; people want its errorMessage."""
    if not cause:
        return cause
    try:
        return json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        return cause


@dataclass
class ExecutionRecord:
    name: str
    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    output: Any
    states: list[str]
    task_states: int


@dataclass
class RunRecord:
    input_file: str
    status: str
    error: str | None
    message: str | None
    cause: str | None
    executions: list[ExecutionRecord]
    resources: list[dict[str, Any]]
    resources_left: int
    aws_calls: list[tuple[str, str]]
    s3_objects: list[dict[str, Any]]
    lambda_invocations: int
    state_transitions: int
    readiness_checked_before_session: bool | None
    virtual_seconds: float
    wall_seconds: float
    notifications: list[dict[str, str]] = field(default_factory=list)
    report_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str) + "\n"


def run_input(
    world: OfflineWorld,
    documents: str | Sequence[str],
    *,
    input_file: str = "-",
    faults: FaultPlan | None = None,
) -> RunRecord:
    """Start one execution per document (all at once, as a burst of alarms would); wait for them and for
    every capture they fan out to."""
    batch = [documents] if isinstance(documents, str) else list(documents)
    started = _Started(time.monotonic(), world.aws.clock.elapsed(), len(world.aws.lambdas.invocations))
    ledger = instrument_functions(world, faults or FaultPlan())
    sfn = world.client("stepfunctions")
    existing = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"]}
    arns = []
    for number, document in enumerate(batch, start=len(existing) + 1):
        try:
            arns.append(
                sfn.start_execution(stateMachineArn=world.state_machine_arn, name=f"offline-{number}", input=document)[
                    "executionArn"
                ]
            )
        except ClientError as exc:  # e.g. input that is not JSON: StartExecution itself refuses it
            error = exc.response["Error"]
            return _record(world, ledger, input_file, [], started, "FAILED", error["Code"], error["Message"])
    executions = _wait_all(world, before=existing, first=arns)
    failed = [e for e in executions if e.status != "SUCCEEDED"]
    if not failed:
        return _record(world, ledger, input_file, executions, started, "SUCCEEDED", None, None)
    return _record(world, ledger, input_file, executions, started, failed[0].status, failed[0].error, failed[0].cause)


@dataclass
class _Started:
    real: float
    virtual: float
    invocations: int


def instrument_functions(world: OfflineWorld, faults: FaultPlan) -> ResourceLedger:
    """Give the functions AWS clients that report what they create (and fail where the plan says)."""
    ledger = ResourceLedger(world.aws.region)
    session = boto3.session.Session(region_name=world.aws.region)
    ledger.register(session)
    world.aws.lambdas.faults.clear()
    faults.register(session, world.aws.lambdas)
    runtime.configure(clients=runtime.AwsClients(session), clock=world.aws.clock.now)
    return ledger


def _record(
    world: OfflineWorld,
    ledger: ResourceLedger,
    input_file: str,
    executions: list[ExecutionRecord],
    started: _Started,
    status: str,
    error: str | None,
    cause: str | None,
) -> RunRecord:
    resources = ledger.report()
    objects = [
        {"key": o["Key"], "bytes": o["Size"]}
        for page in world.client("s3").get_paginator("list_objects_v2").paginate(Bucket=world.bucket)
        for o in page.get("Contents", [])
    ]
    with_session = [e.states for e in executions if "CreateMirrorSession" in e.states]
    readiness_first = (
        all("CheckCollectorReady" in states[: states.index("CreateMirrorSession")] for states in with_session)
        if with_session
        else None
    )
    notes = [SIMULATION_NOTICE] if any(o["key"].endswith(".pcap") for o in objects) else []
    invocations = len(world.aws.lambdas.invocations) - started.invocations
    entered = sum(len(e.states) for e in executions)
    retries = invocations - sum(e.task_states for e in executions)
    return RunRecord(
        input_file=input_file,
        status=status,
        error=error,
        message=readable_cause(cause),
        cause=cause,
        executions=executions,
        resources=resources,
        resources_left=sum(r["exists_at_end"] for r in resources),
        aws_calls=sorted(ledger.calls),
        s3_objects=objects,
        lambda_invocations=invocations,
        # Billed transitions: every state entered, plus every retried attempt of a Task.
        state_transitions=entered + max(retries, 0),
        readiness_checked_before_session=readiness_first,
        virtual_seconds=round(world.aws.clock.elapsed() - started.virtual, 1),
        wall_seconds=round(time.monotonic() - started.real, 2),
        notifications=_received_notifications(world),
        notes=notes,
    )


def _received_notifications(world: OfflineWorld) -> list[dict[str, str]]:
    """What a subscriber of the notifications topic received during the run."""
    sqs = world.client("sqs")
    received = []
    while messages := sqs.receive_message(QueueUrl=world.inbox_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            envelope = json.loads(message["Body"])
            received.append({"subject": envelope.get("Subject", ""), "message": envelope["Message"]})
            sqs.delete_message(QueueUrl=world.inbox_url, ReceiptHandle=message["ReceiptHandle"])
    return received


def _fetch_reports(world: OfflineWorld, record: RunRecord, out_dir: Path) -> list[str]:
    """Copy each capture's report.html and summary.json out of the emulated bucket, to open them."""
    s3 = world.client("s3")
    written = []
    for execution in record.executions:
        report = (execution.output or {}).get("report") or {}
        for key in (report.get("report_key"), report.get("summary_key")):
            if key:
                target = out_dir / key.removeprefix("captures/")
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(world.bucket, key, str(target))
                written.append(str(target))
    return written


def _wait_all(world: OfflineWorld, before: set[str], first: list[str]) -> list[ExecutionRecord]:
    """Wait until the executions, and any they started (fan-out), have ended. Ours are those new since."""
    sfn = world.client("stepfunctions")
    deadline = time.monotonic() + REAL_TIMEOUT_SECONDS
    ours = list(first)
    while True:
        listed = sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"]
        ours += sorted(
            e["executionArn"] for e in listed if e["executionArn"] not in before and e["executionArn"] not in ours
        )
        statuses = {arn: sfn.describe_execution(executionArn=arn)["status"] for arn in ours}
        if all(status in TERMINAL for status in statuses.values()):
            return [_execution_record(world, arn) for arn in ours]
        if time.monotonic() > deadline:
            raise TimeoutError(f"offline executions still running after {REAL_TIMEOUT_SECONDS}s: {statuses}")
        time.sleep(0.02)


def _execution_record(world: OfflineWorld, arn: str) -> ExecutionRecord:
    sfn = world.client("stepfunctions")
    described = sfn.describe_execution(executionArn=arn)
    events = [
        event
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        for event in page["events"]
    ]
    states = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    output = described.get("output")
    return ExecutionRecord(
        name=described["name"],
        execution_arn=arn,
        status=described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
        output=json.loads(output) if output else None,
        states=states,
        task_states=sum(e["type"] == "TaskStateEntered" for e in events),
    )


def run_file(
    event_file: Path, out_dir: Path, *, speedup: float = 100.0, faults: list[Fault] | None = None
) -> RunRecord:
    """`mirrorcap offline EVENT_FILE --out DIR`: a fresh emulated account, one input, DIR/run.json."""
    document = event_file.read_text()
    with OfflineAws(SampleCaptureCollector(), speedup=speedup) as aws:
        world = build_world(aws)
        record = run_input(world, document, input_file=str(event_file), faults=FaultPlan(faults))
        out_dir.mkdir(parents=True, exist_ok=True)
        record.report_files = _fetch_reports(world, record, out_dir)
    (out_dir / "run.json").write_text(record.to_json())
    return record

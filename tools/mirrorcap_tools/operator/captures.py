"""Captures as the operator sees them: the document `start` sends, and where an execution is, read from
its history (the state it is in, the collector's readiness, the capture window, teardown, report)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mirrorcap.instance_support import unsupported_reason
from mirrorcap.models import CaptureFilter, ManualRequest
from mirrorcap.naming import CAPTURE_ID_PATTERN, capture_prefix, new_capture_id
from mirrorcap.steps.resolve_request import describe_validation_error
from pydantic import ValidationError

from mirrorcap_tools.operator.aws import AwsRefused, CaptureNotFound, Connection, InvalidRequest
from mirrorcap_tools.operator.stack import Stack

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# How many of the newest executions are searched for a capture whose execution is not named by its id
# (alarm-started ones: EventBridge names them). Each costs one DescribeExecution.
UNNAMED_SEARCH_LIMIT = 25


def build_request(
    instance_id: str,
    *,
    duration_seconds: int | None = None,
    filter_document: dict[str, Any] | None = None,
    packet_length: int | None = None,
    network_interface_id: str | None = None,
    capture_id: str | None = None,
) -> ManualRequest:
    """The manual document, validated by the layer's own model before anything is sent."""
    document: dict[str, Any] = {"instance_id": instance_id}
    optional = {
        "duration_seconds": duration_seconds,
        "filter": filter_document,
        "packet_length": packet_length,
        "network_interface_id": network_interface_id,
        "capture_id": capture_id,
    }
    document.update({key: value for key, value in optional.items() if value is not None})
    try:
        return ManualRequest.model_validate(document)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid capture request: {describe_validation_error(exc)}") from None


def filter_from_options(
    protocol: str | None, ports: tuple[str, ...], remote_ports: tuple[str, ...], cidrs: tuple[str, ...],
    directions: tuple[str, ...],
) -> dict[str, Any] | None:  # fmt: skip
    """`--protocol tcp --port 443 ...` as the filter document (CaptureFilter validates it)."""
    document: dict[str, Any] = {}
    if protocol:
        document["protocol"] = protocol
    if ports:
        document["ports"] = [int(p) if p.isdigit() else p for p in ports]
    if remote_ports:
        document["remote_ports"] = [int(p) if p.isdigit() else p for p in remote_ports]
    if cidrs:
        document["cidrs"] = list(cidrs)
    if directions:
        document["directions"] = list(directions)
    if not document:
        return None
    try:
        CaptureFilter.model_validate(document)
    except ValidationError as exc:
        problems = describe_validation_error(exc, "filter.").replace("filter.input: ", "filter: ")
        raise InvalidRequest(f"invalid capture filter: {problems}") from None
    return document


@dataclass(frozen=True)
class StartedCapture:
    capture_id: str
    execution_arn: str
    console_url: str
    document: dict[str, Any]


def start_capture(connection: Connection, stack: Stack, request: ManualRequest) -> StartedCapture:
    """Check the instance exists and runs, then start the execution named by the capture id."""
    instance = _describe_instance(connection, request.instance_id)
    state = instance["State"]["Name"]
    if state != "running":
        raise InvalidRequest(f"instance {request.instance_id} is {state}: only a running instance can be captured")
    # The same check ResolveRequest makes, before an execution exists (the layer's own rule).
    instance_type = instance["InstanceType"]
    types = connection.call("ec2", "describe_instance_types", InstanceTypes=[instance_type])["InstanceTypes"]
    info = types[0] if types else {}
    reason = unsupported_reason(instance_type, info.get("Hypervisor"), bool(info.get("BareMetal")))
    if reason:
        raise InvalidRequest(f"instance {request.instance_id} cannot be a mirror source: {reason}")
    # Minted here so the execution can be named by it; the random discriminator keeps two starts of one
    # instance in the same second apart.
    capture_id = request.capture_id or new_capture_id(
        connection.server_now(), request.instance_id, discriminator=uuid.uuid4().hex
    )
    request = request.model_copy(update={"capture_id": capture_id})
    document = request.model_dump(mode="json", exclude_defaults=True)
    document["capture_id"] = capture_id
    try:
        started = connection.call(
            "stepfunctions",
            "start_execution",
            stateMachineArn=stack.state_machine_arn,
            name=capture_id,
            input=json.dumps(document),
        )
    except AwsRefused as exc:
        if "ExecutionAlreadyExists" in str(exc):
            raise InvalidRequest(f"capture id {capture_id!r} is taken: an execution of that name exists") from None
        raise
    arn = started["executionArn"]
    return StartedCapture(capture_id, arn, stack.execution_console_url(arn, connection.region), document)


def _describe_instance(connection: Connection, instance_id: str) -> dict[str, Any]:
    try:
        reservations = connection.call("ec2", "describe_instances", InstanceIds=[instance_id])["Reservations"]
    except AwsRefused as exc:
        if "InvalidInstanceID" in str(exc):
            raise InvalidRequest(f"instance {instance_id} not found in {connection.region}") from None
        raise
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise InvalidRequest(f"instance {instance_id} not found in {connection.region}")
    return instances[0]


def check_capture_id(capture_id: str) -> None:
    if not CAPTURE_ID_PATTERN.match(capture_id):
        raise InvalidRequest(f"{capture_id!r} is not a capture id (3-63 of a-z, 0-9 and -, e.g. mc-20260101t...)")


def find_execution(connection: Connection, stack: Stack, capture_id: str) -> dict[str, Any] | None:
    """DescribeExecution of the capture's execution: the one named by its id, else one of the newest whose
    input or output names it (alarm-started captures). None when there is none."""
    check_capture_id(capture_id)
    try:
        return connection.call("stepfunctions", "describe_execution", executionArn=stack.execution_arn(capture_id))
    except AwsRefused as exc:
        if "ExecutionDoesNotExist" not in str(exc):
            raise
    listed = connection.call(
        "stepfunctions", "list_executions", stateMachineArn=stack.state_machine_arn, maxResults=UNNAMED_SEARCH_LIMIT
    )["executions"]
    for summary in listed:
        described = connection.call("stepfunctions", "describe_execution", executionArn=summary["executionArn"])
        if capture_id in {_capture_id_of(described.get("output")), _capture_id_of(described.get("input"))}:
            return described
    return None


def require_execution(connection: Connection, stack: Stack, capture_id: str) -> dict[str, Any]:
    described = find_execution(connection, stack, capture_id)
    if described is None:
        raise CaptureNotFound(f"no capture {capture_id!r} in stack {stack.name!r} (`mirrorcap ls` lists recent ones)")
    return described


def _capture_id_of(document: str | None) -> str | None:
    if not document:
        return None
    try:
        value = json.loads(document)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    found = value.get("capture_id") or (value.get("capture") or {}).get("capture_id")
    return found if isinstance(found, str) else None


@dataclass
class CaptureView:
    """What an execution's history says about its capture, newest facts winning."""

    capture_id: str
    status: str
    execution_arn: str
    started: datetime
    stopped: datetime | None
    state: str | None = None
    states: list[str] = field(default_factory=list)
    capture: dict[str, Any] = field(default_factory=dict)
    collector: dict[str, Any] = field(default_factory=dict)
    readiness: dict[str, Any] | None = None
    readiness_checks: int = 0
    command: dict[str, Any] | None = None
    artifacts: dict[str, Any] | None = None
    teardown: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None
    task_seconds: dict[str, float] = field(default_factory=dict)  # state -> seconds its functions ran
    retries: int = 0
    exits: dict[str, list[datetime]] = field(default_factory=dict)  # state -> when it exited, in order

    @property
    def prefix(self) -> str:
        return capture_prefix(self.capture_id)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def read_view(connection: Connection, described: dict[str, Any], capture_id: str) -> CaptureView:
    arn = described["executionArn"]
    events = []
    token: str | None = None
    while True:
        page = connection.call(
            "stepfunctions",
            "get_execution_history",
            executionArn=arn,
            maxResults=1000,
            **({"nextToken": token} if token else {}),
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    view = CaptureView(
        capture_id=capture_id,
        status=described["status"],
        execution_arn=arn,
        started=described["startDate"],
        stopped=described.get("stopDate"),
        error=described.get("error"),
        cause=described.get("cause"),
    )
    if described.get("output"):
        view.output = json.loads(described["output"])
    apply_history(view, events)
    return view


def apply_history(view: CaptureView, events: list[dict[str, Any]]) -> None:
    scheduled_at: datetime | None = None
    current_task: str | None = None
    attempts_in_task = 0
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            view.state = name
            view.states.append(name)
            current_task = name if kind == "TaskStateEntered" else None
            attempts_in_task = 0
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            view.exits.setdefault(details["name"], []).append(event["timestamp"])
            _read_state_output(view, details["name"], details.get("output"))
        elif kind == "LambdaFunctionScheduled":
            scheduled_at = event["timestamp"]
            if attempts_in_task:
                view.retries += 1  # billed as one more state transition
            attempts_in_task += 1
        elif kind in {"LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut"}:
            if scheduled_at is not None and current_task is not None:
                seconds = (event["timestamp"] - scheduled_at).total_seconds()
                view.task_seconds[current_task] = view.task_seconds.get(current_task, 0.0) + seconds
            scheduled_at = None


def _read_state_output(view: CaptureView, name: str, output: str | None) -> None:
    if not output:
        return
    try:
        data = json.loads(output)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    if isinstance(data.get("capture"), dict):
        view.capture = data["capture"]
    for key in ("collector", "command", "artifacts", "teardown"):
        if isinstance(data.get(key), dict):
            setattr(view, key, data[key])
    if name == "CheckCollectorReady" and isinstance(data.get("readiness"), dict):
        view.readiness = data["readiness"]
        view.readiness_checks += 1
    if name in {"ReportCapture", "CaptureSucceeded"} and isinstance(data.get("report"), dict):
        view.report = data["report"]

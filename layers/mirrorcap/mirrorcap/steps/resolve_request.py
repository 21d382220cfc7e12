"""ResolveRequest: turn whatever started the execution into validated capture requests.

Three triggers start the same state machine: an EventBridge alarm event, a person's manual document,
and the sampling schedule's input. Every check here is read-only: a request that fails any of them
ends the execution before the first resource exists.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from mirrorcap.aws import instances, mirroring
from mirrorcap.errors import (
    AwsRequestFailed,
    CaptureQuotaExceeded,
    CompositeAlarmNotSupported,
    InstanceNotFound,
    InvalidCaptureRequest,
    NoInstancesMatched,
    UnsupportedInstance,
)
from mirrorcap.instance_support import unsupported_reason
from mirrorcap.models import (
    AlarmStateChangeEvent,
    CaptureFilter,
    CaptureOrigin,
    CaptureRequest,
    ExecutionContext,
    ManualRequest,
    ResolveRequestInput,
    ResolveRequestOutput,
    ScheduledSampleRequest,
)
from mirrorcap.naming import new_capture_id, vni_for
from mirrorcap.observability import logger
from mirrorcap.settings import Settings

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.type_defs import FilterTypeDef, InstanceTypeDef

M = TypeVar("M", bound=BaseModel)

MAX_SESSIONS_PER_INTERFACE = 3  # AWS quota, not adjustable: docs/aws-facts.md#traffic-mirroring-quotas
ALARM_DURATION_TAG = "mirrorcap:duration-seconds"
MAX_PROBLEM_CHARS = 300  # per rejected field, in the error a person reads


def resolve_request(data: ResolveRequestInput, settings: Settings) -> ResolveRequestOutput:
    event = data.event
    if event.get("source") == "aws.cloudwatch" or "detail-type" in event:
        return _resolve_alarm(event, data.execution, settings)
    if "sample" in event:
        return _resolve_sample(_parse(ScheduledSampleRequest, event), data.execution, settings)
    return _resolve_manual(_parse(ManualRequest, event), data.execution, settings)


def _parse(model: type[M], event: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise InvalidCaptureRequest(describe_validation_error(exc, prefix)) from None


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """`field.path: what is wrong` for each problem, the way an operator reads a rejected request."""
    problems = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"]) or "input"
        message = err["msg"].removeprefix("Value error, ")
        if len(message) > MAX_PROBLEM_CHARS:  # a hostile document's value is not worth echoing whole
            message = f"{message[: MAX_PROBLEM_CHARS - 20]}... ({len(message)} characters)"
        problems.append(f"{prefix}{path}: {message}")
    return "; ".join(problems)


# --- The three triggers ----------------------------------------------------------------------------------


def _resolve_manual(request: ManualRequest, execution: ExecutionContext, settings: Settings) -> ResolveRequestOutput:
    capture_id = request.capture_id or new_capture_id(
        execution.start_time, request.instance_id, discriminator=execution.id
    )
    return ResolveRequestOutput(capture=_capture_request(request, capture_id, execution, settings))


def _resolve_alarm(event: dict, execution: ExecutionContext, settings: Settings) -> ResolveRequestOutput:
    alarm = _parse(AlarmStateChangeEvent, event)
    detail = alarm.detail
    if detail.state.value != "ALARM":
        raise InvalidCaptureRequest(
            f"detail.state.value: alarm {detail.alarm_name!r} changed to {detail.state.value}; "
            "only a change to ALARM starts a capture"
        )
    instance_ids = alarm_instance_ids(detail.alarm_name, detail.configuration)
    duration = _alarm_duration(detail.alarm_tags)
    changed_at = detail.state.timestamp or alarm.time
    origin = CaptureOrigin(trigger="alarm", name=_tag_safe(detail.alarm_name))
    requests = [
        ManualRequest(
            instance_id=instance_id,
            duration_seconds=duration,
            # The same alarm transition delivered twice names the same capture (idempotent creates).
            capture_id=new_capture_id(changed_at, instance_id, f"{detail.alarm_name}|{changed_at.isoformat()}"),
            origin=origin,
        )
        for instance_id in instance_ids
    ]
    return _one_or_fanout(requests, execution, settings)


def _resolve_sample(
    request: ScheduledSampleRequest, execution: ExecutionContext, settings: Settings
) -> ResolveRequestOutput:
    selector = request.sample
    instance_ids = _running_instances_tagged(selector.tag_key, selector.tag_values)
    if not instance_ids:
        raise NoInstancesMatched(f"sample: no running instance has tag {selector.tag_key} in {selector.tag_values}")
    # A different sample each run, reproducible from the execution's start time.
    chosen = sorted(
        random.Random(execution.start_time.isoformat()).sample(
            instance_ids, min(selector.max_instances, len(instance_ids))
        )
    )
    if len(chosen) < len(instance_ids):
        logger.info("sampling instances", extra={"matched": len(instance_ids), "chosen": chosen})
    origin = CaptureOrigin(trigger="schedule", name=selector.name)
    requests = [
        ManualRequest(
            instance_id=instance_id,
            duration_seconds=request.duration_seconds,
            filter=request.filter,
            packet_length=request.packet_length,
            capture_id=new_capture_id(execution.start_time, instance_id, discriminator=execution.id),
            origin=origin,
        )
        for instance_id in chosen
    ]
    return _one_or_fanout(requests, execution, settings)


def _one_or_fanout(
    requests: list[ManualRequest], execution: ExecutionContext, settings: Settings
) -> ResolveRequestOutput:
    """One instance runs in this execution; several get an execution each (a failure stays local)."""
    if len(requests) == 1:
        request = requests[0]
        assert request.capture_id is not None
        return ResolveRequestOutput(capture=_capture_request(request, request.capture_id, execution, settings))
    for request in requests:  # reject the whole trigger before starting any of them
        _check_duration(request.duration_seconds, settings)
    return ResolveRequestOutput(fanout=requests)


# --- Alarm parsing ---------------------------------------------------------------------------------------


def alarm_instance_ids(alarm_name: str, configuration: dict[str, Any]) -> list[str]:
    """Every distinct InstanceId dimension among the alarm's metrics, in order of appearance.

    Metric-math alarms list expressions beside the metrics (entries without metricStat); composite
    alarms have an alarmRule and no metrics at all.
    """
    metrics = configuration.get("metrics")
    if not metrics:
        if "alarmRule" in configuration:
            raise CompositeAlarmNotSupported(
                f"detail.configuration: {alarm_name!r} is a composite alarm; it has no metrics and so "
                "names no instance. Opt in the metric alarms it is built from instead."
            )
        raise InvalidCaptureRequest(f"detail.configuration.metrics: alarm {alarm_name!r} has no metrics")
    if not isinstance(metrics, list):
        raise InvalidCaptureRequest("detail.configuration.metrics: expected a list")
    found: list[str] = []
    for index, metric in enumerate(metrics):
        dimensions = _dig(metric, "metricStat", "metric", "dimensions")
        if dimensions is None:
            continue
        if not isinstance(dimensions, dict):
            raise InvalidCaptureRequest(
                f"detail.configuration.metrics[{index}].metricStat.metric.dimensions: expected a map"
            )
        instance_id = dimensions.get("InstanceId")
        if instance_id is not None and instance_id not in found:
            found.append(instance_id)
    if not found:
        raise InvalidCaptureRequest(
            "detail.configuration.metrics[*].metricStat.metric.dimensions.InstanceId: "
            f"no metric of alarm {alarm_name!r} has an InstanceId dimension"
        )
    for instance_id in found:
        _parse(ManualRequest, {"instance_id": instance_id}, prefix="detail.configuration.metrics[*].dimensions.")
    return found


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _alarm_duration(alarm_tags: dict[str, str]) -> int | None:
    raw = alarm_tags.get(ALARM_DURATION_TAG)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidCaptureRequest(
            f"detail.alarmTags.{ALARM_DURATION_TAG}: {raw!r} is not a whole number of seconds"
        ) from None


def _tag_safe(text: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in " .:/=+@-_" else "_" for ch in text)
    return kept[:128] or "alarm"


# --- Checks against the account (read-only) ----------------------------------------------------------------


def _check_duration(duration_seconds: int | None, settings: Settings) -> int:
    duration = duration_seconds or settings.default_duration_seconds
    if duration > settings.max_duration_seconds:
        raise InvalidCaptureRequest(
            f"duration_seconds: {duration} is over the maximum of {settings.max_duration_seconds} "
            "(template parameter MaxCaptureSeconds)"
        )
    return duration


def _capture_request(
    request: ManualRequest, capture_id: str, execution: ExecutionContext, settings: Settings
) -> CaptureRequest:
    duration = _check_duration(request.duration_seconds, settings)
    instance = _describe_instance(request.instance_id)
    state = instance["State"]["Name"]
    if state != "running":
        raise UnsupportedInstance(
            f"instance_id: {request.instance_id} is {state}; only a running instance has traffic to mirror"
        )
    _check_instance_type(request.instance_id, instance["InstanceType"])
    interface = _source_interface(instance, request.network_interface_id)
    _check_interface_quotas(interface["NetworkInterfaceId"])
    return CaptureRequest(
        capture_id=capture_id,
        origin=request.origin,
        execution_id=execution.id,
        instance_id=request.instance_id,
        instance_type=instance["InstanceType"],
        network_interface_id=interface["NetworkInterfaceId"],
        source_ip=interface["PrivateIpAddress"],
        subnet_id=interface["SubnetId"],
        vpc_id=interface["VpcId"],
        availability_zone=instance["Placement"]["AvailabilityZone"],
        duration_seconds=duration,
        packet_length=request.packet_length,
        filter=request.filter or CaptureFilter(),
        vni=vni_for(capture_id),
        requested_at=execution.start_time,
    )


def _describe_instance(instance_id: str) -> InstanceTypeDef:
    try:
        instance = instances.describe_instance(instance_id)
    except AwsRequestFailed as exc:
        if exc.code not in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            raise
        instance = None
    if instance is None:
        raise InstanceNotFound(f"instance_id: {instance_id} does not exist in this account and region")
    return instance


def _check_instance_type(instance_id: str, instance_type: str) -> None:
    info = instances.describe_instance_type(instance_type) or {}
    reason = unsupported_reason(instance_type, info.get("Hypervisor"), bool(info.get("BareMetal")))
    if reason:
        raise UnsupportedInstance(f"instance_id: {instance_id} cannot be a mirror source: {reason}")


def _source_interface(instance: InstanceTypeDef, requested: str | None) -> Any:
    interfaces = instance.get("NetworkInterfaces", [])
    if requested:
        matching = [i for i in interfaces if i["NetworkInterfaceId"] == requested]
        if not matching:
            raise InvalidCaptureRequest(
                f"network_interface_id: {requested} is not attached to {instance['InstanceId']}"
            )
        return matching[0]
    primary = [i for i in interfaces if i.get("Attachment", {}).get("DeviceIndex") == 0]
    if not primary:
        raise UnsupportedInstance(f"instance_id: {instance['InstanceId']} has no primary network interface")
    return primary[0]


def _check_interface_quotas(interface_id: str) -> None:
    targets = mirroring.targets_on_interface(interface_id)
    sessions = mirroring.sessions_on_interface(interface_id)
    if targets:
        raise UnsupportedInstance(
            f"network_interface_id: {interface_id} is a traffic mirror target "
            f"({targets[0]['TrafficMirrorTargetId']}); one interface cannot be both source and target"
        )
    if len(sessions) >= MAX_SESSIONS_PER_INTERFACE:
        raise CaptureQuotaExceeded(
            f"network_interface_id: {interface_id} already has {len(sessions)} mirror sessions, the AWS "
            f"maximum per interface ({', '.join(s['TrafficMirrorSessionId'] for s in sessions)})"
        )


def _running_instances_tagged(tag_key: str, tag_values: Iterable[str]) -> list[str]:
    filters: list[FilterTypeDef] = [
        {"Name": f"tag:{tag_key}", "Values": list(tag_values)},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    return sorted(instance["InstanceId"] for instance in instances.instances_matching(filters))

"""CreateMirrorSession: target (the collector's interface), filter and rules, and the session.

Every resource is found-or-created: a retried or redriven step reuses what an earlier attempt made
(found by its capture tag, and asked for with the same ClientToken) instead of creating a twin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from mirrorcap.awserrors import THROTTLING_CODES, error_code, error_message
from mirrorcap.errors import AwsThrottled, MirrorSetupFailed
from mirrorcap.models import CaptureRequest, CollectorStep, MirrorSession
from mirrorcap.naming import client_token, resource_tags, tag_specifications
from mirrorcap.observability import logger
from mirrorcap.runtime import aws
from mirrorcap.settings import Settings
from mirrorcap.tagged import MIRROR_LISTINGS, mirror_resources

MAX_SESSION_NUMBER = 32766


def create_mirror_session(data: CollectorStep, settings: Settings) -> MirrorSession:
    capture, collector = data.capture, data.collector
    target_id = _find_or_create(
        "target",
        capture,
        lambda tags: _call(
            "create_traffic_mirror_target",
            NetworkInterfaceId=collector.network_interface_id,
            Description=f"mirrorcap collector {collector.instance_id}",
            TagSpecifications=tag_specifications("traffic-mirror-target", tags),
            ClientToken=client_token(capture.capture_id, capture.execution_id, "target"),
        )["TrafficMirrorTarget"]["TrafficMirrorTargetId"],
    )
    filter_id = _find_or_create(
        "filter",
        capture,
        lambda tags: _call(
            "create_traffic_mirror_filter",
            Description=f"mirrorcap {capture.capture_id}",
            TagSpecifications=tag_specifications("traffic-mirror-filter", tags),
            ClientToken=client_token(capture.capture_id, capture.execution_id, "filter"),
        )["TrafficMirrorFilter"]["TrafficMirrorFilterId"],
    )
    _ensure_filter_rules(capture, filter_id)
    session = _find_session(capture) or _create_session(capture, target_id, filter_id, settings.stack_name)
    logger.info(
        "mirror session active",
        extra={
            "session": session["TrafficMirrorSessionId"],
            "vni": capture.vni,
            "source": capture.network_interface_id,
        },
    )
    return MirrorSession(
        target_id=target_id,
        filter_id=filter_id,
        session_id=session["TrafficMirrorSessionId"],
        session_number=session["SessionNumber"],
        vni=capture.vni,
        rule_count=len(capture.filter.rules()),
    )


def _call(operation: str, **params: Any) -> dict:
    """One EC2 mirroring call; AWS's refusal becomes MirrorSetupFailed with its code and message."""
    try:
        return getattr(aws().ec2, operation)(**params)
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if code in THROTTLING_CODES:
            raise AwsThrottled(f"{operation}: {code}: {message}") from exc
        logger.error("mirror setup refused", extra={"operation": operation, "code": code, "aws_message": message})
        raise MirrorSetupFailed(f"{operation}: {code}: {message}") from exc


def _find_or_create(kind: str, capture: CaptureRequest, create: Callable[[list[dict]], str]) -> str:
    id_key = MIRROR_LISTINGS[kind][2]
    existing = mirror_resources(kind, capture.capture_id)
    if existing:
        return existing[0][id_key]
    return create(resource_tags(capture.capture_id, capture.instance_id, capture.execution_id))


def _ensure_filter_rules(capture: CaptureRequest, filter_id: str) -> None:
    """Add the rules (and Amazon DNS) the filter lacks: an earlier attempt may have stopped halfway."""
    existing = aws().ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[filter_id])["TrafficMirrorFilters"][0]
    present = {
        (rule["TrafficDirection"], rule["RuleNumber"])
        for rule in existing.get("IngressFilterRules", []) + existing.get("EgressFilterRules", [])
    }
    for rule in capture.filter.rules():
        if (rule.direction, rule.rule_number) in present:
            continue
        _call(
            "create_traffic_mirror_filter_rule",
            TrafficMirrorFilterId=filter_id,
            Description=f"mirrorcap {capture.capture_id}",
            ClientToken=client_token(
                capture.capture_id, capture.execution_id, f"rule-{rule.direction}-{rule.rule_number}"
            ),
            **rule.to_aws(),
        )
    if capture.filter.include_amazon_dns and "amazon-dns" not in existing.get("NetworkServices", []):
        _call(
            "modify_traffic_mirror_filter_network_services",
            TrafficMirrorFilterId=filter_id,
            AddNetworkServices=["amazon-dns"],
        )


def _find_session(capture: CaptureRequest) -> dict | None:
    sessions = mirror_resources("session", capture.capture_id)
    return sessions[0] if sessions else None


def _create_session(capture: CaptureRequest, target_id: str, filter_id: str, stack_name: str) -> dict:
    params: dict[str, Any] = {
        "NetworkInterfaceId": capture.network_interface_id,
        "TrafficMirrorTargetId": target_id,
        "TrafficMirrorFilterId": filter_id,
        "SessionNumber": _free_session_number(capture.network_interface_id),
        "VirtualNetworkId": capture.vni,
        # The description and the tags mark this as a sanctioned capture for whoever audits CloudTrail.
        "Description": (
            f"mirrorcap sanctioned capture {capture.capture_id} ({capture.origin.trigger}, stack {stack_name})"
        )[:255],
        "TagSpecifications": tag_specifications(
            "traffic-mirror-session",
            resource_tags(capture.capture_id, capture.instance_id, capture.execution_id),
        ),
        "ClientToken": client_token(capture.capture_id, capture.execution_id, "session"),
    }
    if capture.packet_length:
        params["PacketLength"] = capture.packet_length
    return _call("create_traffic_mirror_session", **params)["TrafficMirrorSession"]


def _free_session_number(interface_id: str) -> int:
    """The lowest session number not already used on the source interface (1 is evaluated first)."""
    sessions = aws().ec2.describe_traffic_mirror_sessions(
        Filters=[{"Name": "network-interface-id", "Values": [interface_id]}]
    )["TrafficMirrorSessions"]
    used = {s["SessionNumber"] for s in sessions}
    return next(n for n in range(1, MAX_SESSION_NUMBER + 1) if n not in used)

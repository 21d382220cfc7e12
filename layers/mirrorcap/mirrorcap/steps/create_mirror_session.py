"""CreateMirrorSession: target (the collector's interface), filter and rules, and the session.

Every resource is found-or-created: a retried or redriven step reuses what an earlier attempt made
(found by its capture tag, and asked for with the same ClientToken) instead of creating a twin.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from mirrorcap.aws import mirroring
from mirrorcap.errors import AwsRequestFailed, MirrorSetupFailed
from mirrorcap.models import CaptureRequest, CreateMirrorSessionInput, CreateMirrorSessionOutput
from mirrorcap.naming import client_token, resource_tags, tag_specifications
from mirrorcap.observability import logger
from mirrorcap.settings import Settings
from mirrorcap.tagged import MIRROR_KINDS, managed_mirror_resources

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.type_defs import CreateTrafficMirrorSessionRequestTypeDef

MAX_SESSION_NUMBER = 32766  # docs/aws-facts.md#traffic-mirroring-quotas

T = TypeVar("T")


def create_mirror_session(data: CreateMirrorSessionInput, settings: Settings) -> CreateMirrorSessionOutput:
    capture, collector = data.capture, data.collector
    tags = resource_tags(capture.capture_id, capture.instance_id, capture.execution_id)
    target_id = _existing_id("target", capture) or _refused_as_setup_failure(
        lambda: mirroring.create_target(
            collector.network_interface_id,
            f"mirrorcap collector {collector.instance_id}",
            tag_specifications("traffic-mirror-target", tags),
            client_token(capture.capture_id, capture.execution_id, "target"),
        )
    )
    filter_id = _existing_id("filter", capture) or _refused_as_setup_failure(
        lambda: mirroring.create_filter(
            f"mirrorcap {capture.capture_id}",
            tag_specifications("traffic-mirror-filter", tags),
            client_token(capture.capture_id, capture.execution_id, "filter"),
        )
    )
    _ensure_filter_rules(capture, filter_id)
    session = _existing("session", capture) or _refused_as_setup_failure(
        lambda: _create_session(capture, target_id, filter_id, settings.stack_name)
    )
    logger.info(
        "mirror session active",
        extra={
            "session": session["TrafficMirrorSessionId"],
            "vni": capture.vni,
            "source": capture.network_interface_id,
        },
    )
    return CreateMirrorSessionOutput(
        target_id=target_id,
        filter_id=filter_id,
        session_id=session["TrafficMirrorSessionId"],
        session_number=session["SessionNumber"],
        vni=capture.vni,
        rule_count=len(capture.filter.rules()),
    )


def _refused_as_setup_failure(create: Callable[[], T]) -> T:
    """AWS's refusal of a mirroring call becomes MirrorSetupFailed, with its code and message."""
    try:
        return create()
    except AwsRequestFailed as exc:
        logger.error(
            "mirror setup refused", extra={"operation": exc.operation, "code": exc.code, "aws_message": exc.aws_message}
        )
        raise MirrorSetupFailed(str(exc)) from exc


def _existing(kind: str, capture: CaptureRequest) -> Any:
    found = managed_mirror_resources(kind, capture.capture_id)
    return found[0] if found else None


def _existing_id(kind: str, capture: CaptureRequest) -> str | None:
    found = _existing(kind, capture)
    return found[MIRROR_KINDS[kind]] if found else None


def _ensure_filter_rules(capture: CaptureRequest, filter_id: str) -> None:
    """Add the rules (and Amazon DNS) the filter lacks: an earlier attempt may have stopped halfway."""
    existing = mirroring.describe_filter(filter_id)
    present = {
        (rule["TrafficDirection"], rule["RuleNumber"])
        for rule in existing.get("IngressFilterRules", []) + existing.get("EgressFilterRules", [])
    }
    for rule in capture.filter.rules():
        if (rule.direction, rule.rule_number) in present:
            continue
        token = client_token(capture.capture_id, capture.execution_id, f"rule-{rule.direction}-{rule.rule_number}")
        request = rule.to_aws(filter_id, f"mirrorcap {capture.capture_id}", token)
        _refused_as_setup_failure(partial(mirroring.create_filter_rule, request))
    if capture.filter.include_amazon_dns and "amazon-dns" not in existing.get("NetworkServices", []):
        _refused_as_setup_failure(lambda: mirroring.add_amazon_dns(filter_id))


def _create_session(capture: CaptureRequest, target_id: str, filter_id: str, stack_name: str) -> Any:
    params: CreateTrafficMirrorSessionRequestTypeDef = {
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
    return mirroring.create_session(params)


def _free_session_number(interface_id: str) -> int:
    """The lowest session number not already used on the source interface (1 is evaluated first)."""
    used = {session["SessionNumber"] for session in mirroring.sessions_on_interface(interface_id)}
    return next(n for n in range(1, MAX_SESSION_NUMBER + 1) if n not in used)

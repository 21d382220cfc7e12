"""Traffic Mirroring as AWS enforces it, where moto 5.2.5 does not.

moto has no filter rules, no network services, no filter or target deletes, ignores ClientToken and
checks nothing when a session is created. This adds those calls and AWS's rules (quotas, ranges, source
instance types, in-use and not-found errors; docs/aws-facts.md#traffic-mirroring), each failing with AWS's own
error code.
"""

from __future__ import annotations

import ipaddress
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mirrorcap.instance_support import unsupported_reason
from moto.core.responses import ActionResult
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.responses import EC2Response

from mirrorcap_tools.emulation.ec2_lifecycle import InstanceLifecycle
from mirrorcap_tools.emulation.errors import AwsError

SESSIONS_PER_INTERFACE = 3
SOURCES_PER_TARGET = 10
RULES_PER_FILTER = 10
RESOURCES_PER_ACCOUNT = 10_000
SESSION_NUMBERS = range(1, 32767)
VNIS = range(1, 16_777_216)
PACKET_LENGTHS = range(1, 8501)
PROTOCOLS = range(0, 256)


def _source_refusal(instance_type: str) -> str | None:
    """Why AWS refuses this type as a mirror source: the preflight's own rule (one list, never two), fed with
    moto's copy of DescribeInstanceTypes' Hypervisor and BareMetal for the type."""
    facts = INSTANCE_TYPES.get(instance_type, {})
    return unsupported_reason(instance_type, facts.get("Hypervisor"), bool(facts.get("BareMetal")))


def _fail(code: str, message: str) -> AwsError:
    return AwsError(code, message)


@dataclass
class _FilterExtras:
    rules: list[dict[str, Any]] = field(default_factory=list)
    network_services: list[str] = field(default_factory=list)


class TrafficMirroringRules:
    """State and checks moto lacks, keyed like moto's own backends (account, region)."""

    def __init__(self, lifecycle: InstanceLifecycle) -> None:
        self._lifecycle = lifecycle
        self._lock = threading.RLock()
        self._filters: dict[str, _FilterExtras] = {}
        self._tokens: dict[tuple[str, str, str, str], tuple[str, Any]] = {}
        self._rule_counter = 0

    # --- patches ----------------------------------------------------------------------------------------

    def patches(self) -> list[tuple[type, str, Callable[..., Any]]]:
        """(class, method, replacement) triples; the emulation applies and removes them as a set."""
        originals = {name: getattr(EC2Response, name) for name in (
            "create_traffic_mirror_filter", "create_traffic_mirror_target", "create_traffic_mirror_session",
            "describe_traffic_mirror_filters", "delete_traffic_mirror_session", "run_instances",
        )}  # fmt: skip
        rules = self

        def idempotent(name: str) -> Callable[[EC2Response], Any]:
            def create(response: EC2Response) -> Any:
                return rules._idempotent(response, name, lambda: rules._checked(name, response, originals.get(name)))

            return create

        return [
            (EC2Response, "create_traffic_mirror_filter", idempotent("create_traffic_mirror_filter")),
            (EC2Response, "create_traffic_mirror_target", idempotent("create_traffic_mirror_target")),
            (EC2Response, "create_traffic_mirror_session", idempotent("create_traffic_mirror_session")),
            (EC2Response, "run_instances", idempotent("run_instances")),
            (EC2Response, "create_traffic_mirror_filter_rule", idempotent("create_traffic_mirror_filter_rule")),
            (EC2Response, "describe_traffic_mirror_filters",
             lambda response: rules._describe_filters(response, originals["describe_traffic_mirror_filters"])),
            (EC2Response, "delete_traffic_mirror_session",
             lambda response: rules._delete_session(response, originals["delete_traffic_mirror_session"])),
            (EC2Response, "delete_traffic_mirror_filter", lambda response: rules._delete_filter(response)),
            (EC2Response, "delete_traffic_mirror_target", lambda response: rules._delete_target(response)),
            (EC2Response, "delete_traffic_mirror_filter_rule", lambda response: rules._delete_rule(response)),
            (EC2Response, "modify_traffic_mirror_filter_network_services",
             lambda response: rules._modify_network_services(response)),
        ]  # fmt: skip

    # --- idempotency (ClientToken) ---------------------------------------------------------------------

    def _idempotent(self, response: EC2Response, operation: str, create: Callable[[], Any]) -> Any:
        token = response._get_param("ClientToken")
        if not token:
            return create()
        fingerprint = json.dumps(
            sorted((k, v) for k, v in response.querystring.items() if k not in ("ClientToken", "Action", "Version")),
            default=str,
        )
        key = (response.current_account, response.region, operation, token)
        with self._lock:
            if key in self._tokens:
                seen_fingerprint, result = self._tokens[key]
                if seen_fingerprint != fingerprint:
                    raise _fail(
                        "IdempotentParameterMismatch",
                        f"The client token {token} was used before with different parameters.",
                    )
                return result
            result = create()
            self._tokens[key] = (fingerprint, result)
            return result

    # --- creates ---------------------------------------------------------------------------------------

    def _checked(self, operation: str, response: EC2Response, original: Callable[..., Any] | None) -> Any:
        self._lifecycle.advance(response.ec2_backend)
        backend = response.ec2_backend
        if operation == "create_traffic_mirror_filter_rule":
            return self._create_rule(response)
        assert original is not None, operation  # only the rule create is replaced rather than wrapped
        if operation == "create_traffic_mirror_filter":
            self._check_account_quota(backend.traffic_mirror_filters, "filter")
            result = original(response)
            filter_id = result.result["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
            with self._lock:
                self._filters[filter_id] = _FilterExtras()
            return result
        if operation == "create_traffic_mirror_target":
            self._check_target(response)
        elif operation == "create_traffic_mirror_session":
            self._check_session(response)
            result = original(response)
            session = result.result["TrafficMirrorSession"]
            if "VirtualNetworkId" not in session:  # AWS picks one when none is given; moto leaves it out
                vni = random.randint(VNIS.start, VNIS.stop - 1)
                backend.traffic_mirror_sessions[session["TrafficMirrorSessionId"]].virtual_network_id = vni
                session["VirtualNetworkId"] = vni
            return result
        return original(response)

    def _check_account_quota(self, existing: dict, kind: str) -> None:
        if len(existing) >= RESOURCES_PER_ACCOUNT:
            raise _fail(
                f"TrafficMirror{kind.capitalize()}LimitExceeded",
                f"You have reached the limit of {RESOURCES_PER_ACCOUNT} traffic mirror {kind}s.",
            )

    def _interface(self, backend: Any, interface_id: str | None) -> Any:
        if not interface_id:
            raise _fail("MissingParameter", "The request must contain the parameter NetworkInterfaceId")
        interface = backend.enis.get(interface_id)
        if interface is None:
            raise _fail(
                "InvalidNetworkInterfaceID.NotFound",
                f"The networkInterface ID '{interface_id}' does not exist",
            )
        return interface

    def _check_target(self, response: EC2Response) -> None:
        backend = response.ec2_backend
        self._check_account_quota(backend.traffic_mirror_targets, "target")
        interface_id = response._get_param("NetworkInterfaceId")
        interface = self._interface(backend, interface_id)
        if getattr(interface, "interface_type", "interface") != "interface":
            raise _fail("InvalidParameterValue", f"Network interface {interface_id} is not of type interface.")
        if any(s.network_interface_id == interface_id for s in backend.traffic_mirror_sessions.values()):
            raise _fail(
                "InterfaceInUseByTrafficMirrorSession",
                f"Network interface {interface_id} is a traffic mirror source and cannot be a target.",
            )
        if any(t.network_interface_id == interface_id for t in backend.traffic_mirror_targets.values()):
            raise _fail(
                "InterfaceInUseByTrafficMirrorTarget",
                f"Network interface {interface_id} is already a traffic mirror target.",
            )
        _require_running(getattr(interface, "instance", None))

    def _check_session(self, response: EC2Response) -> None:
        backend = response.ec2_backend
        self._check_account_quota(backend.traffic_mirror_sessions, "session")
        interface_id = response._get_param("NetworkInterfaceId")
        target_id = response._get_param("TrafficMirrorTargetId")
        filter_id = response._get_param("TrafficMirrorFilterId")
        _in_range("SessionNumber", response._get_int_param("SessionNumber"), SESSION_NUMBERS, required=True)
        _in_range("VirtualNetworkId", response._get_int_param("VirtualNetworkId"), VNIS)
        _in_range("PacketLength", response._get_int_param("PacketLength"), PACKET_LENGTHS)
        interface = self._interface(backend, interface_id)
        target = backend.traffic_mirror_targets.get(target_id)
        if target is None:
            raise _fail(
                "InvalidTrafficMirrorTargetId.NotFound",
                f"The traffic mirror target '{target_id}' does not exist.",
            )
        if filter_id not in backend.traffic_mirror_filters:
            raise _fail(
                "InvalidTrafficMirrorFilterId.NotFound",
                f"The traffic mirror filter '{filter_id}' does not exist.",
            )
        if any(t.network_interface_id == interface_id for t in backend.traffic_mirror_targets.values()):
            raise _fail(
                "InterfaceInUseByTrafficMirrorTarget", f"Network interface {interface_id} is a traffic mirror target."
            )
        source = getattr(interface, "instance", None)
        if source is not None and _source_refusal(source.instance_type):
            raise _fail(
                "NetworkInterfaceNotSupported",
                f"Network interface {interface_id} ({source.instance_type}) is not supported for traffic mirroring.",
            )
        sessions = list(backend.traffic_mirror_sessions.values())
        if sum(s.network_interface_id == interface_id for s in sessions) >= SESSIONS_PER_INTERFACE:
            raise _fail(
                "TrafficMirrorSessionsPerInterfaceLimitExceeded",
                f"Network interface {interface_id} already has {SESSIONS_PER_INTERFACE} traffic mirror sessions.",
            )
        sources = {s.network_interface_id for s in sessions if s.traffic_mirror_target_id == target_id}
        if interface_id not in sources and len(sources) >= SOURCES_PER_TARGET:
            raise _fail(
                "TrafficMirrorSourcesPerTargetLimitExceeded",
                f"Traffic mirror target {target_id} already has {SOURCES_PER_TARGET} sources.",
            )
        _require_running(getattr(backend.enis.get(target.network_interface_id), "instance", None))

    def _create_rule(self, response: EC2Response) -> ActionResult:
        backend = response.ec2_backend
        params = response._get_params()
        filter_id = params.get("TrafficMirrorFilterId")
        extras = self._filter_extras(backend, filter_id)
        direction = params.get("TrafficDirection")
        if direction not in ("ingress", "egress"):
            raise _fail("InvalidParameterValue", f"Invalid value '{direction}' for TrafficDirection.")
        if params.get("RuleAction") not in ("accept", "reject"):
            raise _fail("InvalidParameterValue", f"Invalid value '{params.get('RuleAction')}' for RuleAction.")
        number = _in_range("RuleNumber", _int_or_none(params.get("RuleNumber")), SESSION_NUMBERS, required=True)
        protocol = _in_range("Protocol", _int_or_none(params.get("Protocol")), PROTOCOLS)
        for name in ("SourceCidrBlock", "DestinationCidrBlock"):
            _cidr(name, params.get(name))
        for name in ("SourcePortRange", "DestinationPortRange"):
            _port_range(name, params.get(name), protocol)
        with self._lock:
            if len(extras.rules) >= RULES_PER_FILTER:
                raise _fail(
                    "TrafficMirrorFilterRuleLimitExceeded",
                    f"Traffic mirror filter {filter_id} already has {RULES_PER_FILTER} rules.",
                )
            if any(r["TrafficDirection"] == direction and r["RuleNumber"] == number for r in extras.rules):
                raise _fail(
                    "TrafficMirrorFilterRuleAlreadyExists",
                    f"A {direction} rule with number {number} already exists in {filter_id}.",
                )
            self._rule_counter += 1
            rule = {
                "TrafficMirrorFilterRuleId": f"tmfr-{self._rule_counter:017x}",
                "TrafficMirrorFilterId": filter_id,
                "TrafficDirection": direction,
                "RuleNumber": number,
                "RuleAction": params["RuleAction"],
                "SourceCidrBlock": params["SourceCidrBlock"],
                "DestinationCidrBlock": params["DestinationCidrBlock"],
                "Description": params.get("Description"),
            }
            if protocol is not None:
                rule["Protocol"] = protocol
            for name in ("SourcePortRange", "DestinationPortRange"):
                if params.get(name):
                    rule[name] = {k: int(v) for k, v in params[name].items()}
            extras.rules.append(rule)
        return ActionResult({"TrafficMirrorFilterRule": rule, "ClientToken": params.get("ClientToken")})

    # --- reads -----------------------------------------------------------------------------------------

    def _describe_filters(self, response: EC2Response, original: Callable[..., Any]) -> ActionResult:
        result = original(response)
        filters = []
        for mirror_filter in result.result["TrafficMirrorFilters"]:
            filters.append(self._with_extras(mirror_filter.to_dict()))
        return ActionResult({"TrafficMirrorFilters": filters})

    def _with_extras(self, mirror_filter: dict[str, Any]) -> dict[str, Any]:
        """moto's filter as AWS describes it: with its rules and network services."""
        extras = self._filters.get(mirror_filter["TrafficMirrorFilterId"], _FilterExtras())
        mirror_filter["IngressFilterRules"] = [r for r in extras.rules if r["TrafficDirection"] == "ingress"]
        mirror_filter["EgressFilterRules"] = [r for r in extras.rules if r["TrafficDirection"] == "egress"]
        mirror_filter["NetworkServices"] = list(extras.network_services)
        return mirror_filter

    def _filter_extras(self, backend: Any, filter_id: str | None) -> _FilterExtras:
        if not filter_id or filter_id not in backend.traffic_mirror_filters:
            raise _fail(
                "InvalidTrafficMirrorFilterId.NotFound",
                f"The traffic mirror filter '{filter_id}' does not exist.",
            )
        with self._lock:
            return self._filters.setdefault(filter_id, _FilterExtras())

    # --- deletes and modifies ----------------------------------------------------------------------------

    def _delete_session(self, response: EC2Response, original: Callable[..., Any]) -> Any:
        session_id = response._get_param("TrafficMirrorSessionId")
        if session_id not in response.ec2_backend.traffic_mirror_sessions:
            raise _fail(
                "InvalidTrafficMirrorSessionId.NotFound",
                f"The traffic mirror session '{session_id}' does not exist.",
            )
        return original(response)

    def _delete_filter(self, response: EC2Response) -> ActionResult:
        backend = response.ec2_backend
        filter_id = response._get_param("TrafficMirrorFilterId")
        self._filter_extras(backend, filter_id)
        if any(s.traffic_mirror_filter_id == filter_id for s in backend.traffic_mirror_sessions.values()):
            raise _fail("TrafficMirrorFilterInUse", f"Traffic mirror filter {filter_id} is in use by a session.")
        del backend.traffic_mirror_filters[filter_id]
        with self._lock:
            self._filters.pop(filter_id, None)
        return ActionResult({"TrafficMirrorFilterId": filter_id})

    def _delete_target(self, response: EC2Response) -> ActionResult:
        backend = response.ec2_backend
        target_id = response._get_param("TrafficMirrorTargetId")
        if target_id not in backend.traffic_mirror_targets:
            raise _fail(
                "InvalidTrafficMirrorTargetId.NotFound",
                f"The traffic mirror target '{target_id}' does not exist.",
            )
        if any(s.traffic_mirror_target_id == target_id for s in backend.traffic_mirror_sessions.values()):
            raise _fail(
                "TrafficMirrorTargetInUseException",
                f"Traffic mirror target {target_id} is in use by a session.",
            )
        del backend.traffic_mirror_targets[target_id]
        return ActionResult({"TrafficMirrorTargetId": target_id})

    def _delete_rule(self, response: EC2Response) -> ActionResult:
        rule_id = response._get_param("TrafficMirrorFilterRuleId")
        with self._lock:
            for extras in self._filters.values():
                for rule in extras.rules:
                    if rule["TrafficMirrorFilterRuleId"] == rule_id:
                        extras.rules.remove(rule)
                        return ActionResult({"TrafficMirrorFilterRuleId": rule_id})
        raise _fail(
            "InvalidTrafficMirrorFilterRuleId.NotFound",
            f"The traffic mirror filter rule '{rule_id}' does not exist.",
        )

    def _modify_network_services(self, response: EC2Response) -> ActionResult:
        backend = response.ec2_backend
        params = response._get_params()
        filter_id = params.get("TrafficMirrorFilterId")
        extras = self._filter_extras(backend, filter_id)
        added, removed = params.get("AddNetworkServices", []), params.get("RemoveNetworkServices", [])
        for service in [*added, *removed]:
            if service != "amazon-dns":
                raise _fail("InvalidParameterValue", f"Invalid network service '{service}'.")
        with self._lock:
            for service in added:
                if service not in extras.network_services:
                    extras.network_services.append(service)
            for service in removed:
                if service in extras.network_services:
                    extras.network_services.remove(service)
        return ActionResult(
            {"TrafficMirrorFilter": self._with_extras(backend.traffic_mirror_filters[filter_id].to_dict())}
        )


# --- parameter checks, with EC2's wording ---------------------------------------------------------------


def _require_running(instance: Any) -> None:
    """The target's instance must run. AWS does not document this error (docs/aws-facts.md#traffic-mirroring-errors):
    the workflow never gets here, it waits for `running` first; the code here is a guess."""
    if instance is not None and instance._state.name != "running":
        raise _fail("IncorrectInstanceState", f"The instance {instance.id} is {instance._state.name}, not running.")


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _fail("InvalidParameterValue", f"Value ({value}) is not an integer.") from None


def _in_range(name: str, value: int | None, allowed: range, *, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise _fail("MissingParameter", f"The request must contain the parameter {name}")
        return None
    if value not in allowed:
        raise _fail(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {name} is invalid. Valid values: {allowed.start}-{allowed.stop - 1}.",
        )
    return value


def _cidr(name: str, value: Any) -> None:
    if not value:
        raise _fail("MissingParameter", f"The request must contain the parameter {name}")
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise _fail("InvalidParameterValue", f"Value ({value}) for parameter {name} is invalid.") from None


def _port_range(name: str, value: Any, protocol: int | None) -> None:
    if not value:
        return
    if protocol not in (6, 17):
        raise _fail("InvalidParameterValue", f"{name} is only valid with protocol TCP (6) or UDP (17).")
    low, high = _int_or_none(value.get("FromPort")), _int_or_none(value.get("ToPort"))
    if low is None or high is None or not (0 <= low <= high <= 65535):
        raise _fail("InvalidParameterValue", f"Invalid {name} {low}-{high}.")

"""What the workflow created, seen the way CloudTrail would see it: every successful Create call the
handlers made, and at the end whether each resource still exists."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from mirrorcap_tools.emulation.lambda_runtime import current_function


def _mirror_id(kind: str) -> Callable[[dict], list[str]]:
    return lambda response: [response[f"TrafficMirror{kind}"][f"TrafficMirror{kind}Id"]]


# Create operation -> (resource type, how to find the new id in the response)
CREATES: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "RunInstances": ("instance", lambda r: [i["InstanceId"] for i in r["Instances"]]),
    "CreateSecurityGroup": ("security-group", lambda r: [r["GroupId"]]),
    "CreateTrafficMirrorTarget": ("traffic-mirror-target", _mirror_id("Target")),
    "CreateTrafficMirrorFilter": ("traffic-mirror-filter", _mirror_id("Filter")),
    "CreateTrafficMirrorSession": ("traffic-mirror-session", _mirror_id("Session")),
}


class ResourceLedger:
    def __init__(self, region: str) -> None:
        self.region = region
        self._lock = threading.Lock()
        self.created: list[tuple[str, str]] = []
        self.calls: set[tuple[str, str]] = set()  # (function, "service:Operation") as the API names them
        # (function, "ec2:Operation", resource type, tags): the tags each EC2 create asked for, so the IAM
        # check simulates its aws:RequestTag conditions with what the code really sends.
        self.tag_specifications: list[tuple[str, str, str, dict[str, str]]] = []

    def register(self, session: boto3.session.Session) -> None:
        session.events.register("after-call.ec2", self._after_call)
        session.events.register("before-call", self._before_call)
        session.events.register("before-parameter-build.ec2", self._tags_requested)
        session.events.register("before-parameter-build.dynamodb.PutItem", self._lock_requested)
        session.events.register("after-call.dynamodb.PutItem", self._lock_written)

    def _lock_requested(self, params: dict, context: dict, **_: Any) -> None:
        context["mirrorcap_lock"] = f"{params['TableName']}/{params['Item']['source']['S']}"

    def _lock_written(self, http_response: Any, context: dict, **_: Any) -> None:
        if http_response.status_code < 300 and "mirrorcap_lock" in context:
            with self._lock:
                if ("lock", context["mirrorcap_lock"]) not in self.created:
                    self.created.append(("lock", context["mirrorcap_lock"]))

    def _tags_requested(self, params: dict, model: Any, **_: Any) -> None:
        function = current_function.get()
        if not function:
            return
        with self._lock:
            for spec in params.get("TagSpecifications", []):
                tags = {tag["Key"]: tag["Value"] for tag in spec.get("Tags", [])}
                self.tag_specifications.append((function, f"ec2:{model.name}", spec["ResourceType"], tags))

    def _before_call(self, model: Any, **_: Any) -> None:
        function = current_function.get()
        if function:
            with self._lock:
                self.calls.add((function, f"{model.service_model.endpoint_prefix}:{model.name}"))

    def _after_call(self, http_response: Any, parsed: dict, model: Any, **_: Any) -> None:
        if model.name not in CREATES or http_response.status_code >= 300:
            return
        kind, ids = CREATES[model.name]
        with self._lock:
            for resource_id in ids(parsed):
                if (kind, resource_id) not in self.created:
                    self.created.append((kind, resource_id))

    def report(self) -> list[dict[str, Any]]:
        ec2 = boto3.client("ec2", region_name=self.region)
        return [
            {"type": kind, "id": resource_id, "exists_at_end": _exists(ec2, kind, resource_id)}
            for kind, resource_id in self.created
        ]


def _exists(ec2: Any, kind: str, resource_id: str) -> bool:
    try:
        if kind == "lock":
            table, source = resource_id.split("/", 1)
            dynamodb = boto3.client("dynamodb", region_name=ec2.meta.region_name)
            return "Item" in dynamodb.get_item(TableName=table, Key={"source": {"S": source}})
        if kind == "instance":
            reservations = ec2.describe_instances(InstanceIds=[resource_id])["Reservations"]
            return any(i["State"]["Name"] != "terminated" for r in reservations for i in r["Instances"])
        if kind == "security-group":
            return bool(ec2.describe_security_groups(GroupIds=[resource_id])["SecurityGroups"])
        operation, key = {
            "traffic-mirror-target": ("describe_traffic_mirror_targets", "TrafficMirrorTarget"),
            "traffic-mirror-filter": ("describe_traffic_mirror_filters", "TrafficMirrorFilter"),
            "traffic-mirror-session": ("describe_traffic_mirror_sessions", "TrafficMirrorSession"),
        }[kind]
        return bool(getattr(ec2, operation)(**{f"{key}Ids": [resource_id]})[f"{key}s"])
    except ClientError as exc:
        if exc.response["Error"]["Code"].endswith("NotFound"):
            return False
        raise

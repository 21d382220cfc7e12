"""Finding what mirrorcap created, by its tags: the teardown's and the sweeper's view of the account.

EC2 documents `tag:` filters for instances and security groups, but not for the Traffic Mirroring
Describe calls, so mirror resources are listed in full and matched on the tags each item carries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mirrorcap.awserrors import throttling_is_transient
from mirrorcap.naming import MANAGED_BY_VALUE, TAG_CAPTURE_ID, TAG_MANAGED_BY, capture_filter
from mirrorcap.runtime import aws

# kind -> (Describe operation, list key, id key)
MIRROR_LISTINGS = {
    "session": ("describe_traffic_mirror_sessions", "TrafficMirrorSessions", "TrafficMirrorSessionId"),
    "filter": ("describe_traffic_mirror_filters", "TrafficMirrorFilters", "TrafficMirrorFilterId"),
    "target": ("describe_traffic_mirror_targets", "TrafficMirrorTargets", "TrafficMirrorTargetId"),
}
RESOURCE_KINDS = ("sessions", "filters", "targets", "instances", "security_groups")


def tags_of(item: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}


def is_managed(item: dict[str, Any], capture_id: str | None = None) -> bool:
    tags = tags_of(item)
    if tags.get(TAG_MANAGED_BY) != MANAGED_BY_VALUE:
        return False
    return capture_id is None or tags.get(TAG_CAPTURE_ID) == capture_id


@dataclass
class ManagedResources:
    """What one capture (or, with capture_id None, every capture) has in the account right now."""

    sessions: list[dict] = field(default_factory=list)
    filters: list[dict] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)
    instances: list[dict] = field(default_factory=list)
    security_groups: list[dict] = field(default_factory=list)

    def items(self) -> list[dict]:
        return [item for kind in RESOURCE_KINDS for item in getattr(self, kind)]

    def __bool__(self) -> bool:
        return bool(self.items())


def _pages(operation: str, **kwargs: Any) -> Iterator[dict]:
    with throttling_is_transient():
        yield from aws().ec2.get_paginator(operation).paginate(**kwargs)


def mirror_resources(kind: str, capture_id: str | None = None) -> list[dict]:
    operation, key, _ = MIRROR_LISTINGS[kind]
    return [item for page in _pages(operation) for item in page[key] if is_managed(item, capture_id)]


def managed_resources(capture_id: str | None = None) -> ManagedResources:
    if capture_id:
        tag_filters = capture_filter(capture_id)
    else:
        tag_filters = [{"Name": f"tag:{TAG_MANAGED_BY}", "Values": [MANAGED_BY_VALUE]}]
    live_states = {
        "Name": "instance-state-name",
        "Values": ["pending", "running", "stopping", "stopped", "shutting-down"],
    }
    instances = [
        instance
        for page in _pages("describe_instances", Filters=[*tag_filters, live_states])
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]
    groups = [g for page in _pages("describe_security_groups", Filters=tag_filters) for g in page["SecurityGroups"]]
    return ManagedResources(
        sessions=mirror_resources("session", capture_id),
        filters=mirror_resources("filter", capture_id),
        targets=mirror_resources("target", capture_id),
        instances=instances,
        security_groups=groups,
    )


def by_capture(found: ManagedResources) -> dict[str, ManagedResources]:
    """Split what every capture left into one ManagedResources per capture id."""
    groups: dict[str, ManagedResources] = {}
    for kind in RESOURCE_KINDS:
        for item in getattr(found, kind):
            capture_id = tags_of(item).get(TAG_CAPTURE_ID)
            if capture_id:
                getattr(groups.setdefault(capture_id, ManagedResources()), kind).append(item)
    return groups

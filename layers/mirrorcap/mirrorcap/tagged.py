"""Finding what mirrorcap created, by its tags: the teardown's and the sweeper's view of the account.

EC2 documents `tag:` filters for instances and security groups, but not for the Traffic Mirroring
Describe calls, so mirror resources are listed in full and matched on the tags each item carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mirrorcap.aws import instances, mirroring
from mirrorcap.naming import MANAGED_BY_VALUE, TAG_CAPTURE_ID, TAG_MANAGED_BY, capture_filter

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.type_defs import FilterTypeDef

# kind -> the key of its id in what Describe returns
MIRROR_KINDS = {
    "session": "TrafficMirrorSessionId",
    "filter": "TrafficMirrorFilterId",
    "target": "TrafficMirrorTargetId",
}
RESOURCE_KINDS = ("sessions", "filters", "targets", "instances", "security_groups")
# Every state but terminated: a stopped collector still holds its security group.
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


def tags_of(item: Mapping[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}


def is_managed(item: Mapping[str, Any], capture_id: str | None = None) -> bool:
    tags = tags_of(item)
    if tags.get(TAG_MANAGED_BY) != MANAGED_BY_VALUE:
        return False
    return capture_id is None or tags.get(TAG_CAPTURE_ID) == capture_id


@dataclass
class ManagedResources:
    """What one capture (or, with capture_id None, every capture) has in the account right now."""

    # As Describe returns them (read like dicts: mirrorcap reads ids, states and tags).
    sessions: list[Any] = field(default_factory=list)
    filters: list[Any] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)
    instances: list[Any] = field(default_factory=list)
    security_groups: list[Any] = field(default_factory=list)

    def items(self) -> list[Mapping[str, Any]]:
        return [item for kind in RESOURCE_KINDS for item in getattr(self, kind)]

    def __bool__(self) -> bool:
        return bool(self.items())


def _all_of(kind: str) -> list[Any]:
    if kind == "session":
        return mirroring.all_sessions()
    if kind == "filter":
        return mirroring.all_filters()
    return mirroring.all_targets()


def managed_mirror_resources(kind: str, capture_id: str | None = None) -> list[Any]:
    return [item for item in _all_of(kind) if is_managed(item, capture_id)]


def managed_resources(capture_id: str | None = None) -> ManagedResources:
    tag_filters: list[FilterTypeDef]
    if capture_id:
        tag_filters = capture_filter(capture_id)
    else:
        tag_filters = [{"Name": f"tag:{TAG_MANAGED_BY}", "Values": [MANAGED_BY_VALUE]}]
    live: FilterTypeDef = {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}
    return ManagedResources(
        sessions=managed_mirror_resources("session", capture_id),
        filters=managed_mirror_resources("filter", capture_id),
        targets=managed_mirror_resources("target", capture_id),
        instances=instances.instances_matching([*tag_filters, live]),
        security_groups=instances.security_groups_matching(tag_filters),
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

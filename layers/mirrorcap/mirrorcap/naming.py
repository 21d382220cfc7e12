"""Identifiers derived from a capture id: tags, idempotency tokens, the VXLAN VNI.

Everything here is a pure function of the capture id, so a retried or redriven step asks AWS for
the same thing again (same ClientToken) instead of creating a twin.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # boto3's type stubs: a development dependency, for the type checker only
    from mypy_boto3_ec2.literals import ResourceTypeType
    from mypy_boto3_ec2.type_defs import FilterTypeDef, TagSpecificationTypeDef, TagTypeDef

CAPTURE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")

# Tag keys on every resource mirrorcap creates. IAM conditions in template.yaml match these keys, the
# teardown and the sweeper find resources by them, and a SIEM rule on CreateTrafficMirror* can tell a
# sanctioned capture from an attacker's by them.
TAG_MANAGED_BY = "mirrorcap:managed-by"
TAG_CAPTURE_ID = "mirrorcap:capture-id"
TAG_SOURCE_INSTANCE = "mirrorcap:source-instance"
TAG_EXECUTION = "mirrorcap:execution"
TAG_CAPTURE_SECONDS = "mirrorcap:capture-seconds"  # on the collector: the window its capture command runs
TAG_EXPIRES_AT = "mirrorcap:expires-at"  # on the collector: when it powers itself off if still alive
MANAGED_BY_VALUE = "mirrorcap"

MAX_VNI = 16_777_215


def new_capture_id(started_at: datetime, instance_id: str, discriminator: str) -> str:
    """`mc-<utc time>-<instance suffix>-<hash>`: sortable, readable, unique per trigger occurrence.

    `discriminator` is what makes two captures of one instance at the same second different (the
    execution id, or the alarm's state-change time): the same trigger occurrence yields the same id.
    """
    stamp = started_at.strftime("%Y%m%dt%H%M%Sz")
    instance_suffix = instance_id.removeprefix("i-")[-10:]
    digest = hashlib.sha256(f"{instance_id}|{discriminator}".encode()).hexdigest()[:6]
    return f"mc-{stamp}-{instance_suffix}-{digest}"


def client_token(capture_id: str, execution_id: str, step: str) -> str:
    """Idempotency token for one Create call (AWS: at most 64 ASCII characters).

    Per execution: a retried or redriven step (same execution) repeats its token, but a late duplicate
    of the same alarm (same capture id, new execution) must not be handed the first run's resources.
    """
    run = hashlib.sha256(execution_id.encode()).hexdigest()[:8]
    token = f"{capture_id}.{run}.{step}"
    if len(token) <= 64:
        return token
    return f"{capture_id[:40]}.{hashlib.sha256(token.encode()).hexdigest()[:23]}"


def vni_for(capture_id: str) -> int:
    """The capture's VXLAN VNI (1..16777215): stable, so the pcap itself says which capture it is."""
    return int(hashlib.sha256(capture_id.encode()).hexdigest(), 16) % MAX_VNI + 1


def capture_prefix(capture_id: str) -> str:
    return f"captures/{capture_id}/"


def resource_tags(
    capture_id: str,
    source_instance_id: str,
    execution_id: str | None = None,
    extra: dict[str, str] | None = None,
) -> list[TagTypeDef]:
    tags: list[TagTypeDef] = [
        {"Key": "Name", "Value": f"mirrorcap {capture_id}"},
        {"Key": TAG_MANAGED_BY, "Value": MANAGED_BY_VALUE},
        {"Key": TAG_CAPTURE_ID, "Value": capture_id},
        {"Key": TAG_SOURCE_INSTANCE, "Value": source_instance_id},
    ]
    if execution_id:
        tags.append({"Key": TAG_EXECUTION, "Value": execution_id[-255:]})
    tags.extend({"Key": key, "Value": value} for key, value in (extra or {}).items())
    return tags


def tag_specifications(resource_type: ResourceTypeType, tags: list[TagTypeDef]) -> list[TagSpecificationTypeDef]:
    return [{"ResourceType": resource_type, "Tags": tags}]


def capture_filter(capture_id: str) -> list[FilterTypeDef]:
    """EC2 Describe* filter selecting what one capture created."""
    return [
        {"Name": f"tag:{TAG_MANAGED_BY}", "Values": [MANAGED_BY_VALUE]},
        {"Name": f"tag:{TAG_CAPTURE_ID}", "Values": [capture_id]},
    ]

"""What an e2e run checks, each as one line: the capture's results, the cleanup, the first-deploy risks.

Everything is read from AWS directly (S3 objects, EC2 and DynamoDB state, the execution's history),
not from the workflow's own account of it: the point is to catch the workflow being wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError
from mirrorcap.naming import TAG_CAPTURE_ID, capture_prefix

from mirrorcap_tools.e2e.stack import DeployedStack, aws_client

# What every successful capture leaves under captures/<capture-id>/ besides its pcaps (README).
REPORT_OBJECTS = ("manifest.json", "summary.json", "report.html", "decapsulated.pcap")
MIRROR_LISTINGS = {
    "mirror session": ("describe_traffic_mirror_sessions", "TrafficMirrorSessions", "TrafficMirrorSessionId"),
    "mirror filter": ("describe_traffic_mirror_filters", "TrafficMirrorFilters", "TrafficMirrorFilterId"),
    "mirror target": ("describe_traffic_mirror_targets", "TrafficMirrorTargets", "TrafficMirrorTargetId"),
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class ExecutionEvidence:
    """One execution as its history tells it."""

    status: str
    error: str | None = None
    cause: str | None = None
    output: dict[str, Any] | None = None
    capture_id: str | None = None
    collector: dict[str, Any] | None = None  # LaunchCollector's output
    ping_statuses: list[str | None] = field(default_factory=list)  # every CheckCollectorReady's view of the agent
    states_entered: int = 0
    started: datetime | None = None
    stopped: datetime | None = None


def _state_outputs(events: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    outputs = []
    for event in events:
        details = event.get("stateExitedEventDetails")
        if details and details["name"] == state and details.get("output"):
            outputs.append(json.loads(details["output"]))
    return outputs


def read_execution(session: boto3.session.Session, execution_arn: str) -> ExecutionEvidence:
    sfn = aws_client(session, "stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn)
    events = [
        event
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        for event in page["events"]
    ]
    resolved = _state_outputs(events, "ResolveRequest")
    launched = _state_outputs(events, "LaunchCollector")
    readiness = [o.get("readiness") or {} for o in _state_outputs(events, "CheckCollectorReady")]
    output = described.get("output")
    return ExecutionEvidence(
        status=described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
        output=json.loads(output) if output else None,
        capture_id=((resolved[0].get("capture") or {}).get("capture_id") if resolved else None),
        collector=launched[0].get("collector") if launched else None,
        ping_statuses=[r.get("ping_status") for r in readiness],
        states_entered=sum(e["type"].endswith("StateEntered") for e in events),
        started=described.get("startDate"),
        stopped=described.get("stopDate"),
    )


def collector_volumes(session: boto3.session.Session, collector_id: str) -> list[tuple[str, bool]]:
    """(volume id, encrypted) of the collector's volumes; read while it runs (they go with it)."""
    volumes = aws_client(session, "ec2").describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [collector_id]}]
    )["Volumes"]
    return [(v["VolumeId"], bool(v.get("Encrypted"))) for v in volumes]


# --- The capture -----------------------------------------------------------------------------------------


def capture_checks(
    session: boto3.session.Session, stack: DeployedStack, evidence: ExecutionEvidence, source_interface: str
) -> list[Check]:
    checks = [
        Check(
            "execution succeeded",
            evidence.status == "SUCCEEDED",
            evidence.status
            if evidence.status == "SUCCEEDED"
            else f"{evidence.status}: {evidence.error}: {evidence.cause}",
        )
    ]
    if not evidence.capture_id:
        return [*checks, Check("capture id", False, "ResolveRequest produced none: nothing else can be checked")]
    checks += _artifact_checks(session, stack.bucket, evidence.capture_id)
    checks.append(_nothing_left(session, stack, evidence.capture_id, source_interface))
    return checks


def _artifact_checks(session: boto3.session.Session, bucket: str, capture_id: str) -> list[Check]:
    s3 = aws_client(session, "s3")
    prefix = capture_prefix(capture_id)
    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    }
    missing = [name for name in REPORT_OBJECTS if prefix + name not in keys]
    pcaps = sorted(k for k in keys if k.endswith(".pcap") and k != prefix + "decapsulated.pcap")
    checks = [
        Check(
            "objects in S3",
            not missing and bool(pcaps),
            f"s3://{bucket}/{prefix}: {len(pcaps)} pcap(s) and {', '.join(REPORT_OBJECTS)}"
            if not missing and pcaps
            else f"missing under s3://{bucket}/{prefix}: {', '.join(missing) or 'every pcap'} (found {sorted(keys)})",
        )
    ]
    if prefix + "manifest.json" in keys:
        checks.append(_hashes_match(s3, bucket, prefix, keys))
    if prefix + "summary.json" in keys:
        summary = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "summary.json")["Body"].read())
        http = summary.get("http") or {}
        requests, responses = http.get("requests", 0), http.get("responses", 0)
        checks.append(
            Check(
                "HTTP in the capture",
                requests > 0 and responses > 0,
                f"summary.json: {requests} HTTP request(s), {responses} response(s), "
                f"statuses {http.get('responses_by_status', {})}",
            )
        )
    return checks


def _hashes_match(s3: Any, bucket: str, prefix: str, keys: set[str]) -> Check:
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    files = manifest.get("files") or []
    wrong = []
    for entry in files:
        if entry["key"] not in keys:
            wrong.append(f"{entry['key']} is in the manifest, not in S3")
            continue
        body = s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        if digest != entry["sha256"] or len(body) != entry["bytes"]:
            wrong.append(
                f"{entry['key']}: {len(body)} bytes, sha256 {digest}; manifest: {entry['bytes']}, {entry['sha256']}"
            )
    listed = {entry["key"] for entry in files}
    unlisted = sorted(k for k in keys if k.endswith(".pcap") and k != prefix + "decapsulated.pcap" and k not in listed)
    wrong += [f"{key} is in S3, not in the manifest" for key in unlisted]
    return Check(
        "pcap SHA-256s match the manifest",
        bool(files) and not wrong,
        "; ".join(wrong) if wrong else f"{len(files)} file(s), {manifest.get('packets_captured')} packets",
    )


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}


def _nothing_left(
    session: boto3.session.Session, stack: DeployedStack, capture_id: str, source_interface: str
) -> Check:
    """Everything tagged with the capture id is gone (instances terminated), and the lock is released."""
    ec2 = aws_client(session, "ec2")
    by_capture = [{"Name": f"tag:{TAG_CAPTURE_ID}", "Values": [capture_id]}]
    left = [
        f"instance {i['InstanceId']} ({i['State']['Name']})"
        for page in ec2.get_paginator("describe_instances").paginate(Filters=by_capture)
        for r in page["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    groups = ec2.describe_security_groups(Filters=by_capture)["SecurityGroups"]
    left += [f"security group {g['GroupId']}" for g in groups]
    for kind, (operation, key, id_key) in MIRROR_LISTINGS.items():
        # Listed whole and matched here: the tag is what matters, whatever the Describe call filters on.
        for page in ec2.get_paginator(operation).paginate():
            left += [f"{kind} {item[id_key]}" for item in page[key] if _tags(item).get(TAG_CAPTURE_ID) == capture_id]
    lock = (
        aws_client(session, "dynamodb")
        .get_item(TableName=stack.lock_table, Key={"source": {"S": source_interface}}, ConsistentRead=True)
        .get("Item")
    )
    if lock and lock.get("capture_id", {}).get("S") == capture_id:
        left.append(f"the lock on {source_interface}")
    return Check(
        "nothing left tagged with the capture id",
        not left,
        "; ".join(left) if left else f"nothing of {capture_id} remains (instances terminated)",
    )


# --- First-deploy risks ------------------------------------------------------------------------------------


def risk_checks(
    session: boto3.session.Session, evidence: ExecutionEvidence, volumes: list[tuple[str, bool]] | None
) -> list[Check]:
    collector = evidence.collector
    online = "Online" in evidence.ping_statuses
    checks = [
        Check(
            "collector instance credentials (role trust aws:SourceAccount)",
            online,
            "the collector's SSM agent reached Online (execution history, CheckCollectorReady)"
            if online
            else f"the SSM agent never reached Online (seen: {evidence.ping_statuses or 'no readiness check'}): "
            "without instance credentials the agent cannot register",
        )
    ]
    if collector is None:
        checks.append(Check("AMI owner condition (RunInstances allowed)", False, "LaunchCollector never succeeded"))
    else:
        checks.append(_image_owner(session, collector))
    if not volumes:
        checks.append(
            Check("encrypted collector volume", False, "the collector's volumes were never seen while it ran")
        )
    else:
        plain = [volume for volume, encrypted in volumes if not encrypted]
        checks.append(
            Check(
                "encrypted collector volume",
                not plain,
                f"not encrypted: {', '.join(plain)}"
                if plain
                else f"{', '.join(v for v, _ in volumes)} of {collector and collector['instance_id']} encrypted",
            )
        )
    return checks


def _image_owner(session: boto3.session.Session, collector: dict[str, Any]) -> Check:
    detail = f"the collector {collector['instance_id']} launched from {collector['image_id']}"
    try:
        images = aws_client(session, "ec2").describe_images(ImageIds=[collector["image_id"]])["Images"]
    except ClientError as exc:
        return Check("AMI owner condition (RunInstances allowed)", True, f"{detail} (owner not readable: {exc})")
    owner = (images[0].get("ImageOwnerAlias") or images[0].get("OwnerId")) if images else "unknown"
    return Check("AMI owner condition (RunInstances allowed)", True, f"{detail}, owned by {owner}")

"""`mirrorcap ls`: recent captures, from the executions (status, source, usage) and the bucket (bytes,
the report's numbers, and captures whose executions Step Functions no longer lists)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from mirrorcap_tools.operator.artifacts import list_objects, read_json
from mirrorcap_tools.operator.aws import Connection, OperatorError
from mirrorcap_tools.operator.captures import read_view
from mirrorcap_tools.operator.cost import estimate, function_memory_mb, usage_of
from mirrorcap_tools.operator.stack import Stack


@dataclass
class CaptureRow:
    capture_id: str
    source: str | None
    trigger: str | None
    status: str
    started: str | None
    duration_seconds: float | None
    packets: int | None
    bytes: int
    http_5xx: int | None
    cost: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(text: str) -> timedelta:
    """`90m`, `24h`, `7d`."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise OperatorError(f"--since {text!r}: a number and m, h or d (e.g. 24h)")
    return timedelta(**{units[unit]: int(number)})


def list_captures(connection: Connection, stack: Stack, since: timedelta) -> list[CaptureRow]:
    cutoff = connection.server_now() - since
    memory = function_memory_mb()
    rows: list[CaptureRow] = []
    seen: set[str] = set()
    token: str | None = None
    while True:
        page = connection.call(
            "stepfunctions", "list_executions", stateMachineArn=stack.state_machine_arn,
            **({"nextToken": token} if token else {}),
        )  # fmt: skip
        recent = [e for e in page["executions"] if e["startDate"] >= cutoff]
        for summary in recent:
            row = _row(connection, stack, summary, memory)
            if row is not None:
                rows.append(row)
                seen.add(row.capture_id)
        token = page.get("nextToken")
        # Newest first: once a page reaches past the cutoff, the rest is older still.
        if not token or len(recent) < len(page["executions"]):
            break
    rows += _bucket_only(connection, stack, seen, cutoff)
    return rows


def _row(connection: Connection, stack: Stack, summary: dict[str, Any], memory: dict[str, int]) -> CaptureRow | None:
    described = connection.call("stepfunctions", "describe_execution", executionArn=summary["executionArn"])
    view = read_view(connection, described, summary["name"])
    capture_id = view.capture.get("capture_id") or (view.output or {}).get("capture_id")
    if not capture_id:
        if "FanOut" in view.states:
            return None  # a fan-out execution captures nothing itself: its children are listed
        capture_id = summary["name"]
    view.capture_id = capture_id
    objects = list_objects(connection, stack.bucket, view.prefix) if view.command else []
    stored = sum(o.bytes for o in objects)
    artifacts = view.artifacts or {}
    report = (view.output or {}).get("report") or {}
    http_5xx = None
    if "summary_key" in report:
        statuses = (read_json(connection, stack.bucket, report["summary_key"]).get("http") or {}).get(
            "responses_by_status"
        ) or {}
        http_5xx = sum(int(n) for status, n in statuses.items() if str(status).startswith("5"))
    status = view.status
    if (view.output or {}).get("status") == "already capturing":
        status = "ALREADY_CAPTURING"
    end = view.stopped or connection.server_now()
    return CaptureRow(
        capture_id=capture_id,
        source=view.capture.get("instance_id") or _input_instance(described),
        trigger=(view.capture.get("origin") or {}).get("trigger"),
        status=status,
        started=view.started.isoformat(),
        duration_seconds=round((end - view.started).total_seconds(), 1),
        packets=artifacts.get("packets_captured"),
        bytes=stored,
        http_5xx=http_5xx,
        cost=estimate(usage_of(view, stored, memory)).as_dict(),
    )


def _input_instance(described: dict[str, Any]) -> str | None:
    try:
        document = json.loads(described.get("input") or "{}")
    except ValueError:
        return None
    value = document.get("instance_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def _bucket_only(connection: Connection, stack: Stack, seen: set[str], cutoff: datetime) -> list[CaptureRow]:
    """Captures in the bucket whose executions were not listed (Step Functions keeps them 90 days)."""
    rows = []
    page = connection.call("s3", "list_objects_v2", Bucket=stack.bucket, Prefix="captures/", Delimiter="/")
    for common in page.get("CommonPrefixes", []):
        capture_id = common["Prefix"].removeprefix("captures/").rstrip("/")
        if capture_id in seen:
            continue
        objects = list_objects(connection, stack.bucket, common["Prefix"])
        modified = [o.modified for o in objects if o.modified is not None]
        if not modified or max(modified) < cutoff:
            continue
        rows.append(
            CaptureRow(
                capture_id, None, None, "IN_BUCKET_ONLY", None, None, None, sum(o.bytes for o in objects), None, None
            )
        )
    return rows

"""LockSource: one capture per source interface at a time.

A burst of alarms for one instance starts a burst of executions (EventBridge cannot name them, so
they do not dedupe). The first takes the interface's lock with a conditional write; the others end
cleanly, having created nothing. Teardown releases the lock last; a lock whose run died without
teardown expires on its own (`expires_at`: the longest the run could take, plus a grace period).
"""

from __future__ import annotations

from datetime import timedelta

from botocore.exceptions import ClientError

from mirrorcap.awserrors import error_code, throttling_is_transient
from mirrorcap.errors import SourceAlreadyCapturing
from mirrorcap.models import CaptureRequest, LaunchCollectorInput, SourceLock
from mirrorcap.runtime import aws, now
from mirrorcap.settings import Settings

LOCK_GRACE = timedelta(minutes=30)


def _expiry(capture: CaptureRequest, settings: Settings) -> int:
    longest_run = timedelta(seconds=capture.duration_seconds + settings.readiness_timeout_seconds) + LOCK_GRACE
    return int((now() + longest_run).timestamp())


def acquire_source_lock(data: LaunchCollectorInput, settings: Settings) -> SourceLock:
    capture = data.capture
    acquired_at = now()
    expires_at = _expiry(capture, settings)
    try:
        with throttling_is_transient():
            aws().dynamodb.put_item(
                TableName=settings.lock_table,
                Item={
                    "source": {"S": capture.network_interface_id},
                    "capture_id": {"S": capture.capture_id},
                    "instance_id": {"S": capture.instance_id},
                    "execution_id": {"S": capture.execution_id},
                    "acquired_at": {"S": acquired_at.isoformat()},
                    "expires_at": {"N": str(expires_at)},
                },
                # Free, already this execution's (a retried step), or left by a run that died without
                # teardown. Per execution, not per capture id: a twice-delivered alarm names the same capture.
                ConditionExpression="attribute_not_exists(#source) OR execution_id = :me OR expires_at < :now",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues={
                    ":me": {"S": capture.execution_id},
                    ":now": {"N": str(int(acquired_at.timestamp()))},
                },
            )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        raise SourceAlreadyCapturing(_holder_message(capture, settings)) from None
    return SourceLock(source=capture.network_interface_id, capture_id=capture.capture_id, expires_at=expires_at)


def _holder_message(capture: CaptureRequest, settings: Settings) -> str:
    holder = (
        aws()
        .dynamodb.get_item(
            TableName=settings.lock_table, Key={"source": {"S": capture.network_interface_id}}, ConsistentRead=True
        )
        .get("Item", {})
    )
    other = holder.get("capture_id", {}).get("S", "another capture")
    since = holder.get("acquired_at", {}).get("S", "?")
    return (
        f"already capturing: {capture.network_interface_id} of {capture.instance_id} is being captured by "
        f"{other} (since {since}); nothing was created for this request"
    )


def release_source_lock(capture: CaptureRequest, settings: Settings) -> bool:
    """Delete the lock if this execution holds it. True when it was ours and is gone now."""
    return release_lock(settings, capture.network_interface_id, capture.execution_id)


def release_lock(settings: Settings, source: str, execution_id: str) -> bool:
    """Delete `source`'s lock only if `execution_id` holds it (never another run's lock)."""
    try:
        with throttling_is_transient():
            aws().dynamodb.delete_item(
                TableName=settings.lock_table,
                Key={"source": {"S": source}},
                ConditionExpression="execution_id = :holder",
                ExpressionAttributeValues={":holder": {"S": execution_id}},
            )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False  # held by another run now, or already released
        raise
    return True

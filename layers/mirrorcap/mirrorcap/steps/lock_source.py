"""LockSource: one capture per source interface at a time.

A burst of alarms for one instance starts a burst of executions (EventBridge cannot name them, so
they do not dedupe). The first takes the interface's lock with a conditional write; the others end
cleanly, having created nothing. Teardown releases the lock last; a lock whose run died without
teardown expires on its own (`expires_at`: the longest the run could take, plus a grace period).
"""

from __future__ import annotations

from datetime import timedelta

from mirrorcap.aws import locks
from mirrorcap.errors import SourceAlreadyCapturing
from mirrorcap.models import CaptureRequest, LockSourceInput, LockSourceOutput
from mirrorcap.runtime import now
from mirrorcap.settings import Settings

LOCK_GRACE = timedelta(minutes=30)


def _expiry(capture: CaptureRequest, settings: Settings) -> int:
    longest_run = timedelta(seconds=capture.duration_seconds + settings.readiness_timeout_seconds) + LOCK_GRACE
    return int((now() + longest_run).timestamp())


def lock_source(data: LockSourceInput, settings: Settings) -> LockSourceOutput:
    capture = data.capture
    acquired_at = now()
    expires_at = _expiry(capture, settings)
    holder = {
        "capture_id": capture.capture_id,
        "instance_id": capture.instance_id,
        "execution_id": capture.execution_id,
        "acquired_at": acquired_at.isoformat(),
    }
    written = locks.write_lock_if_free(
        settings.lock_table,
        capture.network_interface_id,
        holder,
        expires_at=expires_at,
        at=int(acquired_at.timestamp()),
    )
    if not written:
        raise SourceAlreadyCapturing(_holder_message(capture, settings))
    return LockSourceOutput(source=capture.network_interface_id, capture_id=capture.capture_id, expires_at=expires_at)


def _holder_message(capture: CaptureRequest, settings: Settings) -> str:
    holder = locks.read_lock(settings.lock_table, capture.network_interface_id)
    other = holder.get("capture_id", "another capture")
    since = holder.get("acquired_at", "?")
    return (
        f"already capturing: {capture.network_interface_id} of {capture.instance_id} is being captured by "
        f"{other} (since {since}); nothing was created for this request"
    )


def release_source_lock(capture: CaptureRequest, settings: Settings) -> bool:
    """Delete the lock if this execution holds it. True when it was ours and is gone now."""
    return locks.delete_lock_if_held(settings.lock_table, capture.network_interface_id, capture.execution_id)

"""SweepOrphans: the backstop for runs whose teardown never ran.

Catch does not run when an execution is stopped or times out. On a schedule, this finds what
mirrorcap created (by its tags; nothing untagged is ever touched) whose execution is no longer
running, or whose collector outlived its longest possible run, and deletes it in AWS's order. What
must wait (a collector still shutting down) is finished by a later sweep. Locks of finished
executions are released too.
"""

from __future__ import annotations

from datetime import datetime

from mirrorcap.aws import executions, locks
from mirrorcap.errors import AwsRequestFailed
from mirrorcap.models import SweepOrphansInput, SweepOrphansOutput
from mirrorcap.naming import TAG_EXECUTION, TAG_EXPIRES_AT
from mirrorcap.observability import logger
from mirrorcap.runtime import now
from mirrorcap.settings import Settings
from mirrorcap.steps.teardown_capture import delete_in_order
from mirrorcap.tagged import ManagedResources, by_capture, managed_resources, tags_of


def sweep_orphans(data: SweepOrphansInput, settings: Settings) -> SweepOrphansOutput:
    status_cache: dict[str, str] = {}
    swept, deleted, pending, kept = [], [], [], []
    for capture_id, found in sorted(by_capture(managed_resources()).items()):
        reason = _orphan_reason(found, status_cache)
        if reason is None:
            kept.append(capture_id)
            continue
        logger.warning("sweeping orphaned capture", extra={"capture_id": capture_id, "reason": reason})
        swept.append(capture_id)
        if not data.dry_run:
            done = delete_in_order(found)
            deleted += done.deleted
            pending += done.pending
    released = [] if data.dry_run else _release_stale_locks(settings, status_cache)
    return SweepOrphansOutput(
        swept=swept, kept=kept, deleted=deleted, pending=pending, locks_released=released, dry_run=data.dry_run
    )


def _orphan_reason(found: ManagedResources, status_cache: dict[str, str]) -> str | None:
    executions = {execution for item in found.items() if (execution := tags_of(item).get(TAG_EXECUTION))}
    for execution in executions:
        status = _execution_status(execution, status_cache)
        if status != "RUNNING":
            return f"execution {execution} is {status}"
    for instance in found.instances:
        expires = tags_of(instance).get(TAG_EXPIRES_AT)
        if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) < now():
            return f"collector {instance['InstanceId']} outlived its longest possible run ({expires})"
    if not executions:
        return "no execution tag: not a run this workflow can finish"
    return None


def _execution_status(execution_arn: str, cache: dict[str, str]) -> str:
    if execution_arn not in cache:
        try:
            cache[execution_arn] = executions.execution_status(execution_arn)
        except AwsRequestFailed as exc:
            if exc.code not in ("ExecutionDoesNotExist", "InvalidArn"):
                raise
            cache[execution_arn] = "GONE"
    return cache[execution_arn]


def _release_stale_locks(settings: Settings, status_cache: dict[str, str]) -> list[str]:
    released = []
    for lock in locks.all_locks(settings.lock_table):
        source, execution = lock["source"], lock["execution_id"]
        if _execution_status(execution, status_cache) != "RUNNING" and locks.delete_lock_if_held(
            settings.lock_table, source, execution
        ):
            released.append(source)
    return released

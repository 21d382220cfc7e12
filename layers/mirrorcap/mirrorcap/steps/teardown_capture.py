"""TeardownCapture: delete everything one capture created, in the order AWS requires.

session -> filter and target (in use while a session uses them) -> terminate the collector -> once it
is terminated, its security group (DependencyViolation before) -> the source's capture lock
(docs/aws-facts.md#traffic-mirroring-teardown). Resources are found by the capture's tags, not taken from the
state, so teardown also cleans up after a step that failed halfway through.
Idempotent: NotFound counts as done, and a call that finds nothing left reports complete.
"""

from __future__ import annotations

from collections.abc import Callable

from mirrorcap.aws import instances, mirroring
from mirrorcap.errors import AwsRequestFailed, TeardownIncomplete
from mirrorcap.models import TeardownCaptureInput, TeardownCaptureOutput
from mirrorcap.observability import logger
from mirrorcap.settings import Settings
from mirrorcap.steps.lock_source import release_source_lock
from mirrorcap.tagged import ManagedResources, managed_resources

# Codes that mean "not yet": the resource is still in use or still detaching; the next round deletes it.
STILL_IN_USE = frozenset(
    {"TrafficMirrorFilterInUse", "TrafficMirrorTargetInUseException", "DependencyViolation", "IncorrectState"}
)


class DeletionRound:
    """One pass over the capture's resources, recording what went and what must wait."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.pending: list[str] = []

    def delete(self, resource_id: str, delete: Callable[[str], None]) -> bool:
        try:
            delete(resource_id)
        except AwsRequestFailed as exc:
            if exc.not_found:
                return True
            if exc.code in STILL_IN_USE:
                logger.info("teardown must wait", extra={"resource": resource_id, "code": exc.code})
                self.pending.append(resource_id)
                return False
            logger.error(
                "teardown call failed",
                extra={"resource": resource_id, "code": exc.code, "aws_message": exc.aws_message},
            )
            raise
        self.deleted.append(resource_id)
        return True


def delete_in_order(found: ManagedResources) -> DeletionRound:
    """One pass of deletes over what one capture left, in AWS's order (the teardown's and the sweeper's)."""
    done = DeletionRound()
    _delete_mirroring(found, done)
    _terminate_collectors(found, done)
    _delete_security_groups(found, done)
    return done


def teardown_capture(data: TeardownCaptureInput, settings: Settings) -> TeardownCaptureOutput:
    done = delete_in_order(managed_resources(data.capture.capture_id))
    if not done.pending and release_source_lock(data.capture, settings):
        done.deleted.append(f"lock:{data.capture.network_interface_id}")
    attempt = data.teardown.attempt + 1
    progress = TeardownCaptureOutput(
        attempt=attempt,
        complete=not done.pending,
        deleted=[*data.teardown.deleted, *done.deleted],
        pending=done.pending,
    )
    logger.info("teardown round", extra={"attempt": attempt, "deleted": done.deleted, "pending": done.pending})
    if done.pending and attempt >= settings.teardown_max_attempts:
        raise TeardownIncomplete(
            f"after {attempt} rounds these still exist: {', '.join(done.pending)} "
            "(the scheduled sweeper retries; nothing else holds them)"
        )
    return progress


def _delete_mirroring(found: ManagedResources, done: DeletionRound) -> None:
    sessions_gone = all(
        done.delete(session["TrafficMirrorSessionId"], mirroring.delete_session) for session in found.sessions
    )
    # Filters and targets are in use while a session uses them: only once every session is gone.
    for items, id_key, delete in (
        (found.filters, "TrafficMirrorFilterId", mirroring.delete_filter),
        (found.targets, "TrafficMirrorTargetId", mirroring.delete_target),
    ):
        for item in items:
            if sessions_gone:
                done.delete(item[id_key], delete)
            else:
                done.pending.append(item[id_key])


def _terminate_collectors(found: ManagedResources, done: DeletionRound) -> None:
    done.pending.extend(i["InstanceId"] for i in found.instances if i["State"]["Name"] == "shutting-down")
    ids = [i["InstanceId"] for i in found.instances if i["State"]["Name"] != "shutting-down"]
    if not ids:
        return
    for change in instances.terminate_instances(ids):
        if change["CurrentState"]["Name"] == "terminated":
            done.deleted.append(change["InstanceId"])
        else:
            done.pending.append(change["InstanceId"])


def _delete_security_groups(found: ManagedResources, done: DeletionRound) -> None:
    collectors_left = any(pending.startswith("i-") for pending in done.pending)
    for group in found.security_groups:
        if collectors_left:
            done.pending.append(group["GroupId"])
        else:
            done.delete(group["GroupId"], instances.delete_security_group)

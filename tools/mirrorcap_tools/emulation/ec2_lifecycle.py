"""Instance state transitions that take time on AWS and none in moto 5.2.5.

moto starts instances `running` and terminates them at once. On AWS an instance is `pending` for a
while, and `shutting-down` for a while after TerminateInstances, and its security group cannot be
deleted (DependencyViolation) until it is `terminated`. Transitions happen on the virtual clock and
are applied whenever the emulated world is looked at.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from moto.ec2.models.instances import InstanceBackend
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.responses import EC2Response

from mirrorcap_tools.emulation.clock import VirtualClock
from mirrorcap_tools.emulation.errors import AwsError

PENDING, RUNNING, SHUTTING_DOWN, TERMINATED = (
    ("pending", 0),
    ("running", 16),
    ("shutting-down", 32),
    ("terminated", 48),
)


class InstanceLifecycle:
    def __init__(self, clock: VirtualClock, boot_seconds: float = 20, shutdown_seconds: float = 30) -> None:
        self.clock = clock
        self.boot_seconds = boot_seconds
        self.shutdown_seconds = shutdown_seconds
        self._lock = threading.RLock()
        self._due: dict[str, tuple[float, tuple[str, int], Any]] = {}  # instance id -> (when, next state, instance)
        self.running_since: dict[str, float] = {}  # virtual elapsed seconds when each instance became running

    def advance(self, _backend: Any = None) -> None:
        now = self.clock.elapsed()
        with self._lock:
            for instance_id, (when, state, instance) in list(self._due.items()):
                if when <= now:
                    _set_state(instance, state)
                    del self._due[instance_id]
                    if state == RUNNING:
                        self.running_since[instance_id] = when

    def advance_now(self, instance_id: str) -> None:
        """Complete an instance's pending transition at once (instances that were up before the run)."""
        with self._lock:
            _when, state, instance = self._due.pop(instance_id)
            _set_state(instance, state)
            if state == RUNNING:
                self.running_since[instance_id] = float("-inf")

    def _begin(self, instance: Any, state: tuple[str, int], seconds: float, then: tuple[str, int]) -> None:
        """Put the instance in `state` now and in `then` after `seconds` of virtual time."""
        _set_state(instance, state)
        self._due[instance.id] = (self.clock.elapsed() + seconds, then, instance)

    def state_of(self, instance: Any) -> str:
        self.advance()
        return instance._state.name

    def patches(self) -> list[tuple[type, str, Callable[..., Any]]]:
        lifecycle = self
        run_instances = InstanceBackend.run_instances
        terminate_instances = InstanceBackend.terminate_instances
        delete_security_group = SecurityGroupBackend.delete_security_group

        def booting(backend: Any, *args: Any, **kwargs: Any) -> Any:
            reservation = run_instances(backend, *args, **kwargs)
            with lifecycle._lock:
                for instance in reservation.instances:
                    lifecycle._begin(instance, PENDING, lifecycle.boot_seconds, RUNNING)
            return reservation

        def shutting_down(backend: Any, instance_ids: list[str]) -> Any:
            lifecycle.advance()
            with lifecycle._lock:
                # Terminating again does not restart the shutdown; a terminated instance stays terminated.
                changes = terminate_instances(backend, instance_ids)
                for instance, previous in changes:
                    if previous.name in ("shutting-down", "terminated"):
                        _set_state(instance, (previous.name, previous.code))
                        continue
                    lifecycle._begin(instance, SHUTTING_DOWN, lifecycle.shutdown_seconds, TERMINATED)
            return changes

        def delete_group(backend: Any, name: str | None = None, group_id: str | None = None) -> Any:
            lifecycle.advance()
            if group_id is None and name is not None:
                group = backend.get_security_group_by_name_or_id(name)
                group_id = group.id if group else None
            for reservation in backend.all_reservations():
                for instance in reservation.instances:
                    if instance._state.name != "terminated" and any(
                        group.id == group_id for group in instance.security_groups
                    ):
                        raise AwsError("DependencyViolation", f"resource {group_id} has a dependent object")
            return delete_security_group(backend, name=name, group_id=group_id)

        def advancing(describe: Callable[[EC2Response], Any]) -> Callable[[EC2Response], Any]:
            """A read of instance state sees every transition that is due by now."""

            def read(response: EC2Response) -> Any:
                lifecycle.advance()
                return describe(response)

            return read

        return [
            (InstanceBackend, "run_instances", booting),
            (InstanceBackend, "terminate_instances", shutting_down),
            (SecurityGroupBackend, "delete_security_group", delete_group),
            (EC2Response, "describe_instances", advancing(EC2Response.describe_instances)),
            (EC2Response, "describe_instance_status", advancing(EC2Response.describe_instance_status)),
        ]


def _set_state(instance: Any, state: tuple[str, int]) -> None:
    instance._state.name, instance._state.code = state

"""AWS without AWS: moto, plus a small emulation of what moto lacks, on a virtual clock.

moto executes the real ASL (its interpreter is LocalStack's) and most of EC2, S3, SSM, IAM and Lambda.
What it lacks or gets wrong for mirrorcap is filled in here, each piece in its own module and each
failing with AWS's own error codes:

- ec2_mirroring: filter rules, network services, filter/target deletes, ClientToken, quotas, checks
- ec2_lifecycle: pending -> running, shutting-down -> terminated, DependencyViolation on a busy group
- ssm_agent:     agent registration, SendCommand to named online instances, command status over time
- lambda_runtime: Lambda Invoke runs the real handlers in-process, errors as the Python runtime reports them
- stepfunctions_input: StartExecution refuses input that is not JSON with InvalidExecutionInput
- and here: Wait states, Retry intervals and Task timeouts pass on the virtual clock.

It is written against exactly moto 5.2.5 (MOTO_VERSION): moto's internals are what it patches, so any
other version is refused instead of half-working (tests/emulation pin every behaviour it relies on).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import types
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock

import moto
from mirrorcap import runtime
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from mirrorcap_tools.emulation import stepfunctions_input
from mirrorcap_tools.emulation.clock import VirtualClock
from mirrorcap_tools.emulation.ec2_lifecycle import InstanceLifecycle
from mirrorcap_tools.emulation.ec2_mirroring import TrafficMirroringRules
from mirrorcap_tools.emulation.lambda_runtime import InProcessLambdaRuntime
from mirrorcap_tools.emulation.ssm_agent import CommandExecutor, SsmAgents

MOTO_VERSION = "5.2.5"
# Real seconds a Task may take beyond its scaled TimeoutSeconds: in-process handlers share two cores with
# moto and with each other (20 concurrent executions in tests), and their work is not virtual time.
TASK_PROCESSING_ALLOWANCE = 10.0
HANG_CHECK_SECONDS = 0.02  # how often a Task past its timeout looks for an injected hang
ACCOUNT_ID = "123456789012"  # moto's default account

OFFLINE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "offline",
    "AWS_SECRET_ACCESS_KEY": "offline",
    "AWS_SESSION_TOKEN": "offline",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "MOTO_ACCOUNT_ID": ACCOUNT_ID,
    # Powertools: no X-Ray daemon and no CloudWatch agent offline.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


class UnsupportedMotoVersion(RuntimeError):
    pass


class OfflineAws:
    """Context manager: the emulated AWS account every offline run and integration test uses."""

    def __init__(
        self,
        executor: CommandExecutor,
        *,
        speedup: float = 100.0,
        boot_seconds: float = 20,
        shutdown_seconds: float = 30,
        registration_seconds: float | None = 75,
        region: str = "us-east-1",
        environment: dict[str, str] | None = None,
    ) -> None:
        if moto.__version__ != MOTO_VERSION:
            raise UnsupportedMotoVersion(
                f"the offline emulation is written against moto {MOTO_VERSION}, this is moto {moto.__version__}: "
                "re-check tools/mirrorcap_tools/emulation against the new version and run tests/emulation"
            )
        self.region = region
        self.clock = VirtualClock(speedup)
        self.lifecycle = InstanceLifecycle(self.clock, boot_seconds, shutdown_seconds)
        self.mirroring = TrafficMirroringRules(self.lifecycle)
        self.agents = SsmAgents(self.clock, self.lifecycle, executor, registration_seconds)
        self.lambdas = InProcessLambdaRuntime()
        self._environment = {**OFFLINE_ENVIRONMENT, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
        self._environment.update(environment or {})
        self._stack = ExitStack()

    def _patches(self) -> list[tuple[Any, str, Callable[..., Any] | Any]]:
        clock = self.clock

        def wait_interval(wait_function: WaitFunction, env: Any, wait_seconds: int) -> None:
            clock.wait(env.program_state_event, wait_seconds)

        lambdas = self.lambdas

        class TaskTimeoutEvent(threading.Event):
            """The event a Task's TimeoutSeconds is waited on: virtual seconds, like every other wait, plus
            real time for the in-process handler's own work (which the virtual clock cannot discount),
            except when the handler is hung by a fault plan: then the timeout is the fault's, on the
            virtual clock alone, and no real seconds are spent waiting for it."""

            def wait(self, timeout: float | None = None) -> bool:
                if timeout is None:
                    return super().wait(None)
                if super().wait(clock.real_seconds(timeout)):
                    return True
                allowance_ends = time.monotonic() + TASK_PROCESSING_ALLOWANCE
                while not lambdas.is_hanging():
                    left = allowance_ends - time.monotonic()
                    if left <= 0 or super().wait(min(left, HANG_CHECK_SECONDS)):
                        return self.is_set()
                return False

        return [
            *self.lifecycle.patches(),
            *self.mirroring.patches(),
            *self.agents.patches(),
            self.lambdas.patch_target(),
            *stepfunctions_input.patches(),
            (WaitFunction, "_wait_interval", wait_interval),
            (retrier_decl, "time", types.SimpleNamespace(sleep=clock.sleep)),
            (execute_state, "threading", types.SimpleNamespace(Event=TaskTimeoutEvent)),
        ]

    def __enter__(self) -> OfflineAws:
        stack = self._stack
        # The interpreter logs every caught error (each Catch, each Choice on a missing path) at ERROR;
        # the execution history has the same facts in order, and that is what offline output shows.
        interpreter_log = logging.getLogger("moto.stepfunctions")
        stack.callback(interpreter_log.setLevel, interpreter_log.level)
        interpreter_log.setLevel(logging.CRITICAL)
        stack.enter_context(mock.patch.dict(os.environ, self._environment))
        stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        for owner, name, replacement in self._patches():
            stack.enter_context(mock.patch.object(owner, name, replacement, create=True))
        runtime.configure(clock=self.clock.now)
        stack.callback(runtime.configure)
        return self

    def __exit__(self, *exc: object) -> None:
        self.lambdas.release_hung()
        self._stack.close()

"""Run Lambda functions in-process behind moto's "simple" Lambda backend.

moto's simple backend answers every Invoke with the request body. Here Invoke calls the real handler
registered for the function name instead, and a handler that raises produces what the Python Lambda
runtime produces: an `Unhandled` function error whose payload's `errorType` is the exception's class
name, which is what Step Functions matches in Retry/Catch.
"""

from __future__ import annotations

import contextvars
import json
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from mirrorcap_tools.emulation.errors import AwsError

Handler = Callable[[dict[str, Any], Any], Any]
HANG_REAL_SECONDS = 15.0  # a hung handler blocks this long (real time) unless released: past any Task timeout

# The function whose handler is running in this thread (offline tools attribute AWS calls to it).
current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_function", default=None)


@dataclass
class LambdaContext:
    """The attributes of the runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


@dataclass
class Invocation:
    function_name: str
    event: dict[str, Any]
    error_type: str | None


class _MarshalError(Exception):
    """The handler returned something JSON cannot encode (the runtime's Runtime.MarshalError)."""


class InjectedCrash(RuntimeError):
    """A handler made to fail by a fault plan (stands for any bug that escapes a function)."""


@dataclass
class FunctionFault:
    kind: str  # "crash": the handler raises; "hang": it outlives any Task timeout, then does its work
    times: int | None = None  # None: every invocation


class InProcessLambdaRuntime:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._hanging = 0  # handlers blocked by a "hang" fault right now
        self.invocations: list[Invocation] = []
        self.faults: dict[str, FunctionFault] = {}

    def register(self, function_name: str, handler: Handler) -> None:
        self._handlers[function_name] = handler

    def invoke(self, function_name: str, body: bytes | str | None, response_headers: dict[str, Any]) -> bytes:
        name = _bare_name(function_name)
        handler = self._handlers.get(name)
        if handler is None:
            raise KeyError(f"no in-process handler registered for Lambda function {name!r}")
        try:
            event = json.loads(body or "{}")
        except ValueError as exc:
            raise AwsError("InvalidRequestContentException", f"Could not parse request body into json: {exc}") from None
        context = LambdaContext(function_name=name, invoked_function_arn=function_name)
        token = current_function.set(name)
        try:
            self._apply_fault(name)
            result = handler(event, context)
            try:
                payload = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                raise _MarshalError(f"Unable to marshal response: {exc}") from None
        except Exception as exc:  # the runtime reports every unhandled exception the same way
            error_type = "Runtime.MarshalError" if isinstance(exc, _MarshalError) else type(exc).__name__
            with self._lock:
                self.invocations.append(Invocation(name, event, error_type))
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": error_type,
                    "errorMessage": str(exc),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode()
        finally:
            current_function.reset(token)
        with self._lock:
            self.invocations.append(Invocation(name, event, None))
        return payload

    def _apply_fault(self, name: str) -> None:
        with self._lock:
            fault = self.faults.get(name)
            if fault is None or fault.times == 0:
                return
            if fault.times is not None:
                fault.times -= 1
        if fault.kind == "crash":
            raise InjectedCrash(f"{name} crashed (injected by the offline fault plan)")
        # Outlive the Task's timeout; like a real Lambda, carry on afterwards (the work must be idempotent).
        with self._lock:
            self._hanging += 1
        try:
            self._release.wait(HANG_REAL_SECONDS)
        finally:
            with self._lock:
                self._hanging -= 1

    def is_hanging(self) -> bool:
        """A handler is blocked by an injected hang: a Task timeout now is the fault's, not slow work."""
        with self._lock:
            return self._hanging > 0

    def release_hung(self) -> None:
        self._release.set()

    def patch_target(self) -> tuple[type, str, Callable[..., bytes]]:
        """What to patch on moto: (class, method name, replacement)."""
        runtime = self

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: dict[str, Any],
        ) -> bytes:
            return runtime.invoke(function_name, body, response_headers)

        return LambdaSimpleBackend, "invoke", invoke


def _bare_name(function_name: str) -> str:
    """`arn:aws:lambda:region:acct:function:NAME[:qualifier]` or `NAME` -> `NAME`."""
    if ":function:" in function_name:
        return function_name.split(":function:", 1)[1].split(":", 1)[0]
    return function_name

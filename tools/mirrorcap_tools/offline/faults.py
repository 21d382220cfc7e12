"""Make a chosen AWS call fail the way AWS would, to watch the workflow recover and clean up.

`ec2:CreateTrafficMirrorSession=TrafficMirrorSourcesPerTargetLimitExceeded` makes every such call by
the workflow's functions fail with that error code (optionally only the first N times: `...=Code*2`).
Faults apply to the functions' own AWS calls, before the request is sent, as a ClientError with
AWS's error shape. `lambda:CreateMirrorSessionFunction=crash` makes the function itself raise, and
`...=hang` makes it outlive its Task's timeout (States.Timeout).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from mirrorcap_tools.emulation.lambda_runtime import FunctionFault, InProcessLambdaRuntime


@dataclass
class Fault:
    service: str  # botocore event name of the service: ec2, ssm, s3, ...
    operation: str  # API operation name: CreateTrafficMirrorSession
    code: str
    times: int | None = None  # None: every call

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """`service:Operation=Code` or `service:Operation=Code*N`."""
        target, sep, code = spec.partition("=")
        service, colon, operation = target.partition(":")
        if not (sep and colon and service and operation and code):
            raise ValueError(f"fault {spec!r}: expected service:Operation=ErrorCode[*N]")
        code, star, times = code.partition("*")
        return cls(service.lower(), operation, code, int(times) if star else None)


class FaultPlan:
    def __init__(self, faults: list[Fault] | None = None) -> None:
        self.faults = list(faults or [])
        self.injected: list[str] = []
        self._lock = threading.Lock()

    def register(self, session: boto3.session.Session, lambdas: InProcessLambdaRuntime) -> None:
        for fault in self.faults:
            if fault.service == "lambda":
                lambdas.faults[fault.operation] = FunctionFault(fault.code, fault.times)
            else:
                session.events.register(f"before-call.{fault.service}.{fault.operation}", self._handler(fault))

    def _handler(self, fault: Fault) -> Any:
        def fail(**_: Any) -> None:
            with self._lock:
                if fault.times is not None and fault.times <= 0:
                    return
                if fault.times is not None:
                    fault.times -= 1
                self.injected.append(f"{fault.operation}={fault.code}")
            raise ClientError(
                {"Error": {"Code": fault.code, "Message": f"{fault.code} (injected by the offline fault plan)"},
                 "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "offline-fault", "HostId": "",
                                      "HTTPHeaders": {}, "RetryAttempts": 0}},
                fault.operation,
            )  # fmt: skip

        return fail

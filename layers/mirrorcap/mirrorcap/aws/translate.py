"""Where AWS errors become domain errors: one decorator on every adapter function."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from botocore.exceptions import ClientError

from mirrorcap.errors import AwsRequestFailed, AwsThrottled

P = ParamSpec("P")
R = TypeVar("R")

# Codes AWS uses for "slow down" across the services mirrorcap calls (EC2, SSM, S3, DynamoDB, STS,
# SNS, Step Functions): docs/aws-facts.md#throttling. The SDK's standard retry mode has already
# retried them with backoff by the time they reach here.
THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",  # EC2
        "Throttling",  # STS, SNS
        "ThrottlingException",  # SSM, DynamoDB, Step Functions
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",  # DynamoDB
        "RequestThrottled",
        "SlowDown",  # S3
    }
)


def error_code(exc: ClientError) -> str:
    return str(
        exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def translate(exc: ClientError, operation: str) -> Exception:
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message") or str(exc)
    if code in THROTTLING_CODES:
        return AwsThrottled(f"{operation}: {code}: {message}")
    return AwsRequestFailed(operation, code, message)


def translated_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Run one adapter function; a ClientError leaves it as AwsThrottled or AwsRequestFailed."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ClientError as exc:
            raise translate(exc, function.__name__) from exc

    call.translates_aws_errors = True  # type: ignore[attr-defined]  # checked by tests for every adapter
    return call

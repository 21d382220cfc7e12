"""Reading AWS errors: codes, not messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from mirrorcap.errors import AwsThrottled

THROTTLING_CODES = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown"}
)


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Message") or str(exc)
    return str(exc)


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc) or ""
    return code.endswith(".NotFound") or code.endswith("NotFoundException") or code == "NotFound"


@contextmanager
def throttling_is_transient() -> Iterator[None]:
    """Turn a throttling error that outlived the SDK's own retries into AwsThrottled (ASL retries it)."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in THROTTLING_CODES:
            raise AwsThrottled(f"{error_code(exc)}: {error_message(exc)}") from exc
        raise

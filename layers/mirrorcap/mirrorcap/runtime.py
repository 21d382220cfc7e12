"""Where AWS clients and the current time come from.

Domain code asks `aws()` for clients and `now()` for the time instead of building them itself, so that
tests and the offline runner can substitute both (the offline runner runs on a virtual clock that
advances through the state machine's Wait states). Nothing is built at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode retries throttling (RequestLimitExceeded) and 5xx with backoff inside the SDK;
# what still escapes is mapped to AwsThrottled and retried by the state machine.
_SDK_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, user_agent_extra="mirrorcap")
# Presigned links and upload grants must be SigV4 (S3 no longer accepts SigV2 in most regions), and must
# name the bucket's regional endpoint: botocore presigns for the global s3.amazonaws.com by default, which
# answers a bucket in another region with a redirect that a POST does not follow.
_SERVICE_CONFIG = {
    "s3": _SDK_CONFIG.merge(
        Config(signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"})
    )
}


class AwsClients:
    """Lazily created boto3 clients, one per service, from one session."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    @cached_property
    def session(self) -> boto3.session.Session:
        return self._session or boto3.session.Session()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                config = _SERVICE_CONFIG.get(service, _SDK_CONFIG)
                self._clients[service] = self.session.client(service, config=config)
            return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sns(self) -> Any:
        return self.client("sns")

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def stepfunctions(self) -> Any:
        return self.client("stepfunctions")

    @property
    def sts(self) -> Any:
        return self.client("sts")

    def client_as(self, service: str, credentials: dict[str, Any]) -> Any:
        """A new client that signs with `credentials` (AssumeRole's `Credentials`), not the session's own."""
        return self.session.client(
            service,
            config=_SERVICE_CONFIG.get(service, _SDK_CONFIG),
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    @property
    def region(self) -> str:
        return self.session.region_name


def _system_clock() -> datetime:
    return datetime.now(UTC)


_clients: AwsClients | None = None
_clock: Callable[[], datetime] = _system_clock


def aws() -> AwsClients:
    """The process's clients, created on first use (a Lambda container reuses them across invocations)."""
    global _clients
    if _clients is None:
        _clients = AwsClients()
    return _clients


def now() -> datetime:
    return _clock()


def configure(*, clients: AwsClients | None = None, clock: Callable[[], datetime] | None = None) -> None:
    """Substitute the clients and/or the clock (tests, the offline runner). `None` restores the default."""
    global _clients, _clock
    _clients = clients
    _clock = clock or _system_clock

"""Where AWS clients and the current time come from.

Domain code asks `aws()` for clients and `now()` for the time instead of building them itself, so that
tests and the offline runner can substitute both (the offline runner runs on a virtual clock that
advances through the state machine's Wait states). Nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # boto3's type stubs are a development dependency, not shipped in the layer
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_sts import STSClient

# Standard retry mode retries throttling (RequestLimitExceeded) and 5xx with backoff inside the SDK;
# what still escapes is mapped to AwsThrottled and retried by the state machine.
_SDK_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, user_agent_extra="mirrorcap")
# Presigned links and upload grants must be SigV4 (S3 no longer accepts SigV2 in most regions), and must
# name the bucket's regional endpoint: botocore presigns for the global s3.amazonaws.com by default, which
# answers a bucket in another region with a redirect that a POST does not follow.
_S3_CONFIG = _SDK_CONFIG.merge(
    Config(signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"})
)


class AwsClients:
    """Lazily created boto3 clients, one per service, from one session. Typed with boto3's stubs, so the
    type checker checks every adapter call's parameters against the service's API."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self._session = session

    @cached_property
    def session(self) -> boto3.session.Session:
        return self._session or boto3.session.Session()

    @cached_property
    def ec2(self) -> EC2Client:
        return self.session.client("ec2", config=_SDK_CONFIG)

    @cached_property
    def ssm(self) -> SSMClient:
        return self.session.client("ssm", config=_SDK_CONFIG)

    @cached_property
    def s3(self) -> S3Client:
        return self.session.client("s3", config=_S3_CONFIG)

    @cached_property
    def sns(self) -> SNSClient:
        return self.session.client("sns", config=_SDK_CONFIG)

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self.session.client("dynamodb", config=_SDK_CONFIG)

    @cached_property
    def stepfunctions(self) -> SFNClient:
        return self.session.client("stepfunctions", config=_SDK_CONFIG)

    @cached_property
    def sts(self) -> STSClient:
        return self.session.client("sts", config=_SDK_CONFIG)

    def s3_as(self, credentials: Mapping[str, Any]) -> S3Client:
        """A new S3 client that signs with `credentials` (AssumeRole's `Credentials`), not the session's own."""
        return self.session.client(
            "s3",
            config=_S3_CONFIG,
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

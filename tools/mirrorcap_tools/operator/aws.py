"""The operator's AWS connection: one session (region, profile and endpoint as the AWS CLI takes them),
every call through `call`, which turns AWS's refusals into one-line errors and keeps AWS's clock."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

# Codes with which AWS says "you may not", across the services the CLI calls.
ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
# Codes with which AWS says "these credentials are no good" (expired SSO session, revoked keys, ...).
BAD_CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}


# S3 operations whose IAM action has another name (a denied ListObjectsV2 is a missing s3:ListBucket).
IAM_ACTION_OF_OPERATION = {"ListObjectsV2": "ListBucket", "HeadObject": "GetObject", "HeadBucket": "ListBucket"}


class OperatorError(Exception):
    """Something the operator must fix, said in one line (the CLI prints it, never a traceback)."""


class NoCredentials(OperatorError):
    pass


class StackNotFound(OperatorError):
    pass


class CaptureNotFound(OperatorError):
    pass


class AccessDenied(OperatorError):
    pass


class InvalidRequest(OperatorError):
    pass


class AwsRefused(OperatorError):
    pass


@dataclass
class Connection:
    session: boto3.session.Session
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    # AWS's time at its latest answer, and our monotonic time then: capture windows are in AWS's time
    # (the functions' clocks), so progress is measured on it, not on a laptop clock that may drift.
    _server_time: tuple[datetime, float] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, *, region: str | None, profile: str | None, endpoint_url: str | None) -> Connection:
        try:
            session = boto3.session.Session(region_name=region, profile_name=profile)
        except ProfileNotFound as exc:
            raise NoCredentials(f"no AWS credentials: {exc}") from None
        if not session.region_name:
            raise InvalidRequest("no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)")
        return cls(session=session, endpoint_url=endpoint_url)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            # Standard retry mode: throttling and transient errors are retried with backoff, as the AWS CLI does.
            config = Config(retries={"mode": "standard", "max_attempts": 5})
            self._clients[service] = self.session.client(  # type: ignore[call-overload]
                service, endpoint_url=self.endpoint_url, config=config
            )
        return self._clients[service]

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call `operation` (snake_case) of `service`; AWS's refusals become an OperatorError naming the action."""
        client = self.client(service)
        try:
            response = getattr(client, operation)(**params)
        except ClientError as exc:
            raise self.translate(exc, service) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise NoCredentials(
                "no AWS credentials: set AWS_PROFILE (or pass --profile), run `aws sso login`, or export "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None
        except NoRegionError:
            raise InvalidRequest("no AWS region: pass --region or set AWS_REGION") from None
        except EndpointConnectionError as exc:
            raise AwsRefused(f"cannot reach AWS: {exc}") from None
        except BotoCoreError as exc:
            raise AwsRefused(f"{_action(client, operation)}: {exc}") from None
        self._note_server_time(response)
        return response

    def translate(self, exc: ClientError, service: str) -> OperatorError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = " ".join(str(error.get("Message", "")).split())
        # Some answers (moto's denials of JSON-protocol calls among them) carry an XML error document as the
        # message: its <Message> is the sentence a person wants.
        embedded = re.search(r"<Message>(.*?)</Message>", message)
        if embedded:
            message = embedded.group(1)
        action = _action(self.client(service), exc.operation_name)
        if code in ACCESS_DENIED_CODES or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            if code in BAD_CREDENTIAL_CODES:
                return NoCredentials(f"AWS rejected the credentials ({code}): {message}")
            return AccessDenied(f"access denied: you may not call {action} ({message or code})")
        if code in BAD_CREDENTIAL_CODES:
            return NoCredentials(f"AWS rejected the credentials ({code}): {message}")
        return AwsRefused(f"{action} failed: {code}: {message}")

    def server_now(self) -> datetime:
        """AWS's time now: its latest Date header plus the time since (the local clock before any answer)."""
        if self._server_time is None:
            return datetime.now(UTC)
        stamp, at = self._server_time
        return stamp + timedelta(seconds=time.monotonic() - at)

    def _note_server_time(self, response: dict[str, Any]) -> None:
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not date:
            return
        try:
            stamp = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if stamp.tzinfo is None:  # "-0000": UTC by RFC 5322
            stamp = stamp.replace(tzinfo=UTC)
        if self._server_time is None or stamp > self.server_now():
            # Date has whole seconds: only move forward, so the estimate does not jump back between answers.
            self._server_time = (stamp, time.monotonic())


def _action(client: Any, operation: str) -> str:
    """`states:StartExecution`: the IAM action, as a policy names it."""
    prefix = client.meta.service_model.signing_name
    name = _pascal(operation)
    return f"{prefix}:{IAM_ACTION_OF_OPERATION.get(name, name)}"


def _pascal(operation: str) -> str:
    if "_" not in operation:
        return operation  # already AWS's name (ClientError.operation_name)
    return "".join(part.capitalize() for part in operation.split("_"))

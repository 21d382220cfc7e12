"""Upload grants: how a collector writes its capture to S3 without any S3 permission of its own.

One instance profile serves every collector, and no IAM policy variable names the capture an instance
serves, so an S3 permission on the profile would let any collector write under every capture's prefix.
Instead the workflow hands each collector a presigned S3 POST policy that S3 accepts only for keys under
that capture's prefix, only for objects up to one pcap's size, and only until it expires. It is signed
with short-lived credentials of the upload signer role, whose session is itself limited to the prefix.

Those credentials come from AssumeRole inside a Lambda, which is role chaining: at most one hour. A
capture that outlives its grant gets a fresh one from the RenewUploadGrant step before the old expires.

The grant reaches the collector as a file of `name=value` lines written by an SSM command (the capture
command first, renewals later); capture.sh reads it before every upload.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator

GRANT_SECONDS = 3540  # inside the signer's one-hour session, with a minute for clock skew
RENEW_AHEAD_SECONDS = 900  # renew this long before expiry: time for retries and the SSM round trip

# The form fields capture.sh sends besides the signed ones (and `file`, which S3 does not check).
# The POST policy must name every one of them, or S3 refuses the upload.
COLLECTOR_FIELDS = ("key", "Content-Type", "x-amz-meta-sha256", "x-amz-meta-packets")
_SIGNED_FIELD = re.compile(r"policy|x-amz-(algorithm|credential|date|security-token|signature)")
# Base64, hex, ISO dates and the credential scope: nothing a shell or curl would interpret.
_FIELD_VALUE = re.compile(r"[A-Za-z0-9+/=_.:-]{1,4096}")
# https for S3 itself; plain http only on loopback, where the capture tests serve S3.
_URL = re.compile(r"(https://[a-z0-9.-]{3,255}|http://127\.0\.0\.1)(:[0-9]{1,5})?/([a-z0-9.-]{3,63}/?)?")


def post_conditions(key_prefix: str, max_object_bytes: int) -> list:
    """The POST policy's conditions besides bucket and signature: what the collector may upload."""
    return [
        ["starts-with", "$key", key_prefix],
        ["starts-with", "$Content-Type", ""],
        ["starts-with", "$x-amz-meta-sha256", ""],
        ["starts-with", "$x-amz-meta-packets", ""],
        ["content-length-range", 0, max_object_bytes],
    ]


class UploadGrant(BaseModel):
    """A presigned POST: where to send the form, the signed fields, and when S3 stops accepting it."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    url: str
    fields: dict[str, str]
    expires_at: datetime

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _URL.fullmatch(value):
            raise ValueError("must be an https S3 endpoint (or http on 127.0.0.1 for tests)")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, field in value.items():
            if not _SIGNED_FIELD.fullmatch(name):
                raise ValueError(f"unexpected field {name!r}: a grant carries only the policy and its signature")
            if not _FIELD_VALUE.fullmatch(field):
                raise ValueError(f"field {name!r} has characters a grant never needs")
        if "policy" not in value or "x-amz-signature" not in value:
            raise ValueError("must have the policy and its signature")
        return value


def grant_lines(grant: UploadGrant) -> list[str]:
    """The grant file capture.sh reads: `url=...`, then one `name=value` line per signed field."""
    return [f"url={grant.url}", *(f"{name}={value}" for name, value in grant.fields.items())]

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

import json
import re
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, field_validator

from mirrorcap.aws import artifacts
from mirrorcap.naming import capture_prefix
from mirrorcap.runtime import now

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


# --- Minting: the workflow's side (StartCapture, RenewUploadGrant) ----------------------------------------

SIGNER_SESSION_SECONDS = 3600  # the most AssumeRole allows from a role session (role chaining)


def mint_upload_grant(bucket: str, capture_id: str, max_object_bytes: int, signer_role_arn: str) -> UploadGrant:
    """Sign a grant with a session of the upload signer role, assumed with an inline session policy that
    allows PutObject under this capture's prefix only: the POST policy and the credentials that sign it
    both hold the collector to its capture."""
    prefix = capture_prefix(capture_id)
    session_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:{artifacts.arn_partition()}:s3:::{bucket}/{prefix}*",
            }
        ],
    }
    minted_at = now()
    credentials = artifacts.signer_credentials(
        signer_role_arn, capture_id[:64], SIGNER_SESSION_SECONDS, json.dumps(session_policy)
    )
    return presigned_grant(bucket, prefix, max_object_bytes, minted_at, credentials)


def presigned_grant(
    bucket: str, key_prefix: str, max_object_bytes: int, minted_at: datetime, credentials: dict | None = None
) -> UploadGrant:
    """The grant for uploads under key_prefix, signed with `credentials` (or the process's own)."""
    post = artifacts.presigned_post(bucket, post_request(key_prefix, max_object_bytes), credentials)
    return grant_from_post(post, minted_at)


def post_request(key_prefix: str, max_object_bytes: int) -> dict:
    """What generate_presigned_post takes besides the bucket, for a grant under key_prefix."""
    return {
        # botocore turns a key ending in ${filename} into a starts-with condition on the prefix.
        "Key": f"{key_prefix}${{filename}}",
        "Conditions": post_conditions(key_prefix, max_object_bytes),
        "ExpiresIn": GRANT_SECONDS,
    }


def grant_from_post(post: dict, minted_at: datetime) -> UploadGrant:
    # The collector names each object itself, so the key field is dropped from the grant.
    fields = {name: value for name, value in post["fields"].items() if name != "key"}
    return UploadGrant(url=post["url"], fields=fields, expires_at=minted_at + timedelta(seconds=GRANT_SECONDS))

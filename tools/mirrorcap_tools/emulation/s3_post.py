"""S3 browser-based uploads (POST Object with a policy), which moto 5.2.5 stores without checking the policy.

What S3 checks, with its error codes: the SigV4 signature of the policy (with the secret of the access key
moto issued), the policy's expiration, every condition against the form fields and the bucket, the size
against content-length-range, and that the policy names every form field. Not checked: the IAM policies
of the signer (its role's and its session's), which moto does not evaluate either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

from mirrorcap_tools.emulation.errors import AwsError

# Fields S3 never checks against the policy (the file itself, the signature and the policy).
UNCHECKED_FIELDS = frozenset({"file", "policy", "x-amz-signature"})


def check_post(account_id: str, bucket: str, fields: dict[str, str], size: int, now: datetime) -> None:
    """Raise what S3 answers if it would refuse this POST. `now` is on the policy's own clock."""
    policy_b64 = fields.get("policy", "")
    _check_signature(account_id, policy_b64, fields)
    policy = json.loads(base64.b64decode(policy_b64))
    if now >= datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")):
        raise AwsError("AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {name.lower(): value for name, value in fields.items()} | {"bucket": bucket}
    named = {"bucket"}
    for condition in policy["conditions"]:
        named |= _check_condition(condition, values, size)
    extra = sorted(name for name in values if name not in named and name not in UNCHECKED_FIELDS)
    if extra:
        raise AwsError("AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def _check_condition(condition: Any, values: dict[str, str], size: int) -> set[str]:
    """Check one condition; return the field names it covers."""
    failed = AwsError("AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")
    if isinstance(condition, dict):
        ((name, expected),) = condition.items()
        if values.get(name.lower()) != expected:
            raise failed
        return {name.lower()}
    operator, *operands = condition
    if operator == "content-length-range":
        low, high = operands
        if size > high:
            raise AwsError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        if size < low:
            raise AwsError("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
        return set()
    name, expected = operands
    name = name.removeprefix("$").lower()
    value = values.get(name)
    if value is None or not (value == expected if operator == "eq" else value.startswith(expected)):
        raise failed
    return {name}


def _check_signature(account_id: str, policy_b64: str, fields: dict[str, str]) -> None:
    credential = fields.get("x-amz-credential", "")
    try:
        access_key_id, date, region, service, _ = credential.split("/")
    except ValueError:
        raise AwsError("InvalidArgument", "Bucket POST must contain a field named 'X-Amz-Credential'") from None
    secret = _secret_of(account_id, region, access_key_id)
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        raise AwsError(
            "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
        )


def _secret_of(account_id: str, region: str, access_key_id: str) -> str:
    """The secret moto issued with this access key (AssumeRole's credentials are kept by IAM's backend)."""
    key = iam_backends[account_id][get_partition(region)].access_keys.get(access_key_id)
    if key is not None:
        return key.secret_access_key
    raise AwsError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")

"""Mint a collector's upload grant (see mirrorcap.collector.grant for why the collector needs one).

The grant is signed with a session of the upload signer role, assumed here with an inline session policy
that allows PutObject under this capture's prefix only: the POST policy and the credentials that sign it
both hold the collector to its capture.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from mirrorcap.awserrors import throttling_is_transient
from mirrorcap.collector.grant import GRANT_SECONDS, UploadGrant, post_conditions
from mirrorcap.naming import capture_prefix
from mirrorcap.runtime import aws, now

SIGNER_SESSION_SECONDS = 3600  # the most AssumeRole allows from a role session (role chaining)


def mint_upload_grant(bucket: str, capture_id: str, max_object_bytes: int, signer_role_arn: str) -> UploadGrant:
    prefix = capture_prefix(capture_id)
    partition = aws().session.get_partition_for_region(aws().region)
    session_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}*"}
        ],
    }
    minted_at = now()
    with throttling_is_transient():
        credentials = aws().sts.assume_role(
            RoleArn=signer_role_arn,
            RoleSessionName=capture_id[:64],
            DurationSeconds=SIGNER_SESSION_SECONDS,
            Policy=json.dumps(session_policy),
        )["Credentials"]
    return presigned_grant(aws().client_as("s3", credentials), bucket, prefix, max_object_bytes, minted_at)


def presigned_grant(s3: Any, bucket: str, key_prefix: str, max_object_bytes: int, minted_at: datetime) -> UploadGrant:
    """The grant for uploads under key_prefix, signed by whatever credentials the `s3` client has."""
    post = s3.generate_presigned_post(
        Bucket=bucket,
        # botocore turns a key ending in ${filename} into a starts-with condition on the prefix; the
        # collector names each object itself, so the key field is dropped from the grant.
        Key=f"{key_prefix}${{filename}}",
        Conditions=post_conditions(key_prefix, max_object_bytes),
        ExpiresIn=GRANT_SECONDS,
    )
    fields = {name: value for name, value in post["fields"].items() if name != "key"}
    return UploadGrant(url=post["url"], fields=fields, expires_at=minted_at + timedelta(seconds=GRANT_SECONDS))

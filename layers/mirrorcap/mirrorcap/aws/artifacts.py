"""S3: what a capture delivers (pcaps, manifest, report), and the signer behind the collectors' upload
grants (STS AssumeRole, then a presigned POST)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from mirrorcap.aws.translate import translated_errors
from mirrorcap.runtime import aws

# One stream per file: Lambda's network is the limit, not threads, and every call stays on the calling
# thread (where the offline tools attribute it to the function that made it, for the IAM check).
SEQUENTIAL = TransferConfig(use_threads=False)


@translated_errors
def read_object(bucket: str, key: str) -> bytes:
    return bytes(aws().s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@translated_errors
def object_sizes(bucket: str, prefix: str) -> dict[str, int]:
    """Key -> size of every object under `prefix`."""
    pages = aws().s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}


@translated_errors
def download_file(bucket: str, key: str, path: Path) -> None:
    """To disk in chunks, never whole into memory."""
    aws().s3.download_file(bucket, key, str(path), Config=SEQUENTIAL)


@translated_errors
def upload_file(path: Path, bucket: str, key: str) -> None:
    """Multipart for large files; s3transfer aborts a failed multipart upload (s3:AbortMultipartUpload)."""
    aws().s3.upload_file(str(path), bucket, key, Config=SEQUENTIAL)


@translated_errors
def put_object(bucket: str, key: str, body: bytes, content_type: str) -> None:
    aws().s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


@translated_errors
def presigned_get(bucket: str, key: str, expires_in: int) -> str:
    """A link signed with the caller's role session: it dies with that session, whatever `expires_in` says."""
    return str(
        aws().s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in)
    )


@translated_errors
def console_url(bucket: str, prefix: str) -> str:
    return f"https://{aws().region}.console.aws.amazon.com/s3/buckets/{bucket}?prefix={prefix}"


@translated_errors
def arn_partition() -> str:
    return str(aws().session.get_partition_for_region(aws().region))


@translated_errors
def signer_credentials(role_arn: str, session_name: str, duration_seconds: int, policy: str) -> dict[str, Any]:
    """Credentials of a session of `role_arn`, limited further by the session `policy`."""
    return dict(
        aws().sts.assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration_seconds, Policy=policy
        )["Credentials"]
    )


@translated_errors
def presigned_post(bucket: str, request: dict[str, Any], credentials: dict[str, Any] | None = None) -> dict[str, Any]:
    """A presigned POST (url and form fields) for `request` (Key, Conditions, ExpiresIn), signed with
    `credentials` or, without, the process's own."""
    s3 = aws().s3_as(credentials) if credentials else aws().s3
    return dict(s3.generate_presigned_post(Bucket=bucket, **request))

"""A capture's objects in S3: what has landed so far, its headline numbers, and `fetch`, which downloads
them, resumes a partial download and checks every pcap's SHA-256 against manifest.json."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureManifest
from pydantic import ValidationError

from mirrorcap_tools.operator.aws import AwsRefused, CaptureNotFound, Connection, OperatorError

CHUNK_BYTES = 1024 * 1024
PART_SUFFIX = ".part"
MISMATCH_SUFFIX = ".sha256-mismatch"


class ChecksumMismatch(OperatorError):
    pass


@dataclass(frozen=True)
class StoredObject:
    key: str
    bytes: int
    etag: str
    modified: datetime | None = None

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def list_objects(connection: Connection, bucket: str, prefix: str) -> list[StoredObject]:
    objects: list[StoredObject] = []
    token: str | None = None
    while True:
        page = connection.call(
            "s3", "list_objects_v2", Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {})
        )
        objects += [
            StoredObject(o["Key"], o["Size"], o["ETag"], o.get("LastModified")) for o in page.get("Contents", [])
        ]
        token = page.get("NextContinuationToken")
        if not token:
            return objects


def read_json(connection: Connection, bucket: str, key: str) -> Any:
    body = connection.call("s3", "get_object", Bucket=bucket, Key=key)["Body"]
    try:
        return json.loads(body.read())
    except ValueError as exc:
        raise OperatorError(f"s3://{bucket}/{key} is not JSON: {exc}") from None


@dataclass(frozen=True)
class Headline:
    packets: int
    http_5xx: int
    http_4xx: int
    resets: int
    report: str

    def text(self) -> str:
        return (
            f"{self.packets} packets · HTTP 5xx {self.http_5xx} · 4xx {self.http_4xx} · "
            f"{self.resets} reset connections · report {self.report}"
        )


def headline(summary: dict[str, Any], report: str) -> Headline:
    """The numbers an on-call engineer looks at first, from summary.json (docs/summary-schema.md)."""
    statuses = (summary.get("http") or {}).get("responses_by_status") or {}
    return Headline(
        packets=int((summary.get("totals") or {}).get("packets", 0)),
        http_5xx=sum(int(n) for status, n in statuses.items() if str(status).startswith("5")),
        http_4xx=sum(int(n) for status, n in statuses.items() if str(status).startswith("4")),
        resets=int((summary.get("tcp") or {}).get("connections_reset", 0)),
        report=report,
    )


@dataclass
class FetchResult:
    directory: Path
    verified: list[str] = field(default_factory=list)  # pcaps whose SHA-256 matched the manifest
    by_size: list[str] = field(default_factory=list)  # files the manifest does not list: checked by size
    resumed: dict[str, int] = field(default_factory=dict)  # name -> byte the download resumed from
    already_there: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the manifest, not in S3

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.missing

    def text(self) -> str:
        lines = [f"{self.directory}:"]
        if self.verified:
            lines.append(f"  {len(self.verified)} pcap(s): SHA-256 matches manifest.json ({', '.join(self.verified)})")
        if self.by_size:
            lines.append(
                f"  {len(self.by_size)} other file(s), not in the manifest, checked by size: {', '.join(self.by_size)}"
            )
        for name, offset in self.resumed.items():
            lines.append(f"  {name}: resumed at byte {offset}")
        if self.already_there:
            lines.append(f"  already downloaded and verified: {', '.join(self.already_there)}")
        for name in self.mismatched:
            lines.append(f"  {name}: SHA-256 DOES NOT MATCH manifest.json (kept as {name}{MISMATCH_SUFFIX})")
        for name in self.missing:
            lines.append(f"  {name}: listed in manifest.json but not in S3")
        return "\n".join(lines)


def fetch(
    connection: Connection,
    bucket: str,
    prefix: str,
    capture_id: str,
    directory: Path,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> FetchResult:
    """Download every object of the capture into DIRECTORY/<capture id>/ and verify it."""
    objects = {o.name: o for o in list_objects(connection, bucket, prefix)}
    if not objects:
        raise CaptureNotFound(
            f"no objects under s3://{bucket}/{prefix}: capture {capture_id!r} delivered nothing (yet)"
        )
    if MANIFEST_NAME not in objects:
        raise OperatorError(f"s3://{bucket}/{prefix}{MANIFEST_NAME} is missing: the capture has not delivered yet")
    try:
        manifest = CaptureManifest.model_validate(read_json(connection, bucket, prefix + MANIFEST_NAME))
    except ValidationError as exc:
        raise OperatorError(
            f"s3://{bucket}/{prefix}{MANIFEST_NAME} is not a manifest: {exc.error_count()} problem(s)"
        ) from None
    expected = {f.key.rsplit("/", 1)[-1]: f for f in manifest.files}
    target = directory / capture_id
    target.mkdir(parents=True, exist_ok=True)
    result = FetchResult(directory=target)
    result.missing = sorted(name for name in expected if name not in objects)
    for name, stored in sorted(objects.items()):
        path = target / name
        wanted = expected.get(name)
        if wanted is not None and path.exists() and _sha256(path) == wanted.sha256:
            result.already_there.append(name)
            continue
        offset = _download(connection, bucket, stored, path, progress)
        if offset:
            result.resumed[name] = offset
        if wanted is None:
            if path.stat().st_size != stored.bytes:
                result.mismatched.append(name)
            else:
                result.by_size.append(name)
        elif _sha256(path) == wanted.sha256 and path.stat().st_size == wanted.bytes:
            result.verified.append(name)
        else:
            path.replace(path.with_name(name + MISMATCH_SUFFIX))
            result.mismatched.append(name)
    return result


def _download(
    connection: Connection,
    bucket: str,
    stored: StoredObject,
    path: Path,
    progress: Callable[[str, int, int], None] | None,
) -> int:
    """Download to PATH.part (continuing one an earlier run left, if it is of the same object version) and
    move it into place. Returns the byte it resumed from (0 for a fresh download)."""
    part = path.with_name(path.name + PART_SUFFIX)
    tag = path.with_name(path.name + PART_SUFFIX + ".etag")
    offset = part.stat().st_size if part.exists() else 0
    same_object = tag.exists() and tag.read_text() == stored.etag
    if offset and (not same_object or offset > stored.bytes):
        part.unlink()  # a different version of the object (or garbage): start over
        offset = 0
    tag.write_text(stored.etag)
    params: dict[str, Any] = {"Bucket": bucket, "Key": stored.key}
    if offset:
        # IfMatch: if the object changed since the first part was fetched, S3 refuses instead of mixing versions.
        params.update(Range=f"bytes={offset}-", IfMatch=stored.etag)
    if offset < stored.bytes or stored.bytes == 0:
        try:
            body = connection.call("s3", "get_object", **params)["Body"]
        except AwsRefused as exc:
            if offset and ("PreconditionFailed" in str(exc) or "InvalidRange" in str(exc)):
                part.unlink()
                return _download(connection, bucket, stored, path, progress)
            raise
        with part.open("ab") as out:
            done = offset
            while chunk := body.read(CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(stored.name, done, stored.bytes)
    part.replace(path)
    tag.unlink()
    return offset


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()

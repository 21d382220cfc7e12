"""What the capture script delivers: the manifest it uploads last, its exit codes, and a pure-Python
summary of a pcap file (size, SHA-256, packet count) for anything that must describe a pcap the same way.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_NAME = "manifest.json"

CaptureStatus = Literal["complete", "stopped_early", "disk_limit", "failed"]


class CaptureExit(IntEnum):
    """The capture script's exit codes (capture.sh declares the same numbers; a test keeps them equal).

    SSM reports the script's exit code as the invocation's ResponseCode; any code but 0 makes the
    invocation `Failed`. Except for BAD_ARGUMENTS and MANIFEST_FAILED, the manifest is in S3 and its
    `status` says the same thing.
    """

    COMPLETE = 0
    BAD_ARGUMENTS = 2
    STOPPED_EARLY = 3
    DISK_LIMIT = 4
    CAPTURE_FAILED = 5
    UPLOAD_FAILED = 6
    MANIFEST_FAILED = 7


class ManifestFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    packets: int = Field(ge=0)


class CaptureManifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    capture_id: str
    status: CaptureStatus
    interface: str | None
    vni: int
    started_at: datetime
    ended_at: datetime
    files: list[ManifestFile]
    packets_captured: int
    packets_dropped_by_kernel: int
    exit_code: int
    error: str | None = None
    # tcpdump's "received by filter": what reached the capture before its buffer (captured + dropped).
    packets_received_by_filter: int | None = None
    bpf_filter: str | None = None
    # Keys the files that could not be uploaded would have had; they stay on the collector's disk.
    not_delivered: list[str] = []


# Classic pcap (what tcpdump -w writes): magic in the writer's byte order; the nanosecond variant too.
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}
_GLOBAL_HEADER_BYTES = 24
_RECORD_HEADER_BYTES = 16


def summarize_pcap_file(path: str | Path, key: str) -> ManifestFile:
    """Describe a classic pcap file as the manifest does, checking that every record is complete."""
    data = Path(path).read_bytes()
    return ManifestFile(
        key=key, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), packets=_count_records(data, path)
    )


def _count_records(data: bytes, path: str | Path) -> int:
    byte_order = _PCAP_MAGICS.get(data[:4])
    if byte_order is None or len(data) < _GLOBAL_HEADER_BYTES:
        raise ValueError(f"{path} is not a classic pcap file (pcapng and others are not supported)")
    record_header = struct.Struct(f"{byte_order}IIII")
    offset, packets = _GLOBAL_HEADER_BYTES, 0
    while offset < len(data):
        if offset + _RECORD_HEADER_BYTES > len(data):
            raise ValueError(f"{path} ends inside a record header at byte {offset}")
        _, _, captured_length, _ = record_header.unpack_from(data, offset)
        offset += _RECORD_HEADER_BYTES + captured_length
        if offset > len(data):
            raise ValueError(f"{path} ends inside packet {packets + 1}")
        packets += 1
    return packets

"""`decapsulate`: the mirrored frames without their VXLAN wrapper, for tools that do not decode VXLAN.

Each batch is rewritten with numpy: the inner frames are cut out of the read buffer with one boolean
mask and laid out behind fresh 16-byte record headers, so no Python runs per packet.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mirrorcap.report.analyze import files_in_time_order
from mirrorcap.report.decode import LINKTYPE_ETHERNET, Decoded, decode
from mirrorcap.report.formats import DEFAULT_CHUNK_BYTES, CaptureReader

OUTPUT_SNAPLEN = 262144
_HEADER_OFFSETS = np.arange(16, dtype=np.int64)


@dataclass(frozen=True)
class DecapsulationStats:
    packets_read: int
    packets_written: int
    packets_not_vxlan: int  # left out: not VXLAN, or VXLAN headers too damaged to find the inner frame
    bytes_written: int  # size of the output file

    def as_dict(self) -> dict[str, int]:
        return {
            "packets_read": self.packets_read,
            "packets_written": self.packets_written,
            "packets_not_vxlan": self.packets_not_vxlan,
            "bytes_written": self.bytes_written,
        }


def decapsulate(
    paths: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> DecapsulationStats:
    """Write a classic little-endian Ethernet pcap of the inner frames of every VXLAN packet, files in
    time order. Timestamps are kept in nanoseconds if any input is a nanosecond pcap, else microseconds.
    Raises UnreadableCapture like `analyze_captures`."""
    ordered = files_in_time_order(paths)
    nanoseconds = _any_nanosecond_input(ordered)
    read = written = 0
    with open(out_path, "wb") as out:
        magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
        out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, OUTPUT_SNAPLEN, LINKTYPE_ETHERNET))
        for path in ordered:
            with CaptureReader(path, chunk_bytes) as reader:
                for batch in reader.batches():
                    read += len(batch)
                    written += _write_inner_frames(out, decode(batch), nanoseconds)
        size = out.tell()
    return DecapsulationStats(
        packets_read=read, packets_written=written, packets_not_vxlan=read - written, bytes_written=size
    )


def _any_nanosecond_input(paths: list[Path]) -> bool:
    for path in paths:
        with CaptureReader(path) as reader:
            if reader.info.timestamp_resolution == "ns":
                return True
    return False


def _write_inner_frames(out: BinaryIO, decoded: Decoded, nanoseconds: bool) -> int:
    inner_caplen = decoded.caplen - decoded.frame_offset
    chosen = np.flatnonzero(decoded.vxlan & (inner_caplen > 0))
    if not len(chosen):
        return 0
    source_start = decoded.data_start[chosen] + decoded.frame_offset[chosen]
    length = inner_caplen[chosen]

    ts_ns = decoded.ts_ns[chosen]
    fraction = ts_ns % 1_000_000_000
    headers = np.column_stack(
        [ts_ns // 1_000_000_000, fraction if nanoseconds else fraction // 1000, length, decoded.frame_len[chosen]]
    ).astype("<u4")

    record_size = 16 + length
    record_start = np.cumsum(record_size) - record_size
    output = np.empty(int(record_size.sum()), dtype=np.uint8)
    is_header = _ranges_mask(len(output), record_start, record_start + 16)
    output[(record_start[:, None] + _HEADER_OFFSETS).ravel()] = headers.view(np.uint8).ravel()

    # The inner frames, in order, are exactly the bytes of these ranges of the read buffer.
    base = int(source_start[0])
    region = decoded.buf[base : int(source_start[-1] + length[-1])]
    wanted = _ranges_mask(len(region), source_start - base, source_start - base + length)
    output[~is_header] = region[wanted]
    out.write(output.data)  # the array's buffer (a memoryview), not a copy
    return len(chosen)


def _ranges_mask(size: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Boolean mask of [start, end) ranges that are sorted, non-empty and do not touch each other."""
    edges = np.zeros(size + 1, dtype=np.int8)
    edges[starts] = 1
    edges[ends] -= 1
    return np.cumsum(edges[:-1], dtype=np.int8).view(bool)

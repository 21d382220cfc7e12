"""Vectorised field access: one numpy gather reads the same field out of every packet of a batch."""

from __future__ import annotations

import numpy as np

_BYTE_OFFSETS = {width: np.arange(width, dtype=np.int64) for width in (2, 4, 8, 16)}


def gather_uint(buf: np.ndarray, index: np.ndarray, width: int, *, big_endian: bool = True) -> np.ndarray:
    """The unsigned integer of `width` bytes starting at each position in `index`.

    Returns int64 for widths up to 4 (so arithmetic never wraps) and uint64 for width 8.
    """
    if width == 1:
        return buf[index].astype(np.int64)
    raw = buf[index[:, None] + _BYTE_OFFSETS[width]]
    values = raw.view(f"{'>' if big_endian else '<'}u{width}").ravel()
    return values.astype(np.uint64 if width == 8 else np.int64)


def gather_address(buf: np.ndarray, index: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """IP addresses as (high, low) uint64 halves; IPv4 is IPv4-mapped (::ffff:a.b.c.d) so both families
    share one key space."""
    if width == 4:
        low = gather_uint(buf, index, 4).astype(np.uint64) | np.uint64(0xFFFF << 32)
        return np.zeros(len(index), dtype=np.uint64), low
    raw = buf[index[:, None] + _BYTE_OFFSETS[16]].view(">u8")
    return raw[:, 0].astype(np.uint64), raw[:, 1].astype(np.uint64)

"""Vectorised field access: one numpy gather reads the same field out of every packet of a batch."""

from __future__ import annotations

import sys

import numpy as np

_LITTLE_ENDIAN = sys.byteorder == "little"


def word_view(raw: bytearray) -> np.ndarray:
    """The buffer as big-endian 8-byte words, for `windows`."""
    return np.frombuffer(raw, dtype=">u8", count=len(raw) // 8)


def windows(raw: bytearray, position: np.ndarray, count: int) -> np.ndarray:
    """`count` consecutive big-endian 8-byte windows starting at each byte `position`, as a
    (count, packets) array of uint64: row k holds the 8 bytes at position + 8 * k.

    The windows of all packets are copied out in one gather of `8 * count`-byte records (overlapping
    records, one starting at every byte of the buffer), then byte-swapped in place. The buffer needs
    8 * count bytes of slack after the last position.
    """
    gathered = record_view(raw, np.dtype((np.void, 8 * count)))[position]
    rows = gathered.view(np.uint64).reshape(-1, count).T.copy()
    if _LITTLE_ENDIAN:
        rows.byteswap(inplace=True)
    return rows


def record_view(raw: bytearray, dtype: np.dtype) -> np.ndarray:
    """A record of `dtype` starting at every byte of the buffer (the records overlap), so that indexing
    with packet positions gathers each packet's header bytes in one copy."""
    return np.ndarray((len(raw) - dtype.itemsize + 1,), dtype=dtype, buffer=raw, strides=(1,))


def gather_uint(buf: np.ndarray, index: np.ndarray, width: int, *, big_endian: bool = True) -> np.ndarray:
    """The unsigned integer of `width` (1, 2 or 4) bytes starting at each position in `index`, as int64."""
    value = buf[index].astype(np.int64)
    for number in range(1, width):
        byte = buf[index + number].astype(np.int64)
        value = (value << 8) | byte if big_endian else value | (byte << (8 * number))
    return value


def gather_address(buf: np.ndarray, index: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """IP addresses as (high, low) uint64 halves; IPv4 is IPv4-mapped (::ffff:a.b.c.d) so both families
    share one key space."""
    if width == 4:
        low = gather_uint(buf, index, 4).astype(np.uint64) | np.uint64(0xFFFF << 32)
        return np.zeros(len(index), dtype=np.uint64), low
    halves = [np.zeros(len(index), dtype=np.uint64), np.zeros(len(index), dtype=np.uint64)]
    for number in range(16):
        half = halves[number // 8]
        half <<= np.uint64(8)
        half |= buf[index + number].astype(np.uint64)
    return halves[0], halves[1]


def group_by_bytes(
    raw: bytearray, starts: np.ndarray, lengths: np.ndarray, width: int, extra: list[np.ndarray] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group of each row) for byte strings raw[start:start + length] cut to
    `width` bytes, with any `extra` integer columns: rows are in one group when all of those are equal.
    One gather copies the strings, a 64-bit hash groups them, and the groups are checked byte for
    byte (a hash collision falls back to sorting the rows themselves)."""
    count = len(starts)
    lengths = np.minimum(lengths, width)
    rows = np.empty((count, width + 8 * (len(extra) + 1)), dtype=np.uint8)
    window = rows[:, :width]
    window[:] = record_view(raw, np.dtype((np.void, width)))[starts].view(np.uint8).reshape(count, width)
    np.multiply(window, np.arange(width) < lengths[:, None], out=window)
    numbers = rows[:, width:].view(np.int64)
    numbers[:, 0] = lengths
    for column, values in enumerate(extra, start=1):
        numbers[:, column] = values
    words = rows.view(np.uint64)
    hashed = words[:, 0] * np.uint64(0x9E3779B97F4A7C15)
    for column in range(1, words.shape[1]):
        hashed ^= hashed >> np.uint64(29)
        hashed += words[:, column]
        hashed *= np.uint64(0xBF58476D1CE4E5B9)
    _distinct, first, group = np.unique(hashed, return_index=True, return_inverse=True)
    if not (words == words[first[group]]).all():
        as_bytes = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
        _distinct, first, group = np.unique(as_bytes, return_index=True, return_inverse=True)
    return first, group

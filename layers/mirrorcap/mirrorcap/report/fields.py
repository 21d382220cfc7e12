"""Vectorised field access (one numpy gather reads the same field out of every packet of a batch), and
the grouping of equal rows that the analyzers share: runs of neighbours, and groups by hash."""

from __future__ import annotations

import functools
import mmap
from collections.abc import Sequence

import numpy as np

# A chunk of a capture: the reader's own buffer, or a slot shared with the read-ahead process.
RawBytes = bytearray | mmap.mmap


def gather_bytes(raw: RawBytes, position: np.ndarray, width: int) -> np.ndarray:
    """The `width` bytes at each position, as a (positions, width) uint8 array copied in one gather of
    overlapping records. The buffer needs `width` bytes of slack after the last position."""
    return record_view(raw, np.dtype((np.void, width)))[position].view(np.uint8).reshape(len(position), width)


def big_endian(rows: np.ndarray, offset: int, size: int, dtype: type = np.int64) -> np.ndarray:
    """The big-endian unsigned integer of `size` bytes (1, 2, 4 or 8) at `offset` of every row of a
    uint8 array, as `dtype`: one strided read, byte-swapped and widened as it is copied."""
    return rows[:, offset : offset + size].view(f">u{size}")[:, 0].astype(dtype)


class Scratch:
    """A boolean buffer reused from batch to batch: a chunk-sized temporary allocated afresh would have
    its memory mapped in, page by page, every time."""

    def __init__(self) -> None:
        self._buffer = np.empty(0, dtype=bool)

    def get(self, size: int) -> np.ndarray:
        if len(self._buffer) < size:
            self._buffer = np.empty(size, dtype=bool)
        return self._buffer[:size]


def sparse_flatnonzero(mask: np.ndarray) -> np.ndarray:
    """`np.flatnonzero` of a boolean array in which few values are set: the 8-byte words that hold any
    are found first, then the set values in only those words."""
    whole = len(mask) - len(mask) % 8
    words = mask[:whole].view(np.uint64)
    hit = np.flatnonzero(words != 0)
    found = np.flatnonzero(words[hit].view(bool))
    found = hit[found >> 3] * 8 + (found & 7)
    if whole == len(mask):
        return found
    return np.concatenate([found, np.flatnonzero(mask[whole:]) + whole])


def record_view(raw: RawBytes, dtype: np.dtype) -> np.ndarray:
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
    raw: RawBytes, starts: np.ndarray, lengths: np.ndarray, width: int, extra: Sequence[np.ndarray] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group of each row) for byte strings raw[start:start + length] cut to
    `width` bytes, with any `extra` integer columns: rows are in one group when all of those are equal.
    One gather copies the strings, a 64-bit hash groups them, and the groups are checked byte for
    byte (a hash collision falls back to sorting the rows themselves)."""
    count = len(starts)
    lengths = np.minimum(lengths, width)
    rows = np.empty((count, width + 8 * (len(extra) + 1)), dtype=np.uint8)
    rows[:, :width] = gather_bytes(raw, starts, width)
    words = rows.view(np.uint64)
    words[:, : width // 8] &= _prefix_masks(width)[lengths]  # bytes past a string's end are not part of it
    numbers = rows[:, width:].view(np.int64)
    numbers[:, 0] = lengths
    for column, values in enumerate(extra, start=1):
        numbers[:, column] = values
    return group_rows(words, hash_rows(words))


@functools.cache
def _prefix_masks(width: int) -> np.ndarray:
    """Row k keeps the first k bytes of a `width`-byte window (`width` a multiple of 8), as words."""
    keep = np.arange(width) < np.arange(width + 1)[:, None]
    return np.where(keep, 0xFF, 0).astype(np.uint8).view(np.uint64)


def _odd_constants(count: int) -> np.ndarray:
    """`count` well-mixed odd 64-bit constants (the SplitMix64 sequence)."""
    mask = (1 << 64) - 1
    values, state = [], 0
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        mixed = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
        mixed = ((mixed ^ (mixed >> 27)) * 0x94D049BB133111EB) & mask
        values.append((mixed ^ (mixed >> 31)) | 1)
    return np.array(values, dtype=np.uint64)


# Enough for rows of the widest window grouped (HTTP's), with its extra columns.
_ROW_MULTIPLIERS = _odd_constants(32)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def hash_rows(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a uint64 array: a dot product with odd multipliers (mod 2**64), so
    rows that differ in one word never collide, then mixed so that every bit depends on every word."""
    hashed = words @ _ROW_MULTIPLIERS[: words.shape[1]]
    hashed ^= hashed >> np.uint64(31)
    hashed *= _MIX
    hashed ^= hashed >> np.uint64(29)
    return hashed


def runs(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first row of each run of equal neighbouring rows, run number of every row), for
    rows given as their columns."""
    starts = np.empty(len(columns[0]), dtype=bool)
    starts[:1] = True
    differs = starts[1:]
    np.not_equal(columns[0][1:], columns[0][:-1], out=differs)
    for column in columns[1:]:
        differs |= column[1:] != column[:-1]
    run_of = np.cumsum(starts)
    run_of -= 1
    return np.flatnonzero(starts), run_of


def group_rows(rows: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group of equal rows, group of each row), groups numbered in the order they
    first appear. Rows are grouped by their hashes, checked row by row, or by the rows themselves when
    two different rows share a hash."""
    order = np.argsort(hashes, kind="stable")
    first, group = _numbered_by_appearance(order, *runs([hashes[order]]))
    if (rows == rows[first[group]]).all():
        return first, group
    order = np.lexsort(rows.T[::-1])
    return _numbered_by_appearance(order, *runs(list(rows[order].T)))


def _numbered_by_appearance(order: np.ndarray, starts: np.ndarray, run_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`group_rows`' answer from a stable sort `order` of the rows and the runs of equal rows in it."""
    first_sorted = order[starts]
    is_first = np.zeros(len(order), dtype=bool)
    is_first[first_sorted] = True
    appearance = np.cumsum(is_first)
    appearance -= 1
    group = np.empty(len(order), dtype=np.int64)
    group[order] = appearance[first_sorted][run_of]
    return np.flatnonzero(is_first), group

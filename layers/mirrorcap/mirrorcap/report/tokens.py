"""Where "HTTP/1." is in a chunk of a capture: the version at the end of a request line, or the start
of a status line. The HTTP analysis scans a batch's TCP payloads for it; reading ahead, the second
process scans the whole chunk while the first is busy, and the analysis only picks out its payloads'."""

from __future__ import annotations

import re

import numpy as np

from mirrorcap.report.fields import RawBytes, Scratch, sparse_flatnonzero

# Where "HTTP/1." starts in a range of the buffer. At an even position the token holds "TP" in the
# 2-byte-aligned pair two bytes in, at an odd one "P/" three bytes in: numpy compares every aligned pair
# with those two, and only the few pairs that match are checked byte by byte.
_TOKEN = b"HTTP/1."
VERSION_TOKEN = re.compile(re.escape(_TOKEN))
_TOKEN_BYTES = np.frombuffer(_TOKEN, dtype=np.uint8)
_EVEN_PAIR, _ODD_PAIR = int.from_bytes(b"TP", "little"), int.from_bytes(b"P/", "little")
# Below this many bytes the regular expression is cheaper than numpy's set-up.
NUMPY_SCAN_MIN_BYTES = 1 << 14


def find_version_tokens(raw: RawBytes, start: int, end: int, scratch: Scratch | None = None) -> np.ndarray:
    """Positions of every "HTTP/1." that lies wholly in raw[start:end], in order."""
    if end - start < NUMPY_SCAN_MIN_BYTES:
        return np.fromiter(map(re.Match.start, VERSION_TOKEN.finditer(raw, start, end)), dtype=np.int64)
    first = (start + 1) // 2  # the first pair that starts at or after `start`
    pairs = np.frombuffer(raw, dtype="<u2", count=end // 2)[first:]  # pairs that end before `end`
    work = (scratch or Scratch()).get(2 * len(pairs))
    found, odd = work[: len(pairs)], work[len(pairs) :]
    np.equal(pairs, _EVEN_PAIR, out=found)
    np.equal(pairs, _ODD_PAIR, out=odd)
    found |= odd
    index = sparse_flatnonzero(found)
    position = (index + first) * 2 - np.where(pairs[index] == _EVEN_PAIR, 2, 3)
    position = position[(position >= start) & (position + len(_TOKEN) <= end)]
    buf = np.frombuffer(raw, dtype=np.uint8)
    whole = np.ones(len(position), dtype=bool)
    for offset, byte in enumerate(_TOKEN_BYTES.tolist()):
        whole &= buf[position + offset] == byte
    return position[whole]


def tokens_within(tokens: np.ndarray, start: int, end: int) -> np.ndarray:
    """Those of the sorted `tokens` positions that lie wholly in [start, end): `find_version_tokens`
    of that range, when `tokens` are every token of a range that covers it."""
    first = int(np.searchsorted(tokens, start))
    last = int(np.searchsorted(tokens, end - len(_TOKEN), side="right"))
    return tokens[first:last]

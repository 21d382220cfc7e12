"""The decoded batches of one capture file: decoded here, or, reading ahead, in a second process.

Reading, the record walk, the header decode and the scan for HTTP version tokens need nothing but the
file's bytes, and they are about 40% of the report's work. With a second CPU free, a forked child (see
`readahead`) does them chunks ahead, and this process only analyses: flows, TCP, HTTP, DNS and the
counts. The child packs each batch's `Decoded` arrays into its slot's arena; the batch's bytes are
already in the slot, so HTTP and DNS read their payloads where the child read them. The token scan is
the one step either process can do: the child leaves it to the parent whenever the parent has handed
back every slot (it would otherwise wait), which keeps both busy. Either way the batches, and so the
report, are the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

import numpy as np

from mirrorcap.report.decode import Decoded, decode
from mirrorcap.report.fields import Scratch
from mirrorcap.report.formats import READ_SLACK, CaptureReader, FileInfo
from mirrorcap.report.readahead import ChildSlots, ReadAhead
from mirrorcap.report.tokens import find_version_tokens

# Per-packet arrays of a batch: Decoded's, and how they lie in a slot (what is not an array is the chunk).
DECODED_ARRAYS = [field.name for field in fields(Decoded) if field.name not in ("buf", "raw")]
# An arena of (arrays + 1) x 8 bytes per 16 bytes of chunk holds both the arrays (at most 8 bytes a packet,
# and a record takes at least 16 bytes) and the token positions (8 bytes for at most one in 7 bytes).
ARENA_BYTES_PER_RECORD = 8 * (len(DECODED_ARRAYS) + 1)
VERSION_TOKENS = "version_tokens"


def decoded_batches(reader: CaptureReader, *, read_ahead: bool) -> Iterator[tuple[Decoded, np.ndarray | None]]:
    """(decoded batch, sorted positions of every "HTTP/1." in its records, or None if not looked for) for
    each batch of the file. A decoded batch is valid until the next one is asked for."""
    if not read_ahead:
        for batch in reader.batches():
            yield decode(batch), None
        return
    yield from _decoded_ahead(reader)  # closing this generator closes that one, which stops the child


def _decoded_ahead(reader: CaptureReader) -> Iterator[tuple[Decoded, np.ndarray | None]]:
    chunk_bytes = reader.largest_chunk
    ahead = ReadAhead(data_bytes=chunk_bytes + READ_SLACK, arena_bytes=(chunk_bytes // 16 + 1) * ARENA_BYTES_PER_RECORD)

    def read_and_decode(slots: ChildSlots) -> FileInfo:
        scratch = Scratch()
        for batch in reader.batches(slots):
            decoded = decode(batch)
            arrays = {name: getattr(decoded, name) for name in DECODED_ARRAYS}
            if not slots.parent_is_idle():
                records_end = int(batch.data_start[-1] + batch.caplen[-1])
                tokens = find_version_tokens(batch.raw, int(batch.data_start[0]), records_end, scratch)
                arrays[VERSION_TOKENS] = tokens
            slots.publish(arrays)
        return reader.info  # what the child learnt of the file (damage, link types), for the parent's reader

    ahead.start(read_and_decode)
    try:
        for slot, arrays in ahead:
            tokens = arrays.pop(VERSION_TOKENS, None)
            yield Decoded(buf=slot.array, raw=slot.data, **arrays), tokens
    finally:
        ahead.stop()
    for field in fields(FileInfo):
        setattr(reader.info, field.name, getattr(ahead.result, field.name))

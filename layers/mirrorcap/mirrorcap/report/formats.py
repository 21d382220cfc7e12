"""Capture files read in bounded chunks: classic pcap (both byte orders, micro- and nanosecond
timestamps), pcapng, and either one gzip-compressed.

The record walk is the one sequential step (each header says where the next record starts). For
classic pcap it is still done by numpy: candidate headers are found by a byte scan and the chain of
lengths is confirmed run by run, so Python only touches the few places where the chain and the candidates
disagree (pcapng keeps a plain loop over its blocks). Every other per-packet field is then gathered with
numpy. A file is read with `readinto` into one reused buffer, so memory is one chunk however large the
file, and any binary stream works (a file in Lambda's /tmp, or a streamed S3 body); the read-ahead
process (see `readahead`) reads into a few shared slots in turn instead, and gets the same batches.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mirrorcap.report.errors import UnreadableCapture
from mirrorcap.report.fields import RawBytes, Scratch, gather_bytes, gather_uint

if TYPE_CHECKING:
    from mirrorcap.report.readahead import ChildSlots

# Small enough that a batch's per-packet arrays stay in the CPU caches, large enough that numpy's
# per-call overhead is spread over thousands of packets.
DEFAULT_CHUNK_BYTES = 8 << 20
# Bytes past the end of the data that decoders may touch while reading the headers of a short last
# packet; they never count as packet data.
READ_SLACK = 4096
# No link captures frames this large; a record or block claiming more is damage, not a packet.
MAX_RECORD_BYTES = 1 << 20
# Below this many bytes the record walk is a plain loop: numpy's set-up would cost more than it saves.
VECTOR_WALK_MIN_BYTES = 1 << 14
# A record header found by a byte scan must have a timestamp this close to the chunk's first record.
MAX_SECONDS_IN_CHUNK = 1 << 16
# The lockstep walk puts a walker on the first plausible record header in the first window of every
# segment; the fewer bytes scanned, the more segments whose records are long enough to hide a walker.
LOCKSTEP_SEGMENT_BYTES = 2048
LOCKSTEP_WINDOW_BYTES = 256
MIN_LOCKSTEP_SEGMENTS = 4

# The first bytes of every packet, copied in the same gather as its record header: enough for the
# headers of the usual mirrored packet (outer Ethernet, IPv4, UDP and VXLAN; inner Ethernet, IPv4, TCP up
# to its flags), which the decoder's fast path reads at fixed offsets.
PACKET_HEAD_BYTES = 112
PCAP_HEADER_BYTES = 24
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "us"),
    b"\xa1\xb2\xc3\xd4": (">", "us"),
    b"\x4d\x3c\xb2\xa1": ("<", "ns"),
    b"\xa1\xb2\x3c\x4d": (">", "ns"),
}
PCAPNG_SECTION_HEADER = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_INTERFACE = 1
PCAPNG_ENHANCED_PACKET = 6
# Blocks that carry packets but that no current tool writes (the simple block has no timestamp): their
# packets are counted as malformed rather than silently dropped.
PCAPNG_UNSUPPORTED_PACKET_BLOCKS = {2: "obsolete packet block", 3: "simple packet block"}
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class RecordBatch:
    """Packets of one chunk. `buf` is the reader's buffer: valid only until the next batch is read."""

    buf: np.ndarray
    raw: RawBytes  # the same bytes as `buf`, for byte-string searches
    data_start: np.ndarray  # int64 offset in buf of each packet's first byte
    caplen: np.ndarray  # int64 bytes captured
    origlen: np.ndarray  # int64 bytes on the wire
    ts_ns: np.ndarray  # int64 nanoseconds since the epoch
    linktype: np.ndarray  # int64 LINKTYPE_* of each packet
    bad_record: np.ndarray  # bool: the record's own header contradicts itself
    # (packets, PACKET_HEAD_BYTES) uint8: each packet's first bytes (past its captured length too), when
    # the reader gathered them with the record headers.
    head: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.data_start)

    def subset(self, rows: np.ndarray) -> RecordBatch:
        return RecordBatch(
            buf=self.buf,
            raw=self.raw,
            data_start=self.data_start[rows],
            caplen=self.caplen[rows],
            origlen=self.origlen[rows],
            ts_ns=self.ts_ns[rows],
            linktype=self.linktype[rows],
            bad_record=self.bad_record[rows],
            head=None if self.head is None else self.head[rows],
        )


@dataclass
class FileInfo:
    """What the reader learnt about one file; filled in as batches are read."""

    name: str
    format: str
    byte_order: str
    timestamp_resolution: str
    link_types: set[int] = field(default_factory=set)
    # Damage found at file level, each counted once as a malformed packet by the analyzer.
    damage: list[tuple[str, str]] = field(default_factory=list)

    def record_damage(self, reason: str, detail: str) -> None:
        self.damage.append((reason, detail))


_NO_RECORDS = np.empty(0, dtype=np.int64)


@dataclass
class _Walk:
    records: np.ndarray  # int64 offsets in the buffer of each complete record or block
    end: int  # first byte not consumed
    next_size: int | None = None  # size of the incomplete record at `end`, when its header was readable
    damaged: str | None = None  # why the walk cannot continue past `end`
    section_break: bool = False  # a pcapng section header at `end` changes the rules for what follows


class CaptureReader:
    """Opens one capture file, checks its format, and yields `RecordBatch`es of at most `chunk_bytes`."""

    def __init__(self, path: str | os.PathLike[str], chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self.path = Path(path)
        self._chunk_bytes = chunk_bytes
        self._stream, head = _open_stream(self.path)
        try:
            self._walker = _walker_for(str(self.path), head)
        except UnreadableCapture:
            self._stream.close()
            raise
        self.info = self._walker.info
        self.info.name = self.path.name
        self._pending = head

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def largest_chunk(self) -> int:
        """The most bytes a chunk can hold: `chunk_bytes`, or the largest record the reader accepts."""
        return max(self._chunk_bytes, MAX_RECORD_BYTES + 16)

    def batches(self, slots: ChildSlots | None = None) -> Iterator[RecordBatch]:
        """The file's records, a chunk at a time: read into one buffer or, in the read-ahead process, into
        `slots` in turn (each of `largest_chunk` bytes and READ_SLACK), so the chunks are the same."""
        chunks = _ChunkBuffer(self._stream, self._chunk_bytes, self._pending, slots)
        walker = self._walker
        while True:
            limit = chunks.fill()
            walk = walker.walk(chunks.buffer, limit)
            if len(walk.records):
                yield walker.batch(chunks.buffer, walk.records)
            if walk.damaged:
                self.info.record_damage("corrupt_record_header", walk.damaged)
                return
            if chunks.eof and not walk.section_break:
                if chunks.read_error:
                    self.info.record_damage("unreadable_tail", chunks.read_error)
                elif walk.end < limit:
                    self.info.record_damage(
                        "record_cut_short", f"the file ends {limit - walk.end} bytes into its last record"
                    )
                return
            chunks.consume(walk.end)
            if not len(walk.records) and not walk.section_break:
                chunks.make_room(walk.next_size or 0)


def capture_bytes(path: str | os.PathLike[str]) -> int:
    """About how many bytes reading the capture gives: the file's size or, gzip-compressed, the size
    its trailer records (modulo 4 GiB, so never less than the compressed size is taken). 0 when the
    file cannot be read: the reader then says why."""
    try:
        with open(path, "rb") as capture:
            size = os.fstat(capture.fileno()).st_size
            if size < 18 or capture.read(2) != GZIP_MAGIC:
                return size
            capture.seek(-4, os.SEEK_END)
            return max(size, struct.unpack("<I", capture.read(4))[0])
    except OSError:
        return 0


def _open_stream(path: Path) -> tuple[io.BufferedIOBase, bytes]:
    name = str(path)
    try:
        # Buffered streams, both: _ChunkBuffer reads into its buffer with readinto.
        stream: io.BufferedIOBase = open(path, "rb")  # the reader owns it and closes it
    except OSError as error:
        raise UnreadableCapture(name, f"cannot open: {error.strerror or error}") from error
    try:
        head = stream.read(PCAP_HEADER_BYTES)
        if head[:2] == GZIP_MAGIC:
            stream.close()
            stream = gzip.GzipFile(path, "rb")
            head = stream.read(PCAP_HEADER_BYTES)
    except (OSError, EOFError) as error:
        stream.close()
        raise UnreadableCapture(name, f"cannot read: {error}") from error
    if not head:
        stream.close()
        raise UnreadableCapture(name, "the file is empty (0 bytes): not a capture")
    return stream, head


def _walker_for(name: str, head: bytes) -> ClassicWalker | _PcapngWalker:
    magic = head[:4]
    if magic in PCAP_MAGICS:
        if len(head) < PCAP_HEADER_BYTES:
            raise UnreadableCapture(name, f"only {len(head)} bytes: too short for a pcap file header")
        return ClassicWalker(name, head)
    if magic == struct.pack("<I", PCAPNG_SECTION_HEADER):
        return _PcapngWalker(name, head)
    raise UnreadableCapture(name, f"not a pcap or pcapng file (it starts with bytes {head[:8].hex(' ')})")


class _ChunkBuffer:
    """A buffer refilled from a stream; the unconsumed tail (a partial record) moves to the front, or,
    reading ahead, to the front of the next free slot."""

    def __init__(
        self, stream: io.BufferedIOBase, chunk_bytes: int, pending: bytes, slots: ChildSlots | None = None
    ) -> None:
        self._stream = stream
        self._slots = slots
        self._capacity = max(chunk_bytes, len(pending))  # how much is read before each walk
        if slots is None:
            self.buffer: RawBytes = bytearray(self._capacity + READ_SLACK)
        else:
            self.buffer = slots.current.data
        self.buffer[: len(pending)] = pending
        self._filled = len(pending)
        self.eof = False
        self.read_error: str | None = None

    def fill(self) -> int:
        view = memoryview(self.buffer)
        while not self.eof and self._filled < self._capacity:
            try:
                count = self._stream.readinto(view[self._filled : self._capacity])
            except (EOFError, OSError) as error:  # a damaged gzip stream
                self.read_error, count = f"reading stopped: {error}", 0
            if not count:
                self.eof = True
            else:
                self._filled += count
        view.release()
        return self._filled

    def consume(self, end: int) -> None:
        tail = self._filled - end
        source = self.buffer
        if self._slots is not None:
            self.buffer = self._slots.next_free().data
        self.buffer[:tail] = source[end : self._filled]
        self._filled = tail

    def make_room(self, record_size: int) -> None:
        """Nothing fitted: read more, so the record at the front fits (its size is bounded by the
        walkers, and a read-ahead slot has room for the largest)."""
        if record_size <= self._capacity:
            return
        self._capacity = record_size
        if len(self.buffer) < record_size + READ_SLACK:
            assert self._slots is None, "a read-ahead slot has room for the largest record"
            grown = bytearray(record_size + READ_SLACK)
            grown[: self._filled] = self.buffer[: self._filled]
            self.buffer = grown


class ClassicWalker:
    def __init__(self, name: str, head: bytes) -> None:
        self._endian, resolution = PCAP_MAGICS[head[:4]]
        major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(self._endian + "HHiIII", head, 4)
        if major != 2:
            raise UnreadableCapture(name, f"pcap version {major} is not supported (only version 2 exists)")
        self._linktype = network & 0xFFFF
        self._frac_to_ns = 1000 if resolution == "us" else 1
        self._frac_limit = 1_000_000 if resolution == "us" else 1_000_000_000
        self._max_caplen = min(max(snaplen, 262144), MAX_RECORD_BYTES)
        self._uint32 = struct.Struct(self._endian + "I")
        self._started = False
        self._scan = Scratch()
        self.info = FileInfo(
            name=name,
            format="pcap",
            byte_order="little" if self._endian == "<" else "big",
            timestamp_resolution=resolution,
            link_types={self._linktype},
        )

    def walk(self, buf: RawBytes, limit: int) -> _Walk:
        offset = 0
        if not self._started:
            if limit < PCAP_HEADER_BYTES:
                return _Walk(_NO_RECORDS, 0)
            offset, self._started = PCAP_HEADER_BYTES, True
        records, offset = self._chain(buf, offset, limit)
        starts = np.empty(len(records) + 1, dtype=np.int64)
        starts[:-1] = records
        starts[-1] = offset
        steps = np.diff(starts)
        starts = starts[:-1]
        absurd = np.flatnonzero(steps - 16 > self._max_caplen)
        if len(absurd):
            first = int(absurd[0])
            detail = f"a record header claims {int(steps[first]) - 16} captured bytes; the rest of the file is not read"
            return _Walk(starts[:first], int(starts[first]), damaged=detail)
        if offset > limit:  # the last record does not end in this chunk
            return _Walk(starts[:-1], int(starts[-1]), next_size=int(steps[-1]))
        return _Walk(starts, offset)

    def _chain(self, buf: RawBytes, offset: int, limit: int) -> tuple[np.ndarray | list[int], int]:
        """(offset of every record header that starts at or before limit - 16, offset after the last one),
        following each header's captured length from `offset`, exactly as a sequential walk would: by
        the lockstep walk, else the candidate walk, else one record at a time."""
        last_header = limit - 16
        if last_header - offset < VECTOR_WALK_MIN_BYTES:
            return self._walk_records(buf, offset, limit)
        walked = self.lockstep_walk(buf, offset, last_header)
        return walked if walked is not None else self._candidate_walk(buf, offset, limit)

    def _plausible(self, buf: RawBytes, candidates: np.ndarray, seconds_near: int) -> tuple[np.ndarray, np.ndarray]:
        """(whether each candidate position holds a plausible record header, its captured length)."""
        fields = gather_bytes(buf, candidates, 16).view(self._endian + "u4")
        seconds, fraction, caplen, origlen = fields.T
        plausible = (
            (np.abs(seconds.astype(np.int64) - seconds_near) <= MAX_SECONDS_IN_CHUNK)
            & (fraction < self._frac_limit)
            & (caplen <= origlen)
            & (caplen <= self._max_caplen)
        )
        return plausible, caplen

    def lockstep_walk(self, buf: RawBytes, offset: int, last_header: int) -> tuple[np.ndarray, int] | None:
        """The chain walked from many places at once; None when those places do not join up.

        A walker starts at `offset`, and one more at the first plausible record header in the first
        window of every further segment. All walkers follow captured lengths together, one numpy step
        per record, each until it reaches or passes the next walker's start. When each one's last
        record leads exactly there, every start is on the chain the first walker follows from a known
        record, so together they visit exactly the records of a sequential walk. Otherwise (a start was
        a false candidate, or a length jumped past it) another walk is needed."""
        segments = (last_header - offset) // LOCKSTEP_SEGMENT_BYTES - 1
        if segments < MIN_LOCKSTEP_SEGMENTS:
            return None
        time_top = 3 if self._endian == "<" else 0
        first_segment = offset + LOCKSTEP_SEGMENT_BYTES
        data = np.frombuffer(buf, dtype=np.uint8, count=first_segment + segments * LOCKSTEP_SEGMENT_BYTES + time_top)
        windows = data[first_segment + time_top :].reshape(segments, LOCKSTEP_SEGMENT_BYTES)[:, :LOCKSTEP_WINDOW_BYTES]
        segment, column = np.divmod(np.flatnonzero(windows == buf[offset + time_top]), LOCKSTEP_WINDOW_BYTES)
        candidates = first_segment + segment * LOCKSTEP_SEGMENT_BYTES + column
        seconds_near = self._uint32.unpack_from(buf, offset)[0]  # the timestamp of the record at `offset`
        plausible = self._plausible(buf, candidates, seconds_near)[0]
        candidates, segment = candidates[plausible], segment[plausible]
        first_in_segment = np.ones(len(segment), dtype=bool)
        np.not_equal(segment[1:], segment[:-1], out=first_in_segment[1:])
        starts = np.concatenate([[offset], candidates[first_in_segment]])

        # The captured length of the record whose header is at each position.
        caplens = np.ndarray((last_header + 1,), dtype=self._endian + "u4", buffer=buf, offset=8, strides=(1,))
        bounds = np.append(starts[1:], last_header + 1)  # the last walker goes on while at or before last_header
        position, visits = starts, []
        while len(position):
            visits.append(position)
            position = position + caplens[position]
            position += 16
            going = position < bounds
            position, bounds = position[going], bounds[going]
        # Walkers keep to their own stretch, in order, so each step's positions are sorted and a stable
        # sort (which merges runs) puts all of them in file order.
        records = np.sort(np.concatenate(visits), kind="stable")
        # Each walker's last record must lead exactly to the next walker's start.
        before_next = records[np.searchsorted(records, starts[1:]) - 1]
        if (before_next + caplens[before_next] + 16 != starts[1:]).any():
            return None
        last = int(records[-1])
        return records, last + 16 + int(caplens[last])

    def _candidate_walk(self, buf: RawBytes, offset: int, limit: int) -> tuple[np.ndarray | list[int], int]:
        """`_chain` from candidate record headers found by numpy: a byte position is a candidate when
        its timestamp is close to the first record's and its fields are plausible (a superset of the
        real headers, unless the timestamps jump or a header contradicts itself; a header that is not a
        candidate only makes the walk slower, never different). Each candidate's length says where its
        successor starts; when that is the next candidate, the whole run is confirmed at once. Where it
        is not (a false candidate inside a packet, or a header the filter missed), the walk jumps to
        the computed successor; a successor that is not a candidate is walked one record at a time.
        """
        last_header = limit - 16
        data = np.frombuffer(buf, dtype=np.uint8, count=limit)
        time_top = 3 if self._endian == "<" else 0
        region = data[offset + time_top : last_header + time_top + 1]
        scan = self._scan.get(len(region))
        np.equal(region, buf[offset + time_top], out=scan)
        candidates = np.flatnonzero(scan)
        candidates += offset
        plausible, caplen = self._plausible(buf, candidates, self._uint32.unpack_from(buf, offset)[0])
        candidates, caplen = candidates[plausible], caplen[plausible]
        if not len(candidates) or candidates[0] != offset:
            return self._walk_records(buf, offset, limit)
        successor = candidates + 16
        successor += caplen
        breaks = np.flatnonzero(successor[:-1] != candidates[1:]).tolist()
        if len(breaks) * 8 > len(candidates):  # candidates are mostly false: this walk would be slower
            return self._walk_records(buf, offset, limit)
        breaks.append(len(candidates) - 1)
        runs: list[np.ndarray | list[int]] = []
        first = 0
        while True:
            last = breaks[bisect_left(breaks, first)]
            runs.append(candidates[first : last + 1])
            offset = int(successor[last])
            if offset > last_header:
                break
            first = int(np.searchsorted(candidates, offset))
            if first == len(candidates) or candidates[first] != offset:
                tail, offset = self._walk_records(buf, offset, limit)
                runs.append(tail)
                break
        return (runs[0] if len(runs) == 1 else np.concatenate(runs)), offset

    def _walk_records(self, buf: RawBytes, offset: int, limit: int) -> tuple[list[int], int]:
        """The sequential walk: nothing in the loop but the length read and the step. Absurd lengths
        are caught afterwards, from the steps themselves."""
        unpack = self._uint32.unpack_from
        records: list[int] = []
        append = records.append
        last_header = limit - 16
        while offset <= last_header:
            append(offset)
            offset += 16 + unpack(buf, offset + 8)[0]
        return records, offset

    def batch(self, buffer: RawBytes, offsets: np.ndarray) -> RecordBatch:
        rows = gather_bytes(buffer, offsets, 16 + PACKET_HEAD_BYTES)
        headers = rows[:, :16].view(self._endian + "u4")
        seconds, fraction, caplen, origlen = (headers[:, column].astype(np.int64) for column in range(4))
        return RecordBatch(
            buf=np.frombuffer(buffer, dtype=np.uint8),
            raw=buffer,
            data_start=offsets + 16,
            caplen=caplen,
            origlen=np.maximum(origlen, caplen),
            ts_ns=seconds * 1_000_000_000 + fraction * self._frac_to_ns,
            linktype=np.full(len(offsets), self._linktype, dtype=np.int64),
            bad_record=origlen < caplen,
            head=rows[:, 16:],
        )


@dataclass(frozen=True)
class _Interface:
    linktype: int
    # Timestamps count units of 10**-exponent (decimal) or 2**-exponent (binary) seconds.
    binary: bool = False
    exponent: int = 6
    offset_seconds: int = 0

    def resolution_name(self) -> str:
        if not self.binary and self.exponent in (6, 9):
            return "us" if self.exponent == 6 else "ns"
        return f"{2 if self.binary else 10}^-{self.exponent} s"

    def to_ns(self, units: np.ndarray) -> np.ndarray:
        if self.binary:
            shift = min(self.exponent, 33)  # keeps fraction * 1e9 inside 64 bits
            units = units >> np.uint64(self.exponent - shift)
            whole = (units >> np.uint64(shift)).astype(np.int64) * 1_000_000_000
            fraction = (units & np.uint64((1 << shift) - 1)) * np.uint64(1_000_000_000) >> np.uint64(shift)
            ns = whole + fraction.astype(np.int64)
        elif self.exponent <= 9:
            ns = units.astype(np.int64) * 10 ** (9 - self.exponent)
        else:
            ns = (units // np.uint64(10 ** (self.exponent - 9))).astype(np.int64)
        return ns + self.offset_seconds * 1_000_000_000


class _PcapngWalker:
    def __init__(self, name: str, head: bytes) -> None:
        if len(head) < 12:
            raise UnreadableCapture(name, f"only {len(head)} bytes: too short for a pcapng section header")
        self._endian = _pcapng_endian(name, head[8:12])
        self._interfaces: list[_Interface] = []
        self.info = FileInfo(
            name=name,
            format="pcapng",
            byte_order="little" if self._endian == "<" else "big",
            timestamp_resolution="per interface",
        )

    def walk(self, buf: RawBytes, limit: int) -> _Walk:
        header = struct.Struct(self._endian + "II")
        records: list[int] = []
        offset = 0
        while offset + 12 <= limit:
            block_type, block_length = header.unpack_from(buf, offset)
            if block_type == PCAPNG_SECTION_HEADER:
                if records:
                    return _Walk(np.asarray(records, dtype=np.int64), offset, section_break=True)
                self._endian = _pcapng_endian(self.info.name, bytes(buf[offset + 8 : offset + 12]))
                header = struct.Struct(self._endian + "II")
                block_type, block_length = header.unpack_from(buf, offset)
                self._interfaces = []
            if block_length < 12 or block_length % 4 or block_length > MAX_RECORD_BYTES:
                detail = f"a block header claims {block_length} bytes; the rest of the file is not read"
                return _Walk(np.asarray(records, dtype=np.int64), offset, damaged=detail)
            if offset + block_length > limit:
                return _Walk(np.asarray(records, dtype=np.int64), offset, next_size=block_length)
            if block_type == PCAPNG_ENHANCED_PACKET:
                records.append(offset)
            elif block_type == PCAPNG_INTERFACE:
                self._interfaces.append(self._interface(buf, offset, block_length))
            elif block_type in PCAPNG_UNSUPPORTED_PACKET_BLOCKS:
                self.info.record_damage("unsupported_pcapng_block", f"a {PCAPNG_UNSUPPORTED_PACKET_BLOCKS[block_type]}")
            offset += block_length
        return _Walk(np.asarray(records, dtype=np.int64), offset)

    def _interface(self, buf: RawBytes, offset: int, block_length: int) -> _Interface:
        linktype = struct.unpack_from(self._endian + "H", buf, offset + 8)[0]
        self.info.link_types.add(linktype)
        binary, exponent, offset_seconds = False, 6, 0
        option, end = offset + 16, offset + block_length - 4
        while option + 4 <= end:
            code, length = struct.unpack_from(self._endian + "HH", buf, option)
            value = bytes(buf[option + 4 : option + 4 + length])
            if code == 0:
                break
            if code == 9 and length == 1:  # if_tsresol
                binary, exponent = bool(value[0] & 0x80), value[0] & 0x7F
            elif code == 14 and length == 8:  # if_tsoffset
                offset_seconds = struct.unpack(self._endian + "q", value)[0]
            option += 4 + (length + 3) // 4 * 4
        return _Interface(linktype, binary, exponent, offset_seconds)

    def batch(self, buffer: RawBytes, offsets: np.ndarray) -> RecordBatch:
        buf = np.frombuffer(buffer, dtype=np.uint8)
        big = self._endian == ">"
        block_length = gather_uint(buf, offsets + 4, 4, big_endian=big)
        interface = gather_uint(buf, offsets + 8, 4, big_endian=big)
        units = (gather_uint(buf, offsets + 12, 4, big_endian=big).astype(np.uint64) << np.uint64(32)) | (
            gather_uint(buf, offsets + 16, 4, big_endian=big).astype(np.uint64)
        )
        caplen = gather_uint(buf, offsets + 20, 4, big_endian=big)
        origlen = gather_uint(buf, offsets + 24, 4, big_endian=big)
        bad = (caplen > block_length - 32) | (interface >= len(self._interfaces)) | (origlen < caplen)
        caplen = np.where(caplen > block_length - 32, 0, caplen)
        ts_ns = np.zeros(len(offsets), dtype=np.int64)
        linktype = np.full(len(offsets), -1, dtype=np.int64)
        for number, described in enumerate(self._interfaces):
            mine = interface == number
            if mine.any():
                ts_ns[mine] = described.to_ns(units[mine])
                linktype[mine] = described.linktype
        if len(self._interfaces) == 1:
            self.info.timestamp_resolution = self._interfaces[0].resolution_name()
        return RecordBatch(
            buf=buf,
            raw=buffer,
            data_start=offsets + 28,
            caplen=caplen,
            origlen=np.maximum(origlen, caplen),
            ts_ns=ts_ns,
            linktype=linktype,
            bad_record=bad,
        )


def _pcapng_endian(name: str, magic: bytes) -> str:
    if magic == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
        return "<"
    if magic == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
        return ">"
    raise UnreadableCapture(name, "pcapng section header with an invalid byte-order magic")

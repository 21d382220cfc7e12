"""The classic-pcap record walk: the numpy walk (candidate headers confirmed run by run) must always
find exactly the records, end offset and damage that a one-record-at-a-time walk finds, whatever the
packets contain, wherever a chunk ends and however the headers are damaged."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mirrorcap.report import analyze_captures, formats, http, tokens
from mirrorcap.report.formats import READ_SLACK, CaptureReader, ClassicWalker

from tests.support.pcap_crafting import START, TcpConversation, encapsulate, http_exchange, known_records, write_pcap

SECONDS = int(START)


def _file_header(endian: str, nanoseconds: bool = False) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1)


def _records(endian: str, specs: list[tuple[int, int, int, bytes]]) -> bytes:
    """(seconds, fraction, origlen, data) per record; caplen is len(data)."""
    return b"".join(
        struct.pack(endian + "IIII", seconds, fraction, len(data), origlen) + data
        for seconds, fraction, origlen, data in specs
    )


def _both_walks(endian: str, body: bytes, limit: int) -> tuple[tuple, tuple]:
    walker = ClassicWalker("t.pcap", _file_header(endian))
    walker._started = True  # the body starts at a record header
    buf = bytearray(body[:limit]) + bytearray(READ_SLACK)
    vector = walker.walk(buf, limit)
    walker._chain = walker._walk_records  # type: ignore[method-assign]
    sequential = walker.walk(buf, limit)

    def key(walk: formats._Walk) -> tuple:
        return (list(map(int, walk.records)), walk.end, walk.next_size, walk.damaged)

    return key(vector), key(sequential)


def _lookalike(endian: str, seconds: int) -> bytes:
    """Bytes inside a packet that look like a record header."""
    return struct.pack(endian + "IIII", seconds, 5, 60, 60)


_SIZES = st.integers(min_value=0, max_value=1600)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    endian=st.sampled_from(["<", ">"]),
    sizes=st.lists(_SIZES, min_size=40, max_size=120),
    fake_every=st.integers(min_value=1, max_value=7),
    jump_at=st.integers(min_value=0, max_value=200),
    cut=st.integers(min_value=0, max_value=40_000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_vector_walk_matches_sequential_walk(
    endian: str, sizes: list[int], fake_every: int, jump_at: int, cut: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    specs = []
    for number, size in enumerate(sizes):
        data = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        if number % fake_every == 0 and size >= 16:  # a header lookalike somewhere in the packet
            at = int(rng.integers(0, size - 15))
            data[at : at + 16] = _lookalike(endian, SECONDS + int(rng.integers(0, 3)))
        # Timestamps jump (more than the walk's window) part way through: those headers are missed by
        # the scan and must be walked one by one.
        seconds = SECONDS + number if number < jump_at else SECONDS + (1 << 20) + number
        specs.append((seconds, int(rng.integers(0, 1_000_000)), size + int(rng.integers(0, 3)), bytes(data)))
    body = _records(endian, specs)
    limit = max(0, len(body) - cut)
    vector, sequential = _both_walks(endian, body, limit)
    assert vector == sequential


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize(
    "damage",
    ["absurd_caplen", "caplen_above_origlen", "zero_caplen", "odd_caplens", "fraction_out_of_range", "same_caplen"],
)
def test_vector_walk_matches_on_damaged_and_unusual_headers(endian: str, damage: str) -> None:
    rng = np.random.default_rng(3)
    specs = []
    for number in range(400):
        size = {"zero_caplen": number % 3 * 7, "odd_caplens": 2 * number + 1, "same_caplen": 100}.get(
            damage, int(rng.integers(20, 300))
        )
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        origlen = size + 4
        fraction = int(rng.integers(0, 1_000_000))
        if number == 250 and damage == "caplen_above_origlen":
            origlen = size - 10
        if number % 50 == 7 and damage == "fraction_out_of_range":
            fraction = 3_000_000_000
        specs.append((SECONDS + number // 10, fraction, origlen, data))
    body = bytearray(_records(endian, specs))
    if damage == "absurd_caplen":
        at = len(_records(endian, specs[:300]))
        body[at + 8 : at + 12] = struct.pack(endian + "I", 5_000_000)
    for cut in (0, 1, 9, 15, 16, 17, 101):
        vector, sequential = _both_walks(endian, bytes(body), len(body) - cut)
        assert vector == sequential


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("false_start", [False, True])
def test_lockstep_walk_joins_up_or_gives_way(endian: str, false_start: bool) -> None:
    """Walkers started all over the chunk join up into the sequential walk's records; a false start (a
    header lookalike early in a segment) makes them give way to the candidate walk, with the same
    result."""
    rng = np.random.default_rng(11)
    specs = []
    for number in range(400):
        data = bytearray(rng.integers(0, 256, int(rng.integers(40, 700)), dtype=np.uint8).tobytes())
        specs.append((SECONDS + number // 50, int(rng.integers(0, 1_000_000)), len(data), bytes(data)))
    body = bytearray(_records(endian, specs))
    if false_start:  # a lookalike in packet data, first in the window of a segment past the 10th
        segment = formats.LOCKSTEP_SEGMENT_BYTES
        at = next(
            start
            for offset, caplen in _record_spans(endian, body)
            for start in range(-(-(offset + 16) // segment) * segment, offset + caplen, segment)
            if start > 10 * segment and start + 16 <= offset + 16 + caplen
        )
        body[at : at + 16] = _lookalike(endian, SECONDS)
    walker = ClassicWalker("t.pcap", _file_header(endian))
    walker._started = True
    buf = body + bytearray(READ_SLACK)
    lockstep = walker.lockstep_walk(buf, 0, len(body) - 16)
    assert (lockstep is None) == false_start
    vector, sequential = _both_walks(endian, bytes(body), len(body))
    assert vector == sequential
    if lockstep is not None:
        assert (list(map(int, lockstep[0])), lockstep[1]) == (sequential[0], sequential[1])


def _record_spans(endian: str, body: bytes) -> list[tuple[int, int]]:
    """(offset, captured length) of every record."""
    spans, offset = [], 0
    while offset + 16 <= len(body):
        caplen = struct.unpack_from(endian + "I", body, offset + 8)[0]
        spans.append((offset, caplen))
        offset += 16 + caplen
    return spans


@pytest.mark.parametrize("chunk_bytes", [1 << 14, 50_001, 1 << 17, 1 << 22])
def test_large_chunks_report_the_same_as_small_ones(tmp_path: Path, chunk_bytes: int) -> None:
    """Chunks large enough for the numpy walk, cut at every kind of place, against a file read in
    chunks too small for it."""
    records = []
    for number in range(120):
        conversation = TcpConversation(client_port=20000 + number)
        base = START + number * 0.05
        conversation.handshake(base, 0.002)
        http_exchange(conversation, base + 0.01, path=f"/p/{number % 7}", status=200 + number % 2 * 300)
        conversation.close(base + 0.04)
        records += encapsulate(conversation.sent, vni=100 + number % 3)
    records += known_records()
    path = write_pcap(tmp_path / "big.pcap", records)
    assert path.stat().st_size > 4 * (1 << 14)
    small, large = (
        analyze_captures([path], chunk_bytes=size).model_dump(mode="json", exclude={"generated_at"})
        for size in (4096, chunk_bytes)
    )
    # Equal conversations may be ranked in a different order when batches differ: compare the numbers.
    for ranked in ("top_conversations", "top_talkers"):
        assert [row["bytes"] for row in large.pop(ranked)] == [row["bytes"] for row in small.pop(ranked)]
    assert large == small
    assert large["totals"]["packets"] == len(records)


def test_reader_batches_cover_every_record_once(tmp_path: Path) -> None:
    conversation = TcpConversation()
    for number in range(300):
        http_exchange(conversation, START + number * 0.02, body=b"y" * (number % 97))
    records = encapsulate(conversation.sent)
    path = write_pcap(tmp_path / "c.pcap", records)
    with CaptureReader(path, 1 << 15) as reader:
        lengths = [int(length) for batch in reader.batches() for length in batch.caplen]
    assert lengths == [len(item.data) for item in records]


@settings(max_examples=80, deadline=None)
@given(
    plants=st.lists(st.integers(min_value=0, max_value=40_000), max_size=60),
    start=st.integers(min_value=0, max_value=64),
    cut=st.integers(min_value=0, max_value=64),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_http_token_scan_matches_the_regular_expression(plants: list[int], start: int, cut: int, seed: int) -> None:
    """The numpy scan for "HTTP/1." finds what the regular expression finds, at every alignment and
    at both ends of the range (partial tokens at the edges included)."""
    rng = np.random.default_rng(seed)
    raw = bytearray(rng.choice(np.frombuffer(b"HTTP/1.x 200\r\n", dtype=np.uint8), 40_100).tobytes())
    for at in plants:
        raw[at : at + 7] = b"HTTP/1."
    raw[start : start + 7] = b"HTTP/1."
    end = len(raw) - cut
    raw[end - 5 : end + 2] = b"HTTP/1."  # straddles the end: not wholly inside
    raw += bytearray(READ_SLACK)
    expected = [match.start() for match in tokens.VERSION_TOKEN.finditer(raw, start + 1, end)]
    assert tokens.find_version_tokens(raw, start + 1, end).tolist() == expected
    expected = [match.start() for match in tokens.VERSION_TOKEN.finditer(raw, start, end - 7)]
    assert tokens.find_version_tokens(raw, start, end - 7).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(st.tuples(st.booleans(), st.integers(min_value=-1, max_value=5)), max_size=60),
    earlier=st.lists(st.tuples(st.booleans(), st.integers(min_value=-1, max_value=5)), max_size=10),
)
def test_http_pairing_by_numpy_matches_the_queue(messages: list[tuple[bool, int]], earlier) -> None:
    """Pairing responses with requests batch by batch: numpy for the usual conversations must give what
    the one-message-at-a-time queue gives, with requests left open by an earlier batch too."""

    def run(pair) -> tuple[list, list, dict]:
        analyzer = http.HttpAnalyzer()
        results = []
        for number, batch in enumerate((earlier, messages)):
            status = np.array([response for response, _flow in batch], dtype=bool)
            flows = np.array([flow for _response, flow in batch], dtype=np.int64)
            times = np.arange(len(batch), dtype=np.int64) * 10 + number * 1000
            values = np.arange(len(batch), dtype=np.int64) + 100 * number
            if number == 0:
                analyzer.pair_in_order(status.tolist(), flows.tolist(), times.tolist(), values.tolist())
                continue
            matched_ts, matched_id = pair(analyzer, status, flows, times, values)
            results.append((matched_ts.tolist(), matched_id.tolist()))
        pending = {
            flow: list(waiting) if not isinstance(waiting, tuple) else [waiting]
            for flow, waiting in analyzer._pending.items()
        }
        return results, pending

    def by_queue(analyzer, status, flows, times, values):
        return analyzer.pair_in_order(status.tolist(), flows.tolist(), times.tolist(), values.tolist())

    assert run(http.HttpAnalyzer._pair) == run(by_queue)


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=80), min_size=1, max_size=5
    ),
    weak=st.booleans(),
)
def test_key_index_ids_are_exact_even_when_hashes_collide(batches, weak: bool) -> None:
    """Same key, same id; different keys, different ids; ids dense and given in the order keys are first
    seen, across batches, also when the hash is made so weak that different keys share it (the table
    then compares the keys themselves)."""
    _check_key_index(batches, weak)


@pytest.mark.parametrize("weak", [False, True])
def test_key_index_grows_and_probes_in_rounds(weak: bool) -> None:
    """Enough keys that lookups take several numpy rounds and the table grows (its ids are moved to a
    larger table) more than once, with keys coming back in later batches."""
    rng = np.random.default_rng(5)
    batches = [
        [tuple(row) for row in rng.integers(0, 1500 * (number + 1), size=(1500, 2)).tolist()] for number in range(3)
    ]
    _check_key_index(batches, weak)


def _check_key_index(batches, weak: bool) -> None:
    from mirrorcap.report import flows

    with pytest.MonkeyPatch.context() as patch:
        if weak:
            patch.setattr(flows, "hash_rows", lambda keys: (keys[:, 0] % np.uint64(3)) * np.uint64(0x9E3779B97F4A7C15))
        index = flows.KeyIndex(2)
        seen: dict[tuple[int, int], int] = {}
        for batch in batches:
            keys = np.array(batch, dtype=np.uint64).reshape(-1, 2)
            present, local = index.ids([keys[:, 0], keys[:, 1]])
            assert len(set(present.tolist())) == len(present) == len(set(batch))
            for key, key_id in zip(batch, present[local].tolist(), strict=True):
                assert seen.setdefault(key, key_id) == key_id
        assert list(seen.values()) == list(range(len(seen))) == list(range(index.count))
        assert [tuple(key) for key in index.keys.tolist()] == list(seen)

"""Reading ahead in a second process changes nothing in the report, and the second process never
outlives the reader: not when the file ends, not when the analysis stops early, not when it fails."""

from __future__ import annotations

import gzip
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mirrorcap.report import analyze, analyze_captures, formats, readahead
from mirrorcap.report.formats import CaptureReader
from mirrorcap.report.pipeline import decoded_batches
from mirrorcap.report.readahead import ReadAhead, ReadAheadFailed, Slot, spare_cpu

from tests.support.pcap_crafting import (
    START,
    Record,
    TcpConversation,
    dns_query,
    encapsulate,
    http_exchange,
    known_records,
    write_pcap,
    write_pcapng,
)

# Small chunks, so that a file of a few hundred KB passes through every slot many times.
CHUNK_BYTES = 1 << 15


def _busy_records() -> list[Record]:
    """HTTP (with errors, on several VNIs) and DNS, records of many sizes, a few larger than a chunk."""
    records = []
    for number in range(150):
        conversation = TcpConversation(client_port=20000 + number)
        base = START + number * 0.05
        conversation.handshake(base, 0.002)
        body = b"x" * (number * 37 % 1400 if number % 50 else 40_000)  # some records larger than a chunk
        http_exchange(conversation, base + 0.01, path=f"/p/{number % 7}", status=200 + number % 3 * 150, body=body)
        conversation.close(base + 0.04)
        records += encapsulate(conversation.sent, vni=100 + number % 3)
    for number in range(40):
        records += encapsulate(dns_query(f"host{number % 9}.example", START + number * 0.2, rcode=number % 4 and 0))
    records += known_records()
    return sorted(records, key=lambda item: item.ts_ns)


def _report(paths: list[Path], read_ahead: bool) -> dict:
    summary = analyze_captures(paths, chunk_bytes=CHUNK_BYTES, read_ahead=read_ahead)
    return summary.model_dump(mode="json", exclude={"generated_at"})


@pytest.fixture
def second_processes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the read-ahead processes started during the test."""
    pids: list[int] = []
    original_start = ReadAhead.start

    def start(self: ReadAhead, produce) -> None:
        original_start(self, produce)
        pids.append(self._pid)

    monkeypatch.setattr(ReadAhead, "start", start)
    return pids


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_pcap(tmp_path_factory.mktemp("readahead") / "busy.pcap", _busy_records())
    assert path.stat().st_size > 8 * CHUNK_BYTES  # many times round the slots
    return path


@pytest.mark.parametrize("token_scan", ["shared", "in-the-second-process", "in-the-first-process"])
def test_read_ahead_reports_exactly_what_one_process_reports(
    busy: Path, second_processes: list[int], monkeypatch: pytest.MonkeyPatch, token_scan: str
) -> None:
    if token_scan != "shared":  # the second process leaves the scan to the first whenever that one is idle
        monkeypatch.setattr(readahead.ChildSlots, "parent_is_idle", lambda _self: token_scan == "in-the-first-process")
    alone = _report([busy], read_ahead=False)
    assert not second_processes
    ahead = _report([busy], read_ahead=True)
    assert len(second_processes) == 1
    assert ahead == alone
    assert ahead["http"]["requests"] > 150 and ahead["dns"]["queries"] > 40


@pytest.mark.parametrize("variant", ["big-endian", "pcapng", "gzip", "cut-mid-record", "corrupt-header", "rotated"])
def test_read_ahead_agrees_on_every_kind_of_file(
    tmp_path: Path, busy: Path, variant: str, second_processes: list[int]
) -> None:
    data = busy.read_bytes()
    if variant == "big-endian":
        paths = [write_pcap(tmp_path / "big.pcap", _busy_records(), big_endian=True, nanoseconds=True)]
    elif variant == "pcapng":  # what the second process learns of the file (resolution, link types) comes back
        paths = [write_pcapng(tmp_path / "c.pcapng", _busy_records(), tsresol=9)]
    elif variant == "gzip":
        paths = [tmp_path / "c.pcap.gz"]
        paths[0].write_bytes(gzip.compress(data, compresslevel=1))
    elif variant == "cut-mid-record":
        paths = [tmp_path / "cut.pcap"]
        paths[0].write_bytes(data[:-100])
    elif variant == "corrupt-header":  # a record claiming 4 GB, two thirds of the way in
        at = _record_offsets(data)[len(_record_offsets(data)) * 2 // 3]
        paths = [tmp_path / "corrupt.pcap"]
        paths[0].write_bytes(data[: at + 8] + b"\xff\xff\xff\xff" * 2 + data[at + 16 :])
    else:
        offsets = _record_offsets(data)
        middle = offsets[len(offsets) // 2]
        paths = [tmp_path / "part2.pcap", tmp_path / "part1.pcap"]
        paths[0].write_bytes(data[:24] + data[middle:])
        paths[1].write_bytes(data[:middle])
    alone, ahead = _report(paths, read_ahead=False), _report(paths, read_ahead=True)
    assert ahead == alone
    assert len(second_processes) == len(paths)
    if variant in ("cut-mid-record", "corrupt-header"):
        assert ahead["malformed"]["total"] == 1  # the damage the second process found reaches the report


def test_the_densest_chunks_fit_their_slots(
    tmp_path: Path, second_processes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks as large as a slot, of records as small as they come, then of records that are nothing but
    HTTP version tokens: the most arrays, and the most token positions, a chunk can give."""
    chunk_bytes = formats.MAX_RECORD_BYTES + 16
    start = int(START * 1e9)
    tiny = [Record(ts_ns=start + number, data=b"", origlen=60) for number in range(3 * chunk_bytes // 16)]
    tokens = [Record(ts_ns=start + number, data=b"HTTP/1." * 1000, origlen=7000) for number in range(450)]
    path = write_pcap(tmp_path / "dense.pcap", tiny + tokens)
    monkeypatch.setattr(readahead.ChildSlots, "parent_is_idle", lambda _self: False)  # it scans every chunk
    ahead = analyze_captures([path], chunk_bytes=chunk_bytes, read_ahead=True)
    alone = analyze_captures([path], chunk_bytes=chunk_bytes, read_ahead=False)
    assert second_processes
    assert ahead.model_dump(exclude={"generated_at"}) == alone.model_dump(exclude={"generated_at"})
    assert ahead.totals.packets == len(tiny) + len(tokens)


def test_the_second_process_ends_with_the_file(busy: Path, second_processes: list[int]) -> None:
    with CaptureReader(busy, CHUNK_BYTES) as reader:
        batches = decoded_batches(reader, read_ahead=True)
        next(batches)
        assert len(second_processes) == 1 and _alive(second_processes[0])
        for _batch in batches:
            pass
        assert not _alive(second_processes[0])
        assert reader.info.damage == []


def test_the_second_process_is_stopped_when_the_analysis_stops_early(busy: Path, second_processes: list[int]) -> None:
    with CaptureReader(busy, CHUNK_BYTES) as reader:
        batches = decoded_batches(reader, read_ahead=True)
        next(batches)
        batches.close()
    assert second_processes and not _alive(second_processes[0])


def test_the_second_process_is_stopped_when_the_analysis_fails(
    busy: Path, monkeypatch: pytest.MonkeyPatch, second_processes: list[int]
) -> None:
    def fail(*_args: object) -> None:
        raise RuntimeError("analysis failed")

    monkeypatch.setattr(analyze.HttpAnalyzer, "add", fail)
    with pytest.raises(RuntimeError, match="analysis failed"):
        analyze_captures([busy], chunk_bytes=CHUNK_BYTES, read_ahead=True)
    assert second_processes and not _alive(second_processes[0])


def test_a_slot_lays_out_arrays_and_refuses_what_does_not_fit() -> None:
    slot = Slot(0, data_bytes=64, arena_bytes=64)
    arrays = {"a": np.arange(3, dtype=np.int64), "flags": np.array([True, False]), "b": np.array([7], dtype=np.int8)}
    layout = slot.pack(arrays)
    assert [offset for _name, _dtype, offset, _length in layout] == [0, 24, 32]  # 8-byte aligned
    unpacked = slot.unpack(layout)
    assert {name: (values.dtype, values.tolist()) for name, values in unpacked.items()} == {
        name: (values.dtype, values.tolist()) for name, values in arrays.items()
    }
    with pytest.raises(ValueError, match="arena"):
        slot.pack({"big": np.zeros(9, dtype=np.int64)})


def _read_ahead() -> ReadAhead:
    return ReadAhead(data_bytes=4096, arena_bytes=4096)


def test_an_error_in_the_second_process_is_raised_in_the_first() -> None:
    def produce(slots: readahead.ChildSlots) -> None:
        slots.publish({})
        raise ValueError("bad bytes at 1234")

    ahead = _read_ahead()
    ahead.start(produce)
    try:
        with pytest.raises(ValueError, match="bad bytes at 1234"):
            list(ahead)
    finally:
        ahead.stop()


def test_a_second_process_that_dies_is_reported_not_waited_for() -> None:
    ahead = _read_ahead()
    ahead.start(lambda _slots: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(ReadAheadFailed, match="killed by signal 9"):
        list(ahead)
    ahead.stop()


def test_the_second_process_sees_when_the_first_is_idle() -> None:
    def produce(slots: readahead.ChildSlots) -> None:
        slots.publish({"idle": np.array([slots.parent_is_idle()])})
        busy_while_analysed = slots.parent_is_idle()
        deadline = time.monotonic() + 10
        while not slots.parent_is_idle() and time.monotonic() < deadline:  # handed back when the next is asked for
            time.sleep(0.001)
        slots.next_free()
        slots.publish({"idle": np.array([busy_while_analysed, slots.parent_is_idle()])})

    ahead = _read_ahead()
    ahead.start(produce)
    seen = []
    for _slot, arrays in ahead:
        seen.append(arrays["idle"].tolist())
        time.sleep(0.2)  # analysing
    ahead.stop()
    assert seen == [[True], [False, True]]


def test_slots_are_handed_back_and_what_the_second_process_returns_is_the_result() -> None:
    def produce(slots: readahead.ChildSlots) -> list[str]:
        for count in (1, 2, 3, 4, 5):  # more than there are slots: each must be handed back
            slot = slots.current if count == 1 else slots.next_free()
            slot.data[:5] = b"chunk"
            slots.publish({"records": np.arange(count)})
        return ["done"]

    ahead = _read_ahead()
    ahead.start(produce)
    seen = [(slot.data[:5], arrays["records"].tolist()) for slot, arrays in ahead]
    ahead.stop()
    assert seen == [(b"chunk", list(range(count))) for count in (1, 2, 3, 4, 5)]
    assert ahead.result == ["done"]


@pytest.mark.parametrize(
    ("cpus", "lambda_memory", "other_thread", "expected"),
    [
        ({0, 1}, None, False, True),
        ({0}, None, False, False),
        ({0, 1}, "1024", False, False),  # Lambda's CPU share at 1 GB is less than one vCPU
        ({0, 1}, "3538", False, True),
        ({0, 1}, None, True, False),  # a fork would copy a thread mid-flight
    ],
)
def test_a_second_process_is_used_only_when_a_cpu_is_spare(
    monkeypatch: pytest.MonkeyPatch, cpus: set[int], lambda_memory: str | None, other_thread: bool, expected: bool
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: cpus)
    if lambda_memory:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", lambda_memory)
    else:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait) if other_thread else None
    if thread:
        thread.start()
    try:
        assert spare_cpu() is expected
    finally:
        stop.set()
        if thread:
            thread.join()


def _record_offsets(data: bytes) -> list[int]:
    offsets, offset = [], 24
    while offset + 16 <= len(data):
        offsets.append(offset)
        offset += 16 + int.from_bytes(data[offset + 8 : offset + 12], "little")
    return offsets


def _alive(pid: int) -> bool:
    """Whether `pid` is a child of this process not yet reaped."""
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def test_a_compressed_capture_is_sized_by_what_it_holds(tmp_path: Path, busy: Path) -> None:
    compressed = tmp_path / "c.pcap.gz"
    compressed.write_bytes(gzip.compress(busy.read_bytes(), compresslevel=1))
    assert compressed.stat().st_size < busy.stat().st_size
    assert formats.capture_bytes(compressed) == formats.capture_bytes(busy) == busy.stat().st_size
    assert formats.capture_bytes(tmp_path / "missing.pcap") == 0

"""Reading ahead in a second process: while the analysis works on one chunk, a forked child reads the
next chunks of the file, walks their records, gathers each record's first bytes and finds the HTTP
version tokens.

That is about a third of the report's work, and the part that needs nothing but the file's bytes, so it
overlaps with the rest when a second CPU is free. The child fills a few shared chunk-sized slots in turn
(anonymous shared memory, so no copy crosses the process boundary) and sends only small messages over a
socket pair: which slot holds the next records, and how many. The reader hands a slot back when its
batch is done with, which is when the next batch is asked for; that is already the rule for a
`RecordBatch`'s buffer.

Only a fork is used (no /dev/shm, no semaphores), so this works in Lambda as in a shell. The child runs
no code of the parent's once its producer returns: it leaves with `os._exit`.
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Pipe
from typing import Any

import numpy as np

# Two slots would do (one being analysed, one being filled); a third absorbs the jitter between chunks.
SLOT_COUNT = 3
# Lambda gives a function one vCPU's worth of time per this many MB of memory, whatever os.cpu_count says.
LAMBDA_MB_PER_VCPU = 1769


class ReadAheadFailed(Exception):
    """The read-ahead process stopped without finishing the file (killed, or out of memory)."""


def spare_cpu() -> bool:
    """Whether a second process would run beside this one rather than take turns with it: two CPUs are
    ours (in Lambda, memory buys CPU time), and this process has no other threads, which a fork would
    copy in whatever state they are in."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    lambda_memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if lambda_memory and lambda_memory.isdigit():
        cpus = min(cpus, int(lambda_memory) // LAMBDA_MB_PER_VCPU)
    return cpus >= 2 and hasattr(os, "fork") and threading.active_count() == 1


class Slot:
    """One chunk of the file and what the child found in it, in memory both processes share: the
    offsets of its records and, when they fit, a row of each record's first bytes and the positions
    of the HTTP version tokens. Memory is only mapped in where it is written."""

    def __init__(self, number: int, data_bytes: int, max_records: int, row_bytes: int, max_rows: int) -> None:
        self.number = number
        self.data = mmap.mmap(-1, data_bytes)  # MAP_SHARED | MAP_ANONYMOUS: survives the fork, shared
        self.records = _shared(max_records, np.int64)
        self.rows = _shared(max_rows * row_bytes, np.uint8).reshape(max_rows, row_bytes)
        self.tokens = _shared(max_rows, np.int64)


class ChildSlots:
    """The child's side: which slot to fill next, and handing filled ones to the parent."""

    def __init__(self, slots: list[Slot], connection: Connection) -> None:
        self._slots = slots
        self._connection = connection
        self._with_parent: set[int] = set()
        self.current = slots[0]

    def next_free(self) -> Slot:
        """A slot that is neither being filled nor being analysed; waits for the parent to hand one back."""
        while True:
            for slot in self._slots:
                if slot is not self.current and slot.number not in self._with_parent:
                    self.current = slot
                    return slot
            self._with_parent.discard(self._connection.recv())

    def publish(self, count: int, with_rows: bool, tokens: int | None) -> None:
        """Hands the current slot to the parent, its first `count` records written, and their rows if
        `with_rows`, and `tokens` positions if not None; it is the parent's until handed back."""
        self._with_parent.add(self.current.number)
        self._connection.send(("records", self.current.number, count, with_rows, tokens))


class ReadAhead:
    """Runs `produce(slots)` in a forked child; iterating gives what it publishes, in order: (slot,
    record count, with rows, token count or None). `produce` returns a picklable value, which is
    `result` once the iteration ends."""

    def __init__(self, data_bytes: int, max_records: int, row_bytes: int, max_rows: int) -> None:
        self._slots = [Slot(number, data_bytes, max_records, row_bytes, max_rows) for number in range(SLOT_COUNT)]
        self._connection: Connection | None = None
        self._pid: int | None = None
        self.result: Any = None

    def start(self, produce: Callable[[ChildSlots], Any]) -> None:
        parent_end, child_end = Pipe()
        pid = os.fork()
        if pid == 0:  # the child
            parent_end.close()
            _run_child(produce, ChildSlots(self._slots, child_end), child_end)
        child_end.close()
        self._connection, self._pid = parent_end, pid

    def __iter__(self) -> Iterator[tuple[Slot, int, bool, int | None]]:
        connection = self._connection
        assert connection is not None, "start() first"
        while True:
            try:
                message = connection.recv()
            except EOFError:
                raise ReadAheadFailed(f"the read-ahead process ended early ({self._exit_status()})") from None
            kind, *rest = message
            if kind == "records":
                number, *published = rest
                yield self._slots[number], *published
                try:
                    connection.send(number)  # the batch made from it is done with
                except BrokenPipeError:
                    pass  # the child has finished: its last message is waiting, or EOF says it failed
            elif kind == "error":
                raise rest[0]
            else:
                self.result = rest[0]
                return

    def stop(self) -> None:
        """Ends the child, whether or not it has finished, and reaps it."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                os.kill(pid, signal.SIGKILL)  # it holds nothing but a read-only file and shared memory
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)

    def _exit_status(self) -> str:
        if self._pid is None:
            return "stopped"
        pid, status = os.waitpid(self._pid, 0)
        self._pid = None
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"


def _shared(count: int, dtype: type) -> np.ndarray:
    return np.frombuffer(mmap.mmap(-1, max(count, 1) * np.dtype(dtype).itemsize), dtype=dtype)[:count]


def _run_child(produce: Callable[[ChildSlots], Any], slots: ChildSlots, connection: Connection) -> None:
    status = 0
    try:
        try:
            result = produce(slots)
        except BaseException as error:  # noqa: BLE001 - every failure is the parent's to raise
            status = 1
            connection.send(("error", _picklable(error)))
        else:
            connection.send(("done", result))
    except BaseException:  # noqa: BLE001 - the parent has gone; nothing is left to tell
        status = 1
    finally:
        os._exit(status)  # never return into the parent's code (its finally blocks, atexit, buffers)


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - whatever the exception holds, the parent gets its text
        return ReadAheadFailed(f"the read-ahead process failed: {error!r}")
    return error

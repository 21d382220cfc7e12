"""Reading ahead in a second process: while the analysis works on one chunk, a forked child reads the
next chunks of the file into shared slots and makes arrays of them in the slots' arenas (the report has
it decode the packets there; see `pipeline`).

The child fills a few shared chunk-sized slots in turn (anonymous shared memory, so neither the chunk nor
the arrays are copied across the process boundary) and sends only small messages over a socket pair:
which slot is ready, and where its arrays lie. The parent hands a slot back when it asks for the next
one; until then the slot's bytes and arrays are its to read.

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


# How a published batch's arrays lie in its slot's arena: (name, dtype, offset, length) of each.
Layout = list[tuple[str, str, int, int]]


class Slot:
    """One chunk of the file, and an arena for the arrays the child makes of it, in memory both
    processes share. Memory is only mapped in where it is written."""

    def __init__(self, number: int, data_bytes: int, arena_bytes: int) -> None:
        self.number = number
        self.data = mmap.mmap(-1, data_bytes)  # MAP_SHARED | MAP_ANONYMOUS: survives the fork, shared
        self.array = np.frombuffer(self.data, dtype=np.uint8)
        self._arena = np.frombuffer(mmap.mmap(-1, arena_bytes), dtype=np.uint8)

    def pack(self, arrays: dict[str, np.ndarray]) -> Layout:
        """Copies one-dimensional `arrays` into the arena, each 8-byte aligned; their layout."""
        layout, offset = [], 0
        for name, values in arrays.items():
            size = values.nbytes
            if offset + size > len(self._arena):
                raise ValueError(f"a read-ahead slot's arena ({len(self._arena)} bytes) is too small")
            self._arena[offset : offset + size] = values.view(np.uint8)
            layout.append((name, values.dtype.str, offset, len(values)))
            offset += -(-size // 8) * 8
        return layout

    def unpack(self, layout: Layout) -> dict[str, np.ndarray]:
        """Views of the arrays `pack` laid out: valid until the slot is filled again."""
        return {
            name: np.frombuffer(self._arena, dtype=dtype, count=length, offset=offset)
            for name, dtype, offset, length in layout
        }


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
            self._take_back()

    def parent_is_idle(self) -> bool:
        """Whether the parent has handed back every slot it was given: it is waiting for the next."""
        while self._with_parent and self._connection.poll():
            self._take_back()
        return not self._with_parent

    def _take_back(self) -> None:
        """Waits for the parent to hand back a slot."""
        self._with_parent.discard(self._connection.recv())

    def publish(self, arrays: dict[str, np.ndarray]) -> None:
        """Packs `arrays` into the current slot and hands it to the parent, whose it is until handed back."""
        layout = self.current.pack(arrays)
        self._with_parent.add(self.current.number)
        self._connection.send(("arrays", self.current.number, layout))


class ReadAhead:
    """Runs `produce(slots)` in a forked child; iterating gives what it publishes, in order, as (slot,
    its arrays). `produce` returns a picklable value, which is `result` once the iteration ends."""

    def __init__(self, data_bytes: int, arena_bytes: int) -> None:
        self._slots = [Slot(number, data_bytes, arena_bytes) for number in range(SLOT_COUNT)]
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

    def __iter__(self) -> Iterator[tuple[Slot, dict[str, np.ndarray]]]:
        connection = self._connection
        assert connection is not None, "start() first"
        while True:
            try:
                message = connection.recv()
            except EOFError:
                raise ReadAheadFailed(f"the read-ahead process ended early ({self._exit_status()})") from None
            kind, *rest = message
            if kind == "arrays":
                number, layout = rest
                slot = self._slots[number]
                yield slot, slot.unpack(layout)
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

"""HTTP/1.x requests and responses found in TCP payloads.

One C-speed regular-expression pass over the batch finds every "HTTP/1." token: the version at the end
of a request line, or the start of a status line. numpy maps each hit to its packet and keeps those in a
TCP payload at a plausible place; only those (about one per HTTP message) reach Python, to read the
method, path and Host header and to pair each response with its request.

A message counts only in the segment that first carried it whole: bytes below the highest sequence
number already seen in that direction were looked at before, so a retransmitted segment, whole or
overlapping, never counts a message twice, wherever in the segment the message starts.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from mirrorcap.report.counting import BoundedCounter, distribution
from mirrorcap.report.decode import Decoded
from mirrorcap.report.flows import FlowAssignment, TcpFindings

VERSION_TOKEN = re.compile(rb"HTTP/1\.")
STATUS_LINE_BYTES = len(b"HTTP/1.1 200")
REQUEST_VERSION_BYTES = len(b"HTTP/1.1\r\n")
METHOD = re.compile(rb"[A-Z][A-Z-]{1,19}")
HOST_HEADER = re.compile(rb"\r\n[Hh][Oo][Ss][Tt][ \t]*:[ \t]*([^\r\n]*)")
MAX_PATH_CHARS = 200
SPACE, CR, LF, ZERO, NINE = 0x20, 0x0D, 0x0A, 0x30, 0x39


@dataclass(frozen=True)
class HttpRequest:
    ts_ns: int
    method: str
    host: str
    path: str


class HttpAnalyzer:
    def __init__(self) -> None:
        self.requests = 0
        self.responses = 0
        self.by_method: Counter[str] = Counter()
        self.by_host = BoundedCounter()
        self.by_request = BoundedCounter()  # (method, host, path)
        self.by_status: Counter[int] = Counter()
        self.errors = BoundedCounter()  # (status, method, host, path); "" when the request was not seen
        self.responses_without_request = 0
        self._latency_ms: dict[str, array[float]] = {}
        # Requests awaiting their response, per conversation: one request, or a deque when pipelined.
        # Answered conversations leave the table, so it holds only what is in flight.
        self._pending: dict[int, HttpRequest | deque[HttpRequest]] = {}

    def add(self, decoded: Decoded, flows: FlowAssignment, tcp: TcpFindings) -> None:
        carriers = np.flatnonzero(tcp.analysed & (decoded.payload_caplen > 0))
        if not len(carriers):
            return
        starts = decoded.payload_start[carriers]
        ends = starts + decoded.payload_caplen[carriers]
        found = VERSION_TOKEN.finditer(decoded.raw, int(starts[0]), int(ends[-1]))
        hits = np.fromiter((match.start() for match in found), dtype=np.int64)
        if not len(hits):
            return
        owner = np.maximum(np.searchsorted(starts, hits, side="right") - 1, 0)
        inside = (hits >= starts[owner]) & (hits < ends[owner])
        hits, owner = hits[inside], owner[inside]
        buf = decoded.buf
        offset = hits - starts[owner]
        end = ends[owner]
        new_from = tcp.new_data_from[carriers[owner]]
        before = buf[hits - 1]
        is_digit = np.ones(len(hits), dtype=bool)
        for position in (9, 10, 11):
            is_digit &= (buf[hits + position] >= ZERO) & (buf[hits + position] <= NINE)
        status = (
            ((offset == 0) | (before == LF))
            & (hits + STATUS_LINE_BYTES <= end)
            & (buf[hits + 8] == SPACE)
            & is_digit
            & (offset + STATUS_LINE_BYTES > new_from)
        )
        request = (
            (offset > 0)
            & (before == SPACE)
            & (hits + REQUEST_VERSION_BYTES <= end)
            & (buf[hits + 8] == CR)
            & (buf[hits + 9] == LF)
            & (offset + REQUEST_VERSION_BYTES > new_from)
        )
        keep = status | request
        if not keep.any():
            return
        flow_of = np.full(len(decoded), -1, dtype=np.int64)
        flow_of[flows.member] = flows.ids
        packet = carriers[owner[keep]]
        codes = (
            (buf[hits[keep] + 9].astype(np.int64) - ZERO) * 100
            + (buf[hits[keep] + 10] - ZERO) * 10
            + (buf[hits[keep] + 11] - ZERO)
        )
        self._messages(
            decoded.raw,
            hits[keep].tolist(),
            status[keep].tolist(),
            codes.tolist(),
            flow_of[packet].tolist(),
            decoded.ts_ns[packet].tolist(),
            starts[owner[keep]].tolist(),
            end[keep].tolist(),
        )

    def _messages(
        self,
        raw: bytearray,
        hits: list[int],
        is_status: list[bool],
        codes: list[int],
        flows: list[int],
        times: list[int],
        payload_starts: list[int],
        payload_ends: list[int],
    ) -> None:
        """Counts the messages in capture order, pairing each response with the oldest open request."""
        for hit, response, code, flow, ts_ns, payload_start, payload_end in zip(
            hits, is_status, codes, flows, times, payload_starts, payload_ends, strict=True
        ):
            if response:
                self._response(code, flow, ts_ns)
                continue
            request = _parse_request(raw, payload_start, hit, payload_end, ts_ns)
            if request is not None:
                self._request(flow, request)

    def _request(self, flow: int, request: HttpRequest) -> None:
        self.requests += 1
        self.by_method[request.method] += 1
        self.by_host.add(request.host)
        self.by_request.add((request.method, request.host, request.path))
        waiting = self._pending.get(flow)
        if waiting is None:
            self._pending[flow] = request
        elif isinstance(waiting, deque):
            waiting.append(request)
        else:
            self._pending[flow] = deque((waiting, request))

    def _response(self, code: int, flow: int, ts_ns: int) -> None:
        self.responses += 1
        self.by_status[code] += 1
        if 100 <= code < 200 and code != 101:
            return  # an interim response: the final one still answers the same request
        request = self._take_pending(flow)
        if request is None:
            self.responses_without_request += 1
        else:
            status_class = f"{code // 100}xx"
            if status_class not in self._latency_ms:
                self._latency_ms[status_class] = array("d")
            self._latency_ms[status_class].append((ts_ns - request.ts_ns) / 1e6)
        if code >= 400:
            if request is None:
                self.errors.add((code, "", "", ""))
            else:
                self.errors.add((code, request.method, request.host, request.path))

    def _take_pending(self, flow: int) -> HttpRequest | None:
        waiting = self._pending.pop(flow, None)
        if not isinstance(waiting, deque):
            return waiting
        request = waiting.popleft()
        if waiting:
            self._pending[flow] = waiting
        return request

    def unanswered_requests(self) -> int:
        return sum(len(waiting) if isinstance(waiting, deque) else 1 for waiting in self._pending.values())

    def latency_by_class(self) -> dict[str, dict[str, float | int]]:
        return {
            status_class: stats
            for status_class in sorted(self._latency_ms)
            if (stats := distribution(np.frombuffer(self._latency_ms[status_class], dtype=np.float64)))
        }


def _parse_request(
    raw: bytearray, payload_start: int, version_at: int, payload_end: int, ts_ns: int
) -> HttpRequest | None:
    line_start = max(raw.rfind(b"\n", payload_start, version_at) + 1, payload_start)
    method, _, target = bytes(raw[line_start : version_at - 1]).partition(b" ")
    if not METHOD.fullmatch(method) or not target or b" " in target:
        return None
    header_end = raw.find(b"\r\n\r\n", version_at, payload_end)
    host = HOST_HEADER.search(raw, version_at + 8, payload_end if header_end < 0 else header_end + 2)
    return HttpRequest(
        ts_ns=ts_ns,
        method=method.decode("ascii"),
        host=host.group(1).strip().lower().decode("latin-1") if host else "",
        path=_path(target),
    )


def _path(target: bytes) -> str:
    """The path of a request target, without query or fragment, so that one endpoint is one line."""
    if target.startswith((b"http://", b"https://")):
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    path = target.split(b"?", 1)[0].split(b"#", 1)[0].decode("latin-1")
    return path if len(path) <= MAX_PATH_CHARS else path[: MAX_PATH_CHARS - 1] + "…"

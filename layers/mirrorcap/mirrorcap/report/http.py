"""HTTP/1.x requests and responses found in TCP payloads.

One numpy pass over the batch (aligned 2-byte pairs) finds every "HTTP/1." token: the version at the end
of a request line, or the start of a status line. numpy maps each hit to its packet and keeps those at a
plausible place in a TCP payload; status codes, counts, pairing and latencies are computed with numpy.
Python reads one request per group of alike requests (to cut out its method, path and Host header as
raw bytes) and pairs the few responses numpy cannot; text is decoded once per distinct request at the
end.

A message counts only in the segment that first carried it whole: bytes below the highest sequence
number already seen in that direction were looked at before, so a retransmitted segment, whole or
overlapping, never counts a message twice, wherever in the segment the message starts.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from mirrorcap.report.counting import MAX_DISTINCT_KEYS, DistributionStats, distribution
from mirrorcap.report.decode import Decoded
from mirrorcap.report.fields import RawBytes, Scratch, group_by_bytes
from mirrorcap.report.flows import TcpPayloads
from mirrorcap.report.tokens import find_version_tokens, tokens_within

STATUS_LINE_BYTES = len(b"HTTP/1.1 200")
REQUEST_VERSION_BYTES = len(b"HTTP/1.1\r\n")
MAX_METHOD_BYTES = 20
MAX_PATH_CHARS = 200
SPACE, CR, LF, ZERO, NINE = 0x20, 0x0D, 0x0A, 0x30, 0x39
HOST_HEADERS = (b"\r\nHost:", b"\r\nhost:", b"\r\nHOST:")
# Requests are grouped by their first bytes before their keys are read (see `_request_ids`).
REQUEST_WINDOW_BYTES = 128
MIN_GROUPED_REQUESTS = 64
# Requests beyond MAX_DISTINCT_KEYS distinct (method, host, path) are counted under this id.
OTHER_REQUEST = 0


@dataclass(frozen=True)
class RequestKey:
    method: str
    host: str
    path: str


class HttpAnalyzer:
    def __init__(self) -> None:
        self.responses = 0
        self.by_status: Counter[int] = Counter()
        self.errors: Counter[tuple[int, int]] = Counter()  # (status, request id; -1: request not captured)
        self.responses_without_request = 0
        self._key_ids: dict[tuple[bytes, bytes], int] = {}
        self._keys: list[tuple[bytes, bytes]] = [(b"", b"")]  # OTHER_REQUEST
        self._requests_per_key = np.zeros(1024, dtype=np.int64)
        self._latencies: list[tuple[np.ndarray, np.ndarray]] = []  # per batch: (status class, ns) of each answer
        # Requests awaiting their response, per conversation: (ts, request id), or a deque of them when
        # pipelined. Answered conversations leave the table, so it holds only what is in flight.
        self._pending: dict[int, tuple[int, int] | deque[tuple[int, int]]] = {}
        self._scan = Scratch()

    # --- Per batch ------------------------------------------------------------------------------------

    def add(self, decoded: Decoded, tcp: TcpPayloads, version_tokens: np.ndarray | None = None) -> None:
        """The batch's TCP payloads; `version_tokens`, when given, are where "HTTP/1." is in all of the
        batch's records (found while reading ahead), so that the payloads need no scan of their own."""
        if not len(tcp.rows):
            return
        starts = decoded.payload_start[tcp.rows]
        ends = starts + decoded.payload_caplen[tcp.rows]
        first, last = int(starts[0]), int(ends[-1])
        if version_tokens is None:
            hits = find_version_tokens(decoded.raw, first, last, self._scan)
        else:
            hits = tokens_within(version_tokens, first, last)
        if not len(hits):
            return
        owner = np.maximum(np.searchsorted(starts, hits, side="right") - 1, 0)
        inside = (hits >= starts[owner]) & (hits < ends[owner])
        hits, owner = hits[inside], owner[inside]
        status, request = _classify(decoded.buf, hits, hits - starts[owner], ends[owner], tcp.new_data_from[owner])
        keep = status | request
        if not keep.any():
            return
        hits, owner, status = hits[keep], owner[keep], status[keep]
        buf = decoded.buf
        codes = (buf[hits + 9].astype(np.int64) - ZERO) * 100 + (buf[hits + 10] - ZERO) * 10 + (buf[hits + 11] - ZERO)
        values = np.where(status, codes, 0)
        request_rows = np.flatnonzero(~status)
        values[request_rows] = self._request_ids(
            decoded.raw, starts[owner[request_rows]], hits[request_rows], ends[owner[request_rows]]
        )
        self._count(status, values, tcp.flows[owner], decoded.ts_ns[tcp.rows[owner]])

    def _request_ids(self, raw: RawBytes, line_starts: np.ndarray, hits: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """An id per request for its raw (request line up to any query, Host value). Whether the line
        really is a request is judged once per distinct key, at the end.

        Requests are grouped first by the bytes they start with (REQUEST_WINDOW_BYTES from the line's
        start, cut at the segment's end), the token's place and the segment's length: requests alike in
        all of those that have their key inside that window have the same key, so Python reads one per
        group; if a request's key reaches past the window, every request is read on its own."""
        if len(hits) >= MIN_GROUPED_REQUESTS:
            width = REQUEST_WINDOW_BYTES
            first, group = group_by_bytes(raw, line_starts, ends - line_starts, width, [hits - line_starts])
            # Groups come in the order of their first request: new keys get their ids in that order.
            starts = line_starts[first].tolist()
            keys = [
                _request_key(raw, *row) for row in zip(starts, hits[first].tolist(), ends[first].tolist(), strict=True)
            ]
            if all(extent - start <= width for (_key, extent), start in zip(keys, starts, strict=True)):
                return np.array([self._id_for(key) for key, _extent in keys], dtype=np.int64)[group]
        return np.array(
            [
                self._id_for(_request_key(raw, *row)[0])
                for row in zip(line_starts.tolist(), hits.tolist(), ends.tolist(), strict=True)
            ],
            dtype=np.int64,
        )

    def _id_for(self, key: tuple[bytes, bytes]) -> int:
        key_id = self._key_ids.get(key)
        return self._new_key(key) if key_id is None else key_id

    def _new_key(self, key: tuple[bytes, bytes]) -> int:
        if len(self._keys) > MAX_DISTINCT_KEYS:
            return OTHER_REQUEST
        key_id = self._key_ids[key] = len(self._keys)
        self._keys.append(key)
        return key_id

    def _count(self, is_status: np.ndarray, values: np.ndarray, flows: np.ndarray, ts_ns: np.ndarray) -> None:
        per_key = np.bincount(values[~is_status])
        if len(self._requests_per_key) < len(per_key):
            grown = np.zeros(2 * len(per_key), dtype=np.int64)
            grown[: len(self._requests_per_key)] = self._requests_per_key
            self._requests_per_key = grown
        self._requests_per_key[: len(per_key)] += per_key

        codes = values[is_status]
        self.responses += len(codes)
        by_code = np.bincount(codes)
        for code in np.flatnonzero(by_code).tolist():
            self.by_status[code] += int(by_code[code])
        interim = is_status & (values >= 100) & (values < 200) & (values != 101)
        if interim.any():  # they answer no request: pairing leaves them out
            final = ~interim
            is_status, values, flows, ts_ns = is_status[final], values[final], flows[final], ts_ns[final]
        matched_ts, matched_id = self._pair(is_status, flows, ts_ns, values)
        final_codes = values[is_status]
        answered = matched_id >= 0
        self.responses_without_request += len(answered) - int(np.count_nonzero(answered))
        latency_ns = ts_ns[is_status][answered] - matched_ts[answered]
        self._latencies.append(((final_codes[answered] // 100).astype(np.int8), latency_ns))
        failed = final_codes >= 400
        if failed.any():
            # (status, request id) packed in one integer: status codes are three digits, ids >= -1.
            pairs, counts = np.unique(final_codes[failed] * (1 << 40) + (matched_id[failed] + 1), return_counts=True)
            for pair, count in zip(pairs.tolist(), counts.tolist(), strict=True):
                self.errors[(pair >> 40, (pair & ((1 << 40) - 1)) - 1)] += count

    def _pair(
        self, is_status: np.ndarray, flows: np.ndarray, times: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each response in order, the (ts, request id) of the oldest open request of its
        conversation, or (0, -1) when there is none.

        Conversations are independent, so the usual ones (nothing open from earlier batches, then
        request, response, request, ... in turn: each response answers the message just before it)
        are paired by numpy; the others go through the queue, message by message."""
        n = len(flows)
        matched_ts = np.zeros(n, dtype=np.int64)
        matched_id = np.full(n, -1, dtype=np.int64)
        order = np.argsort(flows, kind="stable")
        ordered_flows, ordered_status = flows[order], is_status[order]
        boundary = np.ones(n, dtype=bool)
        np.not_equal(ordered_flows[1:], ordered_flows[:-1], out=boundary[1:])
        group = np.cumsum(boundary) - 1
        unusual = np.zeros(int(group[-1]) + 1 if n else 0, dtype=bool)
        repeated = np.ones(n, dtype=bool)  # two requests or two responses in a row, or a response first
        np.equal(ordered_status[1:], ordered_status[:-1], out=repeated[1:])
        repeated[boundary] = ordered_status[boundary]
        unusual[group[repeated]] = True
        group_flows = ordered_flows[boundary]
        if self._pending:
            unusual |= np.isin(group_flows, np.fromiter(self._pending, dtype=np.int64, count=len(self._pending)))
        usual = ~unusual[group]
        answers = np.flatnonzero(usual & ordered_status)
        matched_ts[order[answers]] = times[order[answers - 1]]
        matched_id[order[answers]] = values[order[answers - 1]]
        last = np.r_[np.flatnonzero(boundary)[1:] - 1, n - 1] if n else np.empty(0, dtype=np.int64)
        left_open = last[usual[last] & ~ordered_status[last]]  # a request still waiting at the end
        for flow, ts_ns, value in zip(
            ordered_flows[left_open].tolist(),
            times[order[left_open]].tolist(),
            values[order[left_open]].tolist(),
            strict=True,
        ):
            self._pending[flow] = (ts_ns, value)
        queued = np.sort(order[~usual])
        if len(queued):
            queued_ts, queued_id = self.pair_in_order(
                is_status[queued].tolist(), flows[queued].tolist(), times[queued].tolist(), values[queued].tolist()
            )
            responses = queued[is_status[queued]]
            matched_ts[responses] = queued_ts
            matched_id[responses] = queued_id
        return matched_ts[is_status], matched_id[is_status]

    def pair_in_order(
        self, is_status: list[bool], flows: list[int], times: list[int], values: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """`_pair` one message at a time, through each conversation's queue of open requests."""
        pending = self._pending
        matched_ts: list[int] = []
        matched_id: list[int] = []
        for response, flow, ts_ns, value in zip(is_status, flows, times, values, strict=True):
            waiting = pending.get(flow)
            if not response:
                if waiting is None:
                    pending[flow] = (ts_ns, value)
                elif isinstance(waiting, tuple):
                    pending[flow] = deque((waiting, (ts_ns, value)))
                else:
                    waiting.append((ts_ns, value))
                continue
            if waiting is None:
                matched_ts.append(0)
                matched_id.append(-1)
                continue
            if isinstance(waiting, tuple):
                del pending[flow]
                request = waiting
            else:
                request = waiting.popleft()
                if not waiting:
                    del pending[flow]
            matched_ts.append(request[0])
            matched_id.append(request[1])
        return np.array(matched_ts, dtype=np.int64), np.array(matched_id, dtype=np.int64)

    # --- Results --------------------------------------------------------------------------------------

    def request_counts(self) -> list[tuple[RequestKey, int]]:
        """Requests per distinct (method, host, path); lines that turn out not to be requests are left
        out, and so are requests counted under OTHER_REQUEST."""
        counts = self._requests_per_key[: len(self._keys)].tolist()
        return [
            (key, count)
            for number, count in enumerate(counts)
            if count and number != OTHER_REQUEST and (key := self.key(number)) is not None
        ]

    def key(self, request_id: int) -> RequestKey | None:
        line, host = self._keys[request_id]
        method, _, target = line.partition(b" ")
        if not (0 < len(method) <= MAX_METHOD_BYTES and method.isupper() and method.isalpha()) or not target:
            return None
        if b" " in target:
            return None
        return RequestKey(method.decode("ascii"), host.decode("latin-1").strip().lower(), _path(target))

    def other_requests(self) -> int:
        return int(self._requests_per_key[OTHER_REQUEST])

    def unanswered_requests(self) -> int:
        return sum(len(waiting) if isinstance(waiting, deque) else 1 for waiting in self._pending.values())

    def latency_by_class(self) -> dict[str, DistributionStats]:
        if not self._latencies:
            return {}
        classes = np.concatenate([classes for classes, _latency in self._latencies])
        latency_ms = np.concatenate([latency for _classes, latency in self._latencies]) / 1e6
        return {
            f"{status_class}xx": stats
            for status_class in np.flatnonzero(np.bincount(classes)).tolist()
            if (stats := distribution(latency_ms[classes == status_class]))
        }


# Where "HTTP/1." starts in a range of the buffer. At an even position the token holds "TP" in the
# 2-byte-aligned pair two bytes in, at an odd one "P/" three bytes in: numpy compares every aligned pair
# with those two, and only the few pairs that match are checked byte by byte.
def _classify(
    buf: np.ndarray, hits: np.ndarray, offset: np.ndarray, end: np.ndarray, new_from: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(is a status line, is a request line's version) for each "HTTP/1." hit."""
    before = buf[hits - 1]
    is_digit = np.ones(len(hits), dtype=bool)
    for position in (9, 10, 11):
        digit = buf[hits + position]
        is_digit &= (digit >= ZERO) & (digit <= NINE)
    # A status line can start anywhere in a segment (after the previous response's body, which need
    # not end in a line break), so its own shape is the test: "HTTP/1.x DDD" then a space or CR.
    after = buf[hits + STATUS_LINE_BYTES]
    status = (
        (hits + STATUS_LINE_BYTES < end)
        & (buf[hits + 8] == SPACE)
        & is_digit
        & ((after == SPACE) | (after == CR))
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
    return status, request


def _request_key(raw: RawBytes, line_start: int, hit: int, end: int) -> tuple[tuple[bytes, bytes], int]:
    """((request line up to any query, raw Host value), the position after the last byte the key depends
    on) of the request whose version token is at `hit`."""
    line = raw[line_start : hit - 1]
    if LF in line:
        line = line.rpartition(b"\n")[2]
    host_at = raw.find(HOST_HEADERS[0], hit, end)  # the usual spelling first
    if host_at < 0:
        host, extent = _host(raw, hit, end), end
    else:
        value_end = raw.find(b"\r", host_at + len(HOST_HEADERS[0]), end)
        host = bytes(raw[host_at + len(HOST_HEADERS[0]) : end if value_end < 0 else value_end])
        extent = end if value_end < 0 else value_end + 1
    return (bytes(line.partition(b"?")[0]), host), max(extent, hit - 1)


def _host(raw: RawBytes, line_end: int, end: int) -> bytes:
    """The Host header's raw value, if it is in the same segment as the request line."""
    for header in HOST_HEADERS:
        found = raw.find(header, line_end, end)
        if found >= 0:
            value_start = found + len(header)
            value_end = raw.find(b"\r", value_start, end)
            return bytes(raw[value_start : end if value_end < 0 else value_end])
    return b""


def _path(target: bytes) -> str:
    """The path of a request target, without query or fragment, so that one endpoint is one line."""
    if target.startswith((b"http://", b"https://")):
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    path = target.split(b"#", 1)[0].decode("latin-1")
    return path if len(path) <= MAX_PATH_CHARS else path[: MAX_PATH_CHARS - 1] + "…"

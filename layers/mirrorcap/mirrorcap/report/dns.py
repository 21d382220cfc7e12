"""DNS over UDP port 53: queries by name and type, responses by response code.

The fixed 12-byte header is decoded for every DNS packet with numpy; only the question name (a
variable-length label sequence) is read in Python, for queries and for failed responses.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from mirrorcap.report.counting import BoundedCounter
from mirrorcap.report.decode import Decoded, Kind
from mirrorcap.report.fields import RawBytes, gather_uint, group_by_bytes

DNS_PORT = 53
DNS_HEADER_BYTES = 12
MAX_NAME_BYTES = 255
# Queries are grouped by this many bytes after the header before their questions are read.
QUESTION_WINDOW_BYTES = 64
MIN_GROUPED_QUESTIONS = 64

RCODE_NAMES = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
}
QTYPE_NAMES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    43: "DS",
    48: "DNSKEY",
    64: "SVCB",
    65: "HTTPS",
    255: "ANY",
    257: "CAA",
}


def rcode_name(rcode: int) -> str:
    return RCODE_NAMES.get(rcode, f"RCODE{rcode}")


def qtype_name(qtype: int) -> str:
    return QTYPE_NAMES.get(qtype, f"TYPE{qtype}")


class DnsAnalyzer:
    """Counts per question: the question's wire bytes (name and type) are the key while counting, and
    are parsed once per distinct question at the end."""

    def __init__(self) -> None:
        self.queries = 0
        self.responses = 0
        self.by_rcode: Counter[str] = Counter()
        self._questions: BoundedCounter[bytes] = BoundedCounter()  # wire question -> queries
        self._failures: BoundedCounter[tuple[bytes, int]] = BoundedCounter()  # (wire question, rcode) -> responses

    def add(self, decoded: Decoded) -> None:
        port = np.flatnonzero((decoded.sport == DNS_PORT) | (decoded.dport == DNS_PORT))  # few: tested first
        dns = port[
            (decoded.kind[port] == Kind.UDP)
            & decoded.has_ports[port]
            & ~decoded.fragment[port]
            & (decoded.payload_caplen[port] >= DNS_HEADER_BYTES)
        ]
        if not len(dns):
            return
        start = decoded.payload_start[dns]
        end = start + decoded.payload_caplen[dns]
        flags = gather_uint(decoded.buf, start + 2, 2)
        is_response = (flags >> 15) == 1
        rcode = flags & 0x0F
        has_question = gather_uint(decoded.buf, start + 4, 2) > 0

        self.queries += int(np.count_nonzero(~is_response))
        self.responses += int(np.count_nonzero(is_response))
        for code, count in enumerate(np.bincount(rcode[is_response], minlength=16).tolist()):
            if count:
                self.by_rcode[rcode_name(code)] += count

        query = ~is_response & has_question
        self._questions.update(_question_counts(decoded.raw, start[query], end[query]))
        failed = is_response & has_question & (rcode != 0)
        self._failures.update(_failure_counts(decoded.raw, start[failed], end[failed], rcode[failed]))

    def queries_by_name(self) -> tuple[Counter[tuple[str, str]], int]:
        """((name, type) -> queries, queries whose question could not be decoded or that were first
        seen after the table of distinct questions was full)."""
        named: Counter[tuple[str, str]] = Counter()
        undecodable = self._questions.overflow
        for wire, count in self._questions.items():
            question = _parse_question(wire)
            if question is None:
                undecodable += count
            else:
                named[(question[0], qtype_name(question[1]))] += count
        return named, undecodable

    def failures_by_name(self) -> Counter[tuple[str, str]]:
        named: Counter[tuple[str, str]] = Counter()
        for (wire, code), count in self._failures.items():
            question = _parse_question(wire)
            named[(question[0] if question else "(undecodable)", rcode_name(code))] += count
        return named


def _question_counts(raw: RawBytes, starts: np.ndarray, ends: np.ndarray) -> list[tuple[bytes, int]]:
    """(question, messages) pairs, questions in the order they first come (one may come more than once).
    A message's question is the wire bytes of its first question (the name up to its root label, and the
    type)."""
    questions, _rows, counts = _counted_questions(raw, starts, ends, None)
    return list(zip(questions, counts, strict=True))


def _failure_counts(
    raw: RawBytes, starts: np.ndarray, ends: np.ndarray, rcodes: np.ndarray
) -> list[tuple[tuple[bytes, int], int]]:
    """As _question_counts, each question paired with the response code of its messages."""
    questions, rows, counts = _counted_questions(raw, starts, ends, rcodes)
    return list(zip(zip(questions, rcodes[rows].tolist(), strict=True), counts, strict=True))


def _counted_questions(
    raw: RawBytes, starts: np.ndarray, ends: np.ndarray, rcodes: np.ndarray | None
) -> tuple[list[bytes], np.ndarray, list[int]]:
    """(question, a message that has it, messages) per run of alike messages (their response codes
    alike too when given)."""
    grouped = _grouped_questions(raw, starts, ends, rcodes) if len(starts) >= MIN_GROUPED_QUESTIONS else None
    if grouped is None:
        questions = [_question(raw, start, end) for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]
        rows, counts = np.arange(len(starts)), [1] * len(starts)
    else:
        questions, rows, counts = grouped
    return questions, rows, counts


def _grouped_questions(
    raw: RawBytes, starts: np.ndarray, ends: np.ndarray, rcodes: np.ndarray | None
) -> tuple[list[bytes], np.ndarray, list[int]] | None:
    """(question, first message, messages) per group of messages alike in their first
    QUESTION_WINDOW_BYTES after the header (cut at the message's end) and their response code; None
    when a question does not lie inside that window, as the members could then differ."""
    first, group = group_by_bytes(
        raw,
        starts + DNS_HEADER_BYTES,
        ends - starts - DNS_HEADER_BYTES,
        QUESTION_WINDOW_BYTES,
        [] if rcodes is None else [rcodes],
    )
    questions = []
    for start, end in zip(starts[first].tolist(), ends[first].tolist(), strict=True):
        question = _question(raw, start, end)
        if len(question) > QUESTION_WINDOW_BYTES or start + DNS_HEADER_BYTES + len(question) > end:
            return None
        questions.append(question)
    return questions, first, np.bincount(group).tolist()


def _question(raw: RawBytes, start: int, end: int) -> bytes:
    root = raw.find(b"\0", start + DNS_HEADER_BYTES, end)
    return bytes(raw[start + DNS_HEADER_BYTES : root + 3 if root >= 0 else end])


def _parse_question(wire: bytes) -> tuple[str, int] | None:
    """(name, qtype), or None when the name is malformed or was not all captured."""
    labels: list[str] = []
    position = 0
    while position < len(wire):
        length = wire[position]
        if length == 0:
            if position + 3 > len(wire):
                return None
            return ".".join(labels) or ".", (wire[position + 1] << 8) | wire[position + 2]
        if length & 0xC0 or position + 1 + length > len(wire) or position + length >= MAX_NAME_BYTES:
            return None  # compression pointers never start a question's name
        labels.append(wire[position + 1 : position + 1 + length].decode("ascii", "backslashreplace").lower())
        position += 1 + length
    return None

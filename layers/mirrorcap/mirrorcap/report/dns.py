"""DNS over UDP port 53: queries by name and type, responses by response code.

The fixed 12-byte header is decoded for every DNS packet with numpy; only the question name (a
variable-length label sequence) is read in Python, for queries and for failed responses.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from mirrorcap.report.counting import BoundedCounter
from mirrorcap.report.decode import Decoded, Kind
from mirrorcap.report.fields import gather_uint

DNS_PORT = 53
DNS_HEADER_BYTES = 12
MAX_NAME_BYTES = 255

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
    def __init__(self) -> None:
        self.queries = 0
        self.responses = 0
        self.by_qtype: Counter[str] = Counter()
        self.by_rcode: Counter[str] = Counter()
        self.names = BoundedCounter()  # (name, qtype)
        self.failures = BoundedCounter()  # (name, rcode) of responses other than NOERROR
        self.undecodable_names = 0

    def add(self, decoded: Decoded) -> None:
        dns = np.flatnonzero(
            (decoded.kind == Kind.UDP)
            & decoded.has_ports
            & ~decoded.fragment
            & ((decoded.sport == DNS_PORT) | (decoded.dport == DNS_PORT))
            & (decoded.payload_caplen >= DNS_HEADER_BYTES)
        )
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
        for name_start, name_end in zip(start[query].tolist(), end[query].tolist(), strict=True):
            question = _question(decoded.raw, name_start + DNS_HEADER_BYTES, name_end)
            if question is None:
                self.undecodable_names += 1
                continue
            self.by_qtype[qtype_name(question[1])] += 1
            self.names.add((question[0], qtype_name(question[1])))

        failed = is_response & has_question & (rcode != 0)
        for name_start, name_end, code in zip(
            start[failed].tolist(), end[failed].tolist(), rcode[failed].tolist(), strict=True
        ):
            question = _question(decoded.raw, name_start + DNS_HEADER_BYTES, name_end)
            if question is None:
                self.undecodable_names += 1
                continue
            self.failures.add((question[0], rcode_name(code)))


def _question(raw: bytearray, position: int, end: int) -> tuple[str, int] | None:
    """(name, qtype) of the first question, or None when it is malformed or not all captured."""
    labels: list[str] = []
    total = 0
    while position < end:
        length = raw[position]
        if length == 0:
            if position + 3 > end:
                return None
            qtype = (raw[position + 1] << 8) | raw[position + 2]
            return (".".join(labels) or ".", qtype)
        if length & 0xC0 or position + 1 + length > end:
            return None  # compression pointers never start a question's name
        total += length + 1
        if total > MAX_NAME_BYTES:
            return None
        labels.append(raw[position + 1 : position + 1 + length].decode("ascii", "backslashreplace").lower())
        position += 1 + length
    return None

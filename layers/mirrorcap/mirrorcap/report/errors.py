"""The report's one domain exception."""

from __future__ import annotations


class UnreadableCapture(Exception):
    """A capture file cannot be read at all: missing, empty, or not a pcap/pcapng file.

    Damage inside a readable file (a record cut short, a packet with bad headers) never raises: it is
    counted in the summary's `malformed` bucket instead.
    """

    def __init__(self, file_name: str, reason: str) -> None:
        super().__init__(f"{file_name}: {reason}")
        self.file_name = file_name
        self.reason = reason

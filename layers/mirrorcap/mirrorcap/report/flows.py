"""Conversations and TCP health, accumulated batch by batch.

A conversation is (VNI, IP protocol, both endpoints), endpoints in a canonical order so that the two
directions meet. `KeyIndex` gives every conversation a dense id, so each per-conversation counter and all
TCP state is a plain numpy array indexed by id (or by id * 2 + direction): memory grows with the number
of conversations, never with the number of packets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirrorcap.report.decode import Decoded, Kind, Malformed

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10
KEY_COLUMNS = 6  # address a (hi, lo), address b (hi, lo), ports+VNI, protocol
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
# Segmented running maxima are computed in one pass by lifting each group above the previous one;
# positions inside one batch stay far below 2**40 from their group's base.
_GROUP_LIFT = 1 << 42
_LOCAL_LIMIT = 1 << 40


def _hash_rows(keys: np.ndarray) -> np.ndarray:
    hashed = np.full(len(keys), 0x243F6A8885A308D3, dtype=np.uint64)
    for column in range(keys.shape[1]):
        hashed = (hashed ^ keys[:, column]) * _HASH_MULTIPLIER
        hashed ^= hashed >> np.uint64(29)
    return hashed


class KeyIndex:
    """Dense, exact ids for fixed-width keys (rows of uint64), growing across batches.

    Rows are found by a 64-bit hash, and every answer is checked against the stored key; a row whose
    hash already belongs to a different key (which practically never happens) gets its id from a small
    exact side table instead, so ids are always exact.
    """

    def __init__(self, width: int) -> None:
        self._sorted_hashes = np.empty(0, dtype=np.uint64)
        self._ids_by_hash = np.empty(0, dtype=np.int64)
        self._keys = np.empty((1024, width), dtype=np.uint64)
        self._collided: dict[bytes, int] = {}
        self.count = 0

    @property
    def keys(self) -> np.ndarray:
        return self._keys[: self.count]

    def ids(self, keys: np.ndarray) -> np.ndarray:
        hashes = _hash_rows(keys)
        unique, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        slot = np.searchsorted(self._sorted_hashes, unique)
        known = slot < len(self._sorted_hashes)
        known[known] = self._sorted_hashes[slot[known]] == unique[known]
        unique_ids = np.empty(len(unique), dtype=np.int64)
        unique_ids[known] = self._ids_by_hash[slot[known]]
        fresh = ~known
        unique_ids[fresh] = self._append(keys[first[fresh]])
        self._sorted_hashes = np.insert(self._sorted_hashes, slot[fresh], unique[fresh])
        self._ids_by_hash = np.insert(self._ids_by_hash, slot[fresh], unique_ids[fresh])
        ids = unique_ids[inverse]
        wrong = np.flatnonzero((self._keys[ids] != keys).any(axis=1))
        for row in wrong:
            ids[row] = self._collided_id(keys[row])
        return ids

    def _append(self, new_keys: np.ndarray) -> np.ndarray:
        needed = self.count + len(new_keys)
        if needed > len(self._keys):
            grown = np.empty((max(needed, 2 * len(self._keys)), self._keys.shape[1]), dtype=np.uint64)
            grown[: self.count] = self._keys[: self.count]
            self._keys = grown
        self._keys[self.count : needed] = new_keys
        ids = np.arange(self.count, needed, dtype=np.int64)
        self.count = needed
        return ids

    def _collided_id(self, key: np.ndarray) -> int:
        raw = key.tobytes()
        if raw not in self._collided:
            self._collided[raw] = int(self._append(key[None, :])[0])
        return self._collided[raw]


class _Columns:
    """Named numpy arrays that grow together, one row per id."""

    def __init__(self, **fill_values: tuple[type, object]) -> None:
        self._fill = fill_values
        self._size = 0
        for name, (dtype, fill) in fill_values.items():
            setattr(self, name, np.full(0, fill, dtype=dtype))

    def ensure(self, size: int) -> None:
        if size <= self._size:
            return
        new_size = max(size, 2 * self._size, 1024)
        for name, (dtype, fill) in self._fill.items():
            grown = np.full(new_size, fill, dtype=dtype)
            old = getattr(self, name)
            grown[: len(old)] = old
            setattr(self, name, grown)
        self._size = new_size


@dataclass
class FlowAssignment:
    """Which conversation each packet of a batch belongs to."""

    member: np.ndarray  # bool per packet: it has addresses and belongs to a conversation
    ids: np.ndarray  # per member packet
    direction: np.ndarray  # per member packet: 0 when sent by endpoint a, 1 when sent by b


@dataclass
class TcpFindings:
    """Per-packet results of the TCP analysis of one batch (arrays over all packets of the batch)."""

    analysed: np.ndarray  # bool: a whole TCP segment that the sequence analysis looked at
    retransmission: np.ndarray  # bool
    new_data_from: np.ndarray  # payload offset where bytes never seen before in this direction begin


class FlowTable:
    def __init__(self) -> None:
        self.index = KeyIndex(KEY_COLUMNS)
        self.counters = _Columns(
            packets_ab=(np.int64, 0), bytes_ab=(np.int64, 0), packets_ba=(np.int64, 0), bytes_ba=(np.int64, 0)
        )
        self.handshake = _Columns(
            syn_index=(np.int64, -1),
            syn_ts=(np.int64, 0),
            client_direction=(np.int8, -1),
            synack_index=(np.int64, -1),
            rtt_done=(np.bool_, False),
            reset=(np.bool_, False),
        )
        # Per direction (id * 2 + direction): where its sequence space stands.
        self.sequence = _Columns(
            seen=(np.bool_, False), last_seq=(np.int64, 0), last_position=(np.int64, 0), max_end=(np.int64, 0)
        )
        self.tcp_segments = 0
        self.tcp_counts = {"syn": 0, "syn_ack": 0, "rst": 0, "fin": 0, "retransmissions": 0}
        self._rtt_ns: list[np.ndarray] = []

    def assign(self, decoded: Decoded) -> FlowAssignment:
        member = (decoded.ip_version > 0) & (decoded.malformed == Malformed.NONE)
        src_hi, src_lo = decoded.src_hi[member], decoded.src_lo[member]
        dst_hi, dst_lo = decoded.dst_hi[member], decoded.dst_lo[member]
        sport, dport = decoded.sport[member], decoded.dport[member]
        src_first = (src_hi < dst_hi) | (
            (src_hi == dst_hi) & ((src_lo < dst_lo) | ((src_lo == dst_lo) & (sport <= dport)))
        )
        port_a = np.where(src_first, sport, dport).astype(np.uint64)
        port_b = np.where(src_first, dport, sport).astype(np.uint64)
        vni = decoded.vni[member].astype(np.uint64) & np.uint64(0xFFFFFFFF)
        keys = np.column_stack(
            [
                np.where(src_first, src_hi, dst_hi),
                np.where(src_first, src_lo, dst_lo),
                np.where(src_first, dst_hi, src_hi),
                np.where(src_first, dst_lo, src_lo),
                (port_a << np.uint64(48)) | (port_b << np.uint64(32)) | vni,
                decoded.proto[member].astype(np.uint64),
            ]
        )
        ids = self.index.ids(keys) if len(keys) else np.empty(0, dtype=np.int64)
        direction = (~src_first).astype(np.int64)
        self._count(ids, direction, decoded.frame_len[member])
        return FlowAssignment(member=member, ids=ids, direction=direction)

    def _count(self, ids: np.ndarray, direction: np.ndarray, frame_len: np.ndarray) -> None:
        size = self.index.count
        self.counters.ensure(size)
        slots = ids * 2 + direction
        packets = np.bincount(slots, minlength=2 * size)
        byte_sums = np.bincount(slots, weights=frame_len, minlength=2 * size).astype(np.int64)
        columns = self.counters
        columns.packets_ab[:size] += packets[0::2]
        columns.packets_ba[:size] += packets[1::2]
        columns.bytes_ab[:size] += byte_sums[0::2]
        columns.bytes_ba[:size] += byte_sums[1::2]

    def analyse_tcp(self, decoded: Decoded, flows: FlowAssignment, first_index: int) -> TcpFindings:
        """Flag counts, retransmissions and handshake RTTs; `first_index` numbers the batch's first
        packet within the whole capture, so events are ordered across batches."""
        n = len(decoded)
        whole_segment = (decoded.kind == Kind.TCP) & decoded.has_ports & ~decoded.fragment
        tcp = whole_segment[flows.member]
        rows = np.flatnonzero(flows.member)[tcp]
        ids, direction = flows.ids[tcp], flows.direction[tcp]
        flags = decoded.tcp_flags[rows]
        self.tcp_segments += len(rows)
        syn, ack = (flags & TCP_SYN) != 0, (flags & TCP_ACK) != 0
        rst, fin = (flags & TCP_RST) != 0, (flags & TCP_FIN) != 0
        counts = self.tcp_counts
        counts["syn"] += int(np.count_nonzero(syn & ~ack))
        counts["syn_ack"] += int(np.count_nonzero(syn & ack))
        counts["rst"] += int(np.count_nonzero(rst))
        counts["fin"] += int(np.count_nonzero(fin))
        self.handshake.ensure(self.index.count)
        self.sequence.ensure(2 * self.index.count)
        self.handshake.reset[ids[rst]] = True

        order_index = first_index + rows
        self._handshakes(ids, direction, syn, ack, rst, order_index, decoded.ts_ns[rows])

        payload_len = decoded.payload_len[rows]
        seg_len = payload_len + syn + fin
        consumes = seg_len > 0
        retransmission = np.zeros(n, dtype=bool)
        new_data_from = np.zeros(n, dtype=np.int64)
        if consumes.any():
            seq_rows = rows[consumes]
            flagged, new_from = self._sequence(
                ids[consumes] * 2 + direction[consumes],
                decoded.seq[seq_rows],
                seg_len[consumes],
                payload_len[consumes],
                syn[consumes],
                fin[consumes],
            )
            retransmission[seq_rows] = flagged
            new_data_from[seq_rows] = new_from
            counts["retransmissions"] += int(np.count_nonzero(flagged))
        analysed = np.zeros(n, dtype=bool)
        analysed[rows] = True
        return TcpFindings(analysed=analysed, retransmission=retransmission, new_data_from=new_data_from)

    def _handshakes(
        self,
        ids: np.ndarray,
        direction: np.ndarray,
        syn: np.ndarray,
        ack: np.ndarray,
        rst: np.ndarray,
        order_index: np.ndarray,
        ts_ns: np.ndarray,
    ) -> None:
        """Handshake RTT as Wireshark's initial RTT: first SYN to the client's ACK of the SYN-ACK."""
        state = self.handshake
        flows, first = _first_per_flow(ids, syn & ~ack)
        fresh = state.syn_index[flows] < 0
        flows, first = flows[fresh], first[fresh]
        state.syn_index[flows] = order_index[first]
        state.syn_ts[flows] = ts_ns[first]
        state.client_direction[flows] = direction[first]

        from_server = direction != state.client_direction[ids]
        flows, first = _first_per_flow(ids, syn & ack & (state.syn_index[ids] >= 0) & from_server)
        fresh = state.synack_index[flows] < 0
        state.synack_index[flows[fresh]] = order_index[first[fresh]]

        completes = (
            ack
            & ~syn
            & ~rst
            & ~from_server
            & (state.synack_index[ids] >= 0)
            & (order_index > state.synack_index[ids])
            & ~state.rtt_done[ids]
        )
        flows, first = _first_per_flow(ids, completes)
        state.rtt_done[flows] = True
        self._rtt_ns.append(ts_ns[first] - state.syn_ts[flows])

    def _sequence(
        self,
        direction_ids: np.ndarray,
        seq: np.ndarray,
        seg_len: np.ndarray,
        payload_len: np.ndarray,
        syn: np.ndarray,
        fin: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Retransmissions as Wireshark defines them (a segment that starts below the highest sequence
        number already seen in its direction, keep-alives excepted), and for each segment the payload
        offset where new bytes begin. Sequence numbers are unwrapped per direction, so 32-bit wrap
        is harmless."""
        order = np.argsort(direction_ids, kind="stable")
        groups = direction_ids[order]
        raw = seq[order]
        length = seg_len[order]
        boundary = np.empty(len(groups), dtype=bool)
        boundary[0] = True
        boundary[1:] = groups[1:] != groups[:-1]
        starts = np.flatnonzero(boundary)
        ends = np.r_[starts[1:] - 1, len(groups) - 1]
        group_of = np.cumsum(boundary) - 1
        keys = groups[starts]

        state = self.sequence
        seen = state.seen[keys]
        previous = np.empty(len(raw), dtype=np.int64)
        previous[1:] = raw[:-1]
        previous[starts] = np.where(seen, state.last_seq[keys], raw[starts])
        step = ((raw - previous + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        base = np.where(seen, state.last_position[keys], 0)
        running = np.cumsum(step)
        local_position = running - (running[starts] - step[starts])[group_of]
        local_end = np.clip(local_position + length, -_LOCAL_LIMIT, _LOCAL_LIMIT)

        lift = group_of * _GROUP_LIFT
        running_max = np.maximum.accumulate(local_end + lift) - lift
        before = np.empty(len(raw), dtype=np.int64)
        before[1:] = running_max[:-1]
        before[starts] = -_LOCAL_LIMIT
        saved_max = np.where(seen, np.clip(state.max_end[keys] - base, -_LOCAL_LIMIT, _LOCAL_LIMIT), -_LOCAL_LIMIT)
        highest_before = np.maximum(before, saved_max[group_of])

        payload = payload_len[order]
        is_syn, is_fin = syn[order], fin[order]
        keepalive = (payload <= 1) & (local_position == highest_before - 1) & ~is_syn & ~is_fin
        flagged_sorted = (local_position < highest_before) & ~keepalive
        new_from_sorted = np.clip(highest_before - local_position - is_syn, 0, payload)

        state.seen[keys] = True
        state.last_seq[keys] = raw[ends]
        state.last_position[keys] = base + local_position[ends]
        state.max_end[keys] = base + np.maximum(saved_max, running_max[ends])

        flagged = np.empty(len(raw), dtype=bool)
        flagged[order] = flagged_sorted
        new_from = np.empty(len(raw), dtype=np.int64)
        new_from[order] = new_from_sorted
        return flagged, new_from

    def handshake_rtt_ms(self) -> np.ndarray:
        if not self._rtt_ns:
            return np.empty(0)
        return np.concatenate(self._rtt_ns) / 1e6

    def connection_counts(self) -> dict[str, int]:
        size = self.index.count
        state = self.handshake
        state.ensure(size)
        opened = state.syn_index[:size] >= 0
        return {
            "connections_attempted": int(np.count_nonzero(opened)),
            "connections_unanswered": int(np.count_nonzero(opened & (state.synack_index[:size] < 0))),
            "connections_reset": int(np.count_nonzero(state.reset[:size])),
        }


def _first_per_flow(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flow ids, row of each flow's first masked packet), rows counted in `ids`."""
    rows = np.flatnonzero(mask)
    flows, first = np.unique(ids[rows], return_index=True)
    return flows, rows[first]

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
# The recent level of a KeyIndex's hash table holds at least this many hashes before it is merged.
RECENT_HASHES = 1 << 15
KEY_COLUMNS = 6  # address a (hi, lo), address b (hi, lo), ports+VNI, protocol
_HASH_MULTIPLIERS = [
    np.uint64(value)
    for value in (
        0x9E3779B97F4A7C15,
        0xBF58476D1CE4E5B9,
        0x94D049BB133111EB,
        0xD6E8FEB86659FD93,
        0xA0761D6478BD642F,
        0xE7037ED1A0B428DB,
    )
]
# Segmented running maxima are computed in one pass by lifting each group above the previous one;
# positions inside one batch stay far below 2**40 from their group's base.
_GROUP_LIFT = 1 << 42
_LOCAL_LIMIT = 1 << 40


def _hash_rows(keys: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row. Its quality only affects speed: every id is checked against the key."""
    hashed = keys[:, 0] * _HASH_MULTIPLIERS[0]
    for column in range(1, keys.shape[1]):
        hashed ^= keys[:, column] * _HASH_MULTIPLIERS[column]
    hashed ^= hashed >> np.uint64(31)
    hashed *= _HASH_MULTIPLIERS[0]
    return hashed ^ (hashed >> np.uint64(29))


def _unique_with_first_and_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`np.unique(values, return_index=True, return_inverse=True)`. Packets of one conversation often
    come in runs, so only the first value of each run is sorted."""
    if len(values) > 1:
        run_start = np.empty(len(values), dtype=bool)
        run_start[0] = True
        np.not_equal(values[1:], values[:-1], out=run_start[1:])
        heads = np.flatnonzero(run_start)
        if len(heads) < len(values):
            unique, first, inverse = _sorted_unique(values[heads])
            return unique, heads[first], inverse[np.cumsum(run_start) - 1]
    return _sorted_unique(values)


def _sorted_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    boundary = np.empty(len(values), dtype=bool)
    boundary[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(boundary) - 1
    return ordered[starts], order[starts], inverse


def _rows_differ(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    differs = left[:, 0] != right[:, 0]
    for column in range(1, left.shape[1]):
        differs |= left[:, column] != right[:, column]
    return differs


def _merge_sorted(
    table: tuple[np.ndarray, np.ndarray], hashes: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`table` (sorted hashes, ids) with sorted `hashes` (none of them in it) and their ids added."""
    slot = np.searchsorted(table[0], hashes)
    return np.insert(table[0], slot, hashes), np.insert(table[1], slot, ids)


class KeyIndex:
    """Dense, exact ids for fixed-width keys (rows of uint64), growing across batches.

    Rows are found by a 64-bit hash, and every answer is checked against the stored key; a row whose
    hash already belongs to a different key (which practically never happens) gets its id from a small
    exact side table instead, so ids are always exact.
    """

    def __init__(self, width: int) -> None:
        # (sorted hashes, id of each) in two levels: new hashes go to the small recent level, which is
        # merged into the main one only when it has grown, so that a batch never copies the whole table.
        self._main = (np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))
        self._recent = self._main
        self._keys = np.empty((1024, width), dtype=np.uint64)
        self._collided: dict[bytes, int] = {}
        self.count = 0

    @property
    def keys(self) -> np.ndarray:
        return self._keys[: self.count]

    def ids(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(id of each row, the distinct ids, index into the distinct ids of each row); new keys get
        new ids."""
        hashes = _hash_rows(keys)
        unique, first, inverse = _unique_with_first_and_inverse(hashes)
        unique_ids = np.full(len(unique), -1, dtype=np.int64)
        for sorted_hashes, ids_by_hash in (self._recent, self._main):
            wanted = np.flatnonzero(unique_ids < 0)
            slot = np.searchsorted(sorted_hashes, unique[wanted])
            inside = slot < len(sorted_hashes)
            found = wanted[inside][sorted_hashes[slot[inside]] == unique[wanted[inside]]]
            unique_ids[found] = ids_by_hash[np.searchsorted(sorted_hashes, unique[found])]
        fresh = unique_ids < 0
        known = np.flatnonzero(~fresh)
        unique_ids[fresh] = self._append(keys[first[fresh]])
        self._remember(unique[fresh], unique_ids[fresh])
        ids = unique_ids[inverse]
        wrong = np.empty(0, dtype=np.int64)
        if not self._all_rows_match(keys, hashes, unique_ids, first, inverse, known):
            stored = self._keys[ids]
            wrong = np.flatnonzero(_rows_differ(stored, keys))
        if not len(wrong):
            return ids, unique_ids, inverse
        for row in wrong:
            ids[row] = self._collided_id(keys[row])
        distinct, inverse = np.unique(ids, return_inverse=True)
        return ids, distinct, inverse

    def _all_rows_match(
        self,
        keys: np.ndarray,
        hashes: np.ndarray,
        unique_ids: np.ndarray,
        first: np.ndarray,
        inverse: np.ndarray,
        known: np.ndarray,
    ) -> bool:
        """Whether every row has the key stored for its id, checked without gathering every row: a row
        that continues a run of one hash equals the row before it, a run's first row equals its hash
        group's first row, and that one equals the stored key (a new group's first key is the one just
        stored)."""
        continues = hashes[1:] == hashes[:-1]
        if _rows_differ(keys[1:], keys[:-1])[continues].any():
            return False
        heads = np.flatnonzero(~continues) + 1
        if _rows_differ(keys[heads], keys[first[inverse[heads]]]).any():
            return False
        return not _rows_differ(self._keys[unique_ids[known]], keys[first[known]]).any()

    def _remember(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        """Adds sorted, new hashes and their ids."""
        self._recent = _merge_sorted(self._recent, hashes, ids)
        if len(self._recent[0]) > max(RECENT_HASHES, len(self._main[0]) >> 3):
            self._main = _merge_sorted(self._main, *self._recent)
            self._recent = (np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))

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
    local: np.ndarray  # per member packet: a dense index of its conversation among this batch's ones
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
        self._first_row = np.empty(0, dtype=np.int64)

    def assign(self, decoded: Decoded) -> FlowAssignment:
        member = (decoded.ip_version > 0) & (decoded.malformed == Malformed.NONE)
        every = bool(member.all())

        def members(values: np.ndarray) -> np.ndarray:
            return values if every else values[member]

        src_hi, src_lo = members(decoded.src_hi), members(decoded.src_lo)
        dst_hi, dst_lo = members(decoded.dst_hi), members(decoded.dst_lo)
        sport, dport = members(decoded.sport), members(decoded.dport)
        src_first = (src_hi < dst_hi) | (
            (src_hi == dst_hi) & ((src_lo < dst_lo) | ((src_lo == dst_lo) & (sport <= dport)))
        )
        port_a = np.where(src_first, sport, dport).astype(np.uint64)
        port_b = np.where(src_first, dport, sport).astype(np.uint64)
        vni = members(decoded.vni).astype(np.uint64) & np.uint64(0xFFFFFFFF)
        keys = np.column_stack(
            [
                np.where(src_first, src_hi, dst_hi),
                np.where(src_first, src_lo, dst_lo),
                np.where(src_first, dst_hi, src_hi),
                np.where(src_first, dst_lo, src_lo),
                (port_a << np.uint64(48)) | (port_b << np.uint64(32)) | vni,
                members(decoded.proto).astype(np.uint64),
            ]
        )
        direction = (~src_first).astype(np.int64)
        if not len(keys):
            empty = np.empty(0, dtype=np.int64)
            return FlowAssignment(member=member, ids=empty, local=empty, direction=direction)
        ids, present, local = self.index.ids(keys)
        self._count(present, local, direction, members(decoded.frame_len))
        return FlowAssignment(member=member, ids=ids, local=local, direction=direction)

    def _count(self, present: np.ndarray, local: np.ndarray, direction: np.ndarray, frame_len: np.ndarray) -> None:
        """Adds the batch's packets and bytes per conversation and direction; sums run over the ids
        present in the batch only, as the tables can hold millions of conversations."""
        self.counters.ensure(self.index.count)
        slots = local * 2 + direction
        packets = np.bincount(slots, minlength=2 * len(present))
        byte_sums = np.bincount(slots, weights=frame_len, minlength=2 * len(present)).astype(np.int64)
        columns = self.counters
        columns.packets_ab[present] += packets[0::2]
        columns.packets_ba[present] += packets[1::2]
        columns.bytes_ab[present] += byte_sums[0::2]
        columns.bytes_ba[present] += byte_sums[1::2]

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
                flows.local[tcp][consumes] * 2 + direction[consumes],
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
        flows, first = self._first_per_flow(ids, syn & ~ack)
        fresh = state.syn_index[flows] < 0
        flows, first = flows[fresh], first[fresh]
        state.syn_index[flows] = order_index[first]
        state.syn_ts[flows] = ts_ns[first]
        state.client_direction[flows] = direction[first]

        from_server = direction != state.client_direction[ids]
        flows, first = self._first_per_flow(ids, syn & ack & (state.syn_index[ids] >= 0) & from_server)
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
        flows, first = self._first_per_flow(ids, completes)
        state.rtt_done[flows] = True
        self._rtt_ns.append(ts_ns[first] - state.syn_ts[flows])

    def _sequence(
        self,
        direction_ids: np.ndarray,
        local_direction: np.ndarray,
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
        # Grouped by direction, each in capture order. Any grouping does: the batch-local numbering,
        # when small enough for 16 bits, sorts in linear time.
        if len(local_direction) and int(local_direction.max()) < 1 << 16:
            order = np.argsort(local_direction.astype(np.uint16), kind="stable")
        else:
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

    def _first_per_flow(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow ids, row of each flow's first masked packet), rows counted in `ids`; flows in the order
        of those rows. A scratch array indexed by flow id replaces a sort: only the entries of this
        batch's flows are written, then read."""
        rows = np.flatnonzero(mask)
        flows = ids[rows]
        if len(self._first_row) < self.index.count:
            self._first_row = np.empty(max(self.index.count, 2 * len(self._first_row)), dtype=np.int64)
        first_row = self._first_row
        first_row[flows] = len(ids)
        np.minimum.at(first_row, flows, rows)
        first = first_row[flows] == rows
        return flows[first], rows[first]

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

"""Conversations and TCP health, accumulated batch by batch.

A conversation is (VNI, IP protocol, both endpoints), endpoints in a canonical order so that the two
directions meet. `KeyIndex` gives every conversation a dense id, so each per-conversation counter and all
TCP state is a plain numpy array indexed by id (or by id * 2 + direction): memory grows with the number
of conversations, never with the number of packets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mirrorcap.report.decode import Decoded, Kind, Malformed
from mirrorcap.report.fields import group_rows, hash_rows, runs

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10
KEY_COLUMNS = 6  # address a (hi, lo), address b (hi, lo), ports+VNI, protocol
# The id table is open addressing with double hashing: with at most half its slots in use, a lookup
# takes about two probes, and a batch's lookups are done together, one numpy round per probe.
MAX_LOAD = 0.5
MIN_SLOTS = 1 << 12
# Below this many keys still probing, a plain loop is cheaper than another numpy round.
FEW_PROBES = 32
EMPTY = -1
# Per-conversation arrays grow 4-fold: rows not yet used are zero pages the kernel has not mapped in, so
# they cost address space, not memory, and the copies made on growth add up to a third of the final size
# (growing by half, they add up to twice it, each into freshly mapped pages).
GROWTH = 4
# Segmented running maxima are computed in one pass by lifting each group above the previous one;
# positions inside one batch stay far below 2**40 from their group's base.
_GROUP_LIFT = 1 << 42
_LOCAL_LIMIT = 1 << 40


def _rows_differ(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Whether each row of `left` differs from the same row of `right`."""
    if not (left != right).any():  # the usual answer, in one step
        return np.zeros(len(left), dtype=bool)
    differs = left[:, 0] != right[:, 0]
    for column in range(1, left.shape[1]):
        differs |= left[:, column] != right[:, column]
    return differs


class KeyIndex:
    """Dense, exact ids for fixed-width keys (rows of uint64), growing across batches; ids are given in
    the order keys are first seen.

    Within a batch, repeated rows are grouped first (neighbours by comparing the rows, which catches a
    conversation's bursts, then the rest by a 64-bit hash, each group checked row by row), so that one
    row per distinct key looks up the table. The table is open addressing with double hashing: its
    slots hold ids, a probe compares the key's hash then the stored key itself, so ids are exact whatever
    the hash. The lookups of a batch advance together, one numpy round per probe, until so few are left
    that a plain loop finishes them sooner.
    """

    def __init__(self, width: int) -> None:
        self._keys = np.empty((1024, width), dtype=np.uint64)
        self._hashes = np.empty(1024, dtype=np.uint64)
        self._slots = np.full(MIN_SLOTS, EMPTY, dtype=np.int32)
        self.count = 0

    @property
    def keys(self) -> np.ndarray:
        return self._keys[: self.count]

    def ids(self, columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """For keys given as their columns (integer arrays, one per key column): (the ids of the
        distinct keys, index into those of each row); new keys get new ids."""
        heads, run_of = runs(columns)
        keys = np.empty((len(heads), len(columns)), dtype=np.uint64)
        for number, column in enumerate(columns):
            keys[:, number] = column[heads]
        hashes = hash_rows(keys)
        first, group = group_rows(keys, hashes)
        distinct, distinct_hashes = keys[first], hashes[first]
        distinct_ids, free_slot = self._find(distinct, distinct_hashes)
        fresh = np.flatnonzero(distinct_ids < 0)  # in the order the keys came
        if len(fresh):
            distinct_ids[fresh] = self._add(distinct[fresh], distinct_hashes[fresh], free_slot[fresh])
        return distinct_ids, group[run_of]

    def _probe_start(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(first slot, odd step, mask) of each hash's probe sequence, which visits every slot."""
        mask = len(self._slots) - 1
        slot = (hashes >> np.uint64(64 - mask.bit_length())).astype(np.int64)
        step = (hashes & np.uint64(mask)).astype(np.int64) | 1
        return slot, step, mask

    def _find(self, keys: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(id of each of these distinct keys or -1, for the keys not in the table the free slot where
        their probe sequence stopped)."""
        found = np.full(len(keys), -1, dtype=np.int64)
        free_slot = np.empty(len(keys), dtype=np.int64)
        pending = np.arange(len(keys))
        slot, step, mask = self._probe_start(hashes)
        while len(pending) > FEW_PROBES:
            at = self._slots[slot]
            empty = at == EMPTY
            free_slot[pending[empty]] = slot[empty]
            same = np.flatnonzero(~empty & (self._hashes[at] == hashes[pending]))
            same = same[~_rows_differ(self._keys[at[same]], keys[pending[same]])]
            found[pending[same]] = at[same]
            on = ~empty
            on[same] = False  # the slots of other keys: the key may be further on
            pending, slot, step = pending[on], (slot[on] + step[on]) & mask, step[on]
        for index, position, stride in zip(pending.tolist(), slot.tolist(), step.tolist(), strict=True):
            while (at := int(self._slots[position])) != EMPTY:
                if self._hashes[at] == hashes[index] and (self._keys[at] == keys[index]).all():
                    found[index] = at
                    break
                position = (position + stride) & mask
            else:
                free_slot[index] = position
        return found, free_slot

    def _add(self, new_keys: np.ndarray, hashes: np.ndarray, free_slot: np.ndarray) -> np.ndarray:
        """Ids for distinct keys not in the table yet, placed from the free slots `_find` stopped at."""
        first_id, self.count = self.count, self.count + len(new_keys)
        if self.count > len(self._keys):
            capacity = max(self.count, len(self._keys) * GROWTH)
            self._keys = _grown(self._keys, first_id, (capacity, self._keys.shape[1]))
            self._hashes = _grown(self._hashes, first_id, (capacity,))
        self._keys[first_id : self.count] = new_keys
        self._hashes[first_id : self.count] = hashes
        ids = np.arange(first_id, self.count)
        if self.count <= MAX_LOAD * len(self._slots):
            self._place(ids, hashes, free_slot)
            return ids
        size = 2 * len(self._slots)
        while self.count > MAX_LOAD * size:
            size *= 2
        self._slots = np.full(size, EMPTY, dtype=np.int32)  # a larger table: every id is placed again
        every_hash = self._hashes[: self.count]
        self._place(np.arange(self.count), every_hash, self._probe_start(every_hash)[0])
        return ids

    def _place(self, ids: np.ndarray, hashes: np.ndarray, slot: np.ndarray) -> None:
        """Puts the ids of distinct keys not in the table into free slots, probing on from `slot`."""
        slots = self._slots
        _start, step, mask = self._probe_start(hashes)
        while len(ids) > FEW_PROBES:
            free = np.flatnonzero(slots[slot] == EMPTY)
            slots[slot[free]] = ids[free]  # where several ids claim one slot, one of them gets it
            on = np.ones(len(ids), dtype=bool)
            on[free[slots[slot[free]] == ids[free]]] = False
            ids, slot, step = ids[on], (slot[on] + step[on]) & mask, step[on]
        for key_id, position, stride in zip(ids.tolist(), slot.tolist(), step.tolist(), strict=True):
            while slots[position] != EMPTY:
                position = (position + stride) & mask
            slots[position] = key_id


def _grown(array: np.ndarray, used: int, shape: tuple[int, ...]) -> np.ndarray:
    """A larger array of `shape` starting with the first `used` rows of `array`; the rest zero."""
    grown = np.zeros(shape, dtype=array.dtype)  # calloc: untouched rows stay unmapped
    grown[:used] = array[:used]
    return grown


class _Columns:
    """Named numpy arrays that grow together, one row per id."""

    if TYPE_CHECKING:
        # The columns are attributes named by __init__'s keywords: to the type checker, any is an array.
        def __getattr__(self, name: str) -> np.ndarray: ...

    def __init__(self, **fill_values: tuple[type, object]) -> None:
        self._fill = fill_values
        self._size = 0
        for name, (dtype, fill) in fill_values.items():
            setattr(self, name, np.full(0, fill, dtype=dtype))

    def ensure(self, size: int) -> None:
        if size <= self._size:
            return
        new_size = max(size, self._size * GROWTH, 1024)
        for name, (_dtype, fill) in self._fill.items():
            old = getattr(self, name)
            grown = _grown(old, len(old), (new_size,))
            if fill:
                grown[len(old) :] = fill
            setattr(self, name, grown)
        self._size = new_size


@dataclass
class FlowAssignment:
    """Which conversation each packet of a batch belongs to."""

    member: np.ndarray  # bool per packet: it has addresses and belongs to a conversation
    present: np.ndarray  # the distinct ids of this batch
    local: np.ndarray  # per packet: index of its conversation in `present` (-1 if not a member)
    direction: np.ndarray  # per packet: 0 when sent by endpoint a, 1 when sent by b (0 if not a member)


@dataclass
class TcpPayloads:
    """The batch's whole TCP segments with captured payload, in capture order, for the protocols on
    top of TCP."""

    rows: np.ndarray  # the packet of each segment
    flows: np.ndarray  # its conversation id
    new_data_from: np.ndarray  # payload offset where bytes never seen before in its direction begin


class FlowTable:
    def __init__(self) -> None:
        self.index = KeyIndex(KEY_COLUMNS)
        self.counters = _Columns(
            packets_ab=(np.int64, 0), bytes_ab=(np.int64, 0), packets_ba=(np.int64, 0), bytes_ba=(np.int64, 0)
        )
        self.handshake = _Columns(
            syn_seen=(np.bool_, False),
            syn_ts=(np.int64, 0),
            client_direction=(np.int8, -1),
            synack_seen=(np.bool_, False),
            rtt_done=(np.bool_, False),
            reset=(np.bool_, False),
        )
        # Per direction (id * 2 + direction): where its sequence space stands. Only positions relative to
        # the last segment matter: `ahead` is how far the highest end seen lies beyond its start.
        self.sequence = _Columns(seen=(np.bool_, False), last_seq=(np.uint32, 0), ahead=(np.int64, 0))
        self.tcp_segments = 0
        self.tcp_counts = {"syn": 0, "syn_ack": 0, "rst": 0, "fin": 0, "retransmissions": 0}
        self._rtt_ns: list[np.ndarray] = []

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
        port_a = np.where(src_first, sport, dport)
        port_b = sport + dport - port_a
        columns = [
            np.where(src_first, src_hi, dst_hi),
            np.where(src_first, src_lo, dst_lo),
            np.where(src_first, dst_hi, src_hi),
            np.where(src_first, dst_lo, src_lo),
            # Shifted in int64 (bits past the sign wrap round), kept as the same 64 bits in the key.
            (port_a << 48) | (port_b << 32) | (members(decoded.vni) & 0xFFFFFFFF),
            members(decoded.proto),
        ]
        direction = (~src_first).view(np.int8)
        if not len(src_first):  # no packet of the batch is in a conversation
            none = np.empty(0, dtype=np.int64)
            return FlowAssignment(member, none, np.full(len(member), -1), np.zeros(len(member), dtype=np.int8))
        present, local = self.index.ids(columns)
        self._count(present, local * 2 + direction, members(decoded.frame_len))
        if not every:
            local, direction = _spread(local, member, -1), _spread(direction, member, 0)
        return FlowAssignment(member, present, local, direction)

    def _count(self, present: np.ndarray, local_direction: np.ndarray, frame_len: np.ndarray) -> None:
        """Adds the batch's packets and bytes per conversation and direction; sums run over the ids
        present in the batch only, as the tables can hold millions of conversations."""
        self.counters.ensure(self.index.count)
        packets = np.bincount(local_direction, minlength=2 * len(present))
        byte_sums = np.bincount(local_direction, weights=frame_len, minlength=2 * len(present)).astype(np.int64)
        columns = self.counters
        columns.packets_ab[present] += packets[0::2]
        columns.packets_ba[present] += packets[1::2]
        columns.bytes_ab[present] += byte_sums[0::2]
        columns.bytes_ba[present] += byte_sums[1::2]

    def analyse_tcp(self, decoded: Decoded, flows: FlowAssignment) -> TcpPayloads:
        """Flag counts, retransmissions and handshake RTTs of one batch."""
        whole_segment = (decoded.kind == Kind.TCP) & decoded.has_ports & ~decoded.fragment & flows.member
        rows = np.flatnonzero(whole_segment)
        local, direction = flows.local[rows], flows.direction[rows]
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
        self.handshake.reset[flows.present[local[rst]]] = True
        self._handshakes(flows.present, local, direction, syn, ack, rst, decoded.ts_ns[rows])

        payload_len = decoded.payload_len[rows]
        seg_len = payload_len + syn + fin
        consumes = np.flatnonzero(seg_len > 0)
        if not len(consumes):
            empty = np.empty(0, dtype=np.int64)
            return TcpPayloads(rows=empty, flows=empty, new_data_from=empty)
        seq_rows = rows[consumes]
        retransmissions, new_from = self._sequence(
            flows.present,
            local[consumes] * 2 + direction[consumes],
            decoded.seq[seq_rows],
            seg_len[consumes],
            payload_len[consumes],
            syn[consumes],
            fin[consumes],
        )
        counts["retransmissions"] += retransmissions
        carrying = np.flatnonzero(decoded.payload_caplen[seq_rows] > 0)
        return TcpPayloads(
            rows=seq_rows[carrying],
            flows=flows.present[local[consumes[carrying]]],
            new_data_from=new_from[carrying],
        )

    def _handshakes(
        self,
        present: np.ndarray,
        local: np.ndarray,
        direction: np.ndarray,
        syn: np.ndarray,
        ack: np.ndarray,
        rst: np.ndarray,
        ts_ns: np.ndarray,
    ) -> None:
        """Handshake RTT as Wireshark's initial RTT: first SYN to the client's ACK of the SYN-ACK.

        Rows are the batch's TCP segments in capture order. Each conversation's state is read once per
        batch (at `present`) and spread to its rows through `local`."""
        state = self.handshake
        count = len(present)
        first_syn = _first_row_per_group(local, syn & ~ack, count)
        opened = (first_syn >= 0) & ~state.syn_seen[present]
        conversations, row = present[opened], first_syn[opened]
        state.syn_seen[conversations] = True
        state.syn_ts[conversations] = ts_ns[row]
        state.client_direction[conversations] = direction[row]

        from_server = direction != state.client_direction[present][local]
        answered_before = state.synack_seen[present]
        synack = syn & ack & state.syn_seen[present][local] & from_server
        first_synack = _first_row_per_group(local, synack, count)
        answered = (first_synack >= 0) & ~answered_before
        state.synack_seen[present[answered]] = True

        # The client's ACK must come after the SYN-ACK: any row does if that came in an earlier batch.
        after_row = np.where(answered_before, -1, np.where(answered, first_synack, len(local)))
        completes = (
            ack
            & ~syn
            & ~rst
            & ~from_server
            & (np.arange(len(local)) > after_row[local])
            & ~state.rtt_done[present][local]
        )
        first_ack = _first_row_per_group(local, completes, count)
        done = first_ack >= 0
        state.rtt_done[present[done]] = True
        self._rtt_ns.append(ts_ns[first_ack[done]] - state.syn_ts[present[done]])

    def _sequence(
        self,
        present: np.ndarray,
        local_direction: np.ndarray,
        seq: np.ndarray,
        seg_len: np.ndarray,
        payload_len: np.ndarray,
        syn: np.ndarray,
        fin: np.ndarray,
    ) -> tuple[int, np.ndarray]:
        """(retransmissions as Wireshark defines them: segments that start below the highest sequence
        number already seen in their direction, keep-alives excepted; for each segment the payload
        offset where new bytes begin). Sequence numbers are unwrapped per direction, so 32-bit wrap
        is harmless; positions are relative to each direction's last segment before the batch."""
        order = stable_order(local_direction, 2 * len(present))  # each direction's segments in order
        groups = local_direction[order]
        raw = seq[order]
        length = seg_len[order]
        starts, group_of = runs([groups])
        ends = np.append(starts[1:], len(groups)) - 1
        keys = present[groups[starts] >> 1] * 2 + (groups[starts] & 1)

        state = self.sequence
        seen = state.seen[keys]
        previous = np.empty(len(raw), dtype=np.int64)
        previous[1:] = raw[:-1]
        previous[starts] = np.where(seen, state.last_seq[keys], raw[starts])
        step = ((raw - previous + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        running = np.cumsum(step)
        position = running - (running[starts] - step[starts])[group_of]
        end = _bounded(position + length)

        lift = group_of * _GROUP_LIFT
        running_max = np.maximum.accumulate(end + lift) - lift
        before = np.empty(len(raw), dtype=np.int64)
        before[1:] = running_max[:-1]
        before[starts] = -_LOCAL_LIMIT
        saved_max = np.where(seen, _bounded(state.ahead[keys]), -_LOCAL_LIMIT)
        highest_before = np.maximum(before, saved_max[group_of])

        # Only a segment that starts below the highest end seen before it carries old bytes: it is a
        # retransmission (unless a keep-alive probe), with its new bytes, if any, from that end on.
        below = np.flatnonzero(position < highest_before)
        overlap = highest_before[below] - position[below]
        rows = order[below]
        payload, is_syn = payload_len[rows], syn[rows]
        keepalive = (payload <= 1) & (overlap == 1) & ~is_syn & ~fin[rows]
        retransmissions = len(below) - int(np.count_nonzero(keepalive))
        new_from = np.zeros(len(raw), dtype=np.int64)
        new_from[rows] = np.minimum(np.maximum(overlap - is_syn, 0), payload)

        state.seen[keys] = True
        state.last_seq[keys] = raw[ends]
        state.ahead[keys] = np.maximum(saved_max, running_max[ends]) - position[ends]
        return retransmissions, new_from

    def handshake_rtt_ms(self) -> np.ndarray:
        if not self._rtt_ns:
            return np.empty(0)
        return np.concatenate(self._rtt_ns) / 1e6

    def connection_counts(self) -> dict[str, int]:
        size = self.index.count
        state = self.handshake
        state.ensure(size)
        opened = state.syn_seen[:size]
        return {
            "connections_attempted": int(np.count_nonzero(opened)),
            "connections_unanswered": int(np.count_nonzero(opened & ~state.synack_seen[:size])),
            "connections_reset": int(np.count_nonzero(state.reset[:size])),
        }


def _spread(values: np.ndarray, where: np.ndarray, fill: int) -> np.ndarray:
    """Per-packet values from those of the packets `where` is set for; `fill` for the others."""
    spread = np.full(len(where), fill, dtype=values.dtype)
    spread[where] = values
    return spread


def _bounded(values: np.ndarray) -> np.ndarray:
    """`values` clipped to within _LOCAL_LIMIT of 0, in place."""
    np.maximum(values, -_LOCAL_LIMIT, out=values)
    return np.minimum(values, _LOCAL_LIMIT, out=values)


def _first_row_per_group(groups: np.ndarray, mask: np.ndarray, count: int) -> np.ndarray:
    """For each of `count` groups, the first row where `mask` is set, or -1."""
    rows = np.flatnonzero(mask)
    first = np.full(count, len(mask), dtype=np.int64)
    np.minimum.at(first, groups[rows], rows)
    first[first == len(mask)] = -1
    return first


def stable_order(values: np.ndarray, limit: int) -> np.ndarray:
    """`np.argsort(values, kind="stable")` for integers in [0, limit): numpy sorts 16-bit integers by
    radix, in linear time, so larger values are sorted by their low then their high 16 bits."""
    if limit <= 1 << 16:
        return np.argsort(values.astype(np.uint16), kind="stable")
    if limit <= 1 << 32:
        by_low = np.argsort((values & 0xFFFF).astype(np.uint16), kind="stable")
        return by_low[np.argsort((values[by_low] >> 16).astype(np.uint16), kind="stable")]
    return np.argsort(values, kind="stable")

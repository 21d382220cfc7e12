"""The numpy building blocks the analyzers group and count with, against plain references: whatever the
input, the fast way must give exactly what the obvious way gives."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from mirrorcap.report.analyze import sums_per_second
from mirrorcap.report.fields import group_rows, hash_rows, sparse_flatnonzero
from mirrorcap.report.flows import stable_order

SECOND = 1_000_000_000


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 300), density=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_sparse_flatnonzero_matches_flatnonzero(size: int, density: float, seed: int) -> None:
    mask = np.random.default_rng(seed).random(size) < density
    assert sparse_flatnonzero(mask).tolist() == np.flatnonzero(mask).tolist()


@settings(max_examples=60, deadline=None)
@given(limit=st.sampled_from([1, 300, 1 << 16, (1 << 16) + 1, 1 << 20, 1 << 32]), seed=st.integers(0, 2**32 - 1))
def test_stable_order_is_a_stable_argsort(limit: int, seed: int) -> None:
    """Also above 16 bits, where the values are sorted by radix in two passes."""
    values = np.random.default_rng(seed).integers(0, limit, size=500)
    assert stable_order(values, limit).tolist() == np.argsort(values, kind="stable").tolist()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2)), min_size=1, max_size=60),
    weak=st.booleans(),
)
def test_group_rows_numbers_groups_in_order_of_appearance(rows: list[tuple[int, int]], weak: bool) -> None:
    """Exact groups even when different rows share a hash (the rows themselves are then sorted)."""
    keys = np.array(rows, dtype=np.uint64)
    hashes = (keys[:, 0] % np.uint64(2)) if weak else hash_rows(keys)
    first, group = group_rows(keys, hashes)
    distinct = list(dict.fromkeys(rows))
    assert [rows[index] for index in first.tolist()] == distinct
    assert [distinct[number] for number in group.tolist()] == rows


def _reference_per_second(ts_ns: np.ndarray, weights: np.ndarray) -> list[tuple[int, int, int]]:
    packets: Counter[int] = Counter()
    sums: Counter[int] = Counter()
    for ts, weight in zip(ts_ns.tolist(), weights.tolist(), strict=True):
        packets[ts // SECOND] += 1
        sums[ts // SECOND] += weight
    return [(second, packets[second], sums[second]) for second in sorted(packets)]


@settings(max_examples=80, deadline=None)
@given(
    start=st.integers(-(10**11), 10**11),
    gaps=st.lists(st.integers(0, 3 * SECOND), min_size=1, max_size=80),
    shuffled=st.booleans(),
    jump=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_sums_per_second_match_dividing_every_timestamp(
    start: int, gaps: list[int], shuffled: bool, jump: bool, seed: int
) -> None:
    """In time order (a binary search per second), out of order, and spread over more seconds than the
    search is used for."""
    rng = np.random.default_rng(seed)
    ts_ns = start + np.cumsum(np.array(gaps, dtype=np.int64))
    if jump:
        ts_ns[len(ts_ns) // 2 :] += 10_000 * SECOND
    if shuffled:
        rng.shuffle(ts_ns)
    weights = rng.integers(0, 1500, size=len(ts_ns))
    assert sums_per_second(ts_ns, weights) == _reference_per_second(ts_ns, weights)

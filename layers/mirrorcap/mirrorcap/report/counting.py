"""Counting helpers shared by the protocol analyzers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypedDict, TypeVar

import numpy as np

Key = TypeVar("Key", bound=Hashable)

# Distinct keys (URL paths, DNS names, ...) remembered per table. A capture full of unique URLs would
# otherwise grow memory with the capture; past the cap, new keys are only counted as "other".
MAX_DISTINCT_KEYS = 100_000


class BoundedCounter(Generic[Key]):
    """Exact counts for up to `max_keys` distinct keys; occurrences of keys first seen after the table
    is full are summed in `overflow`."""

    def __init__(self, max_keys: int = MAX_DISTINCT_KEYS) -> None:
        self.counts: Counter[Key] = Counter()
        self.overflow = 0
        self._max_keys = max_keys

    def add(self, key: Key, count: int = 1) -> None:
        if key in self.counts or len(self.counts) < self._max_keys:
            self.counts[key] += count
        else:
            self.overflow += count

    def update(self, counts: Iterable[tuple[Key, int]]) -> None:
        """Adds (key, count) pairs, keys in the order they were first seen."""
        for key, count in counts:
            self.add(key, count)

    def items(self) -> Iterable[tuple[Key, int]]:
        return self.counts.items()


def most_common(counts: Mapping[Key, int], limit: int) -> list[tuple[Key, int]]:
    """The `limit` largest counts; ties broken by key, so one capture always gives the same report."""
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))[:limit]


class DistributionStats(TypedDict):
    """The fields of summary.Distribution."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float


def distribution(values: np.ndarray) -> DistributionStats | None:
    """count, p50, p90, p99 and max of `values` (nearest-rank percentiles: always an observed value)."""
    if len(values) == 0:
        return None
    p50, p90, p99 = np.percentile(values, [50, 90, 99], method="inverted_cdf")
    return {
        "count": len(values),
        "p50": round(float(p50), 3),
        "p90": round(float(p90), 3),
        "p99": round(float(p99), 3),
        "max": round(float(np.max(values)), 3),
    }

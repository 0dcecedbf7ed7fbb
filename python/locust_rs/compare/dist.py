"""One histogram's buckets as a comparison reads them: the value at any rank, a quantile, and a quantile's
confidence interval (:py:mod:`locust_rs.compare.intervals`), without asking the native histogram again per rank."""

from __future__ import annotations

import bisect
import math

from locust_rs.compare import intervals


class Dist:
    """One histogram's buckets: the value at any rank, and a quantile's interval, without asking the histogram
    again per rank. Values are clamped to the exact (min, max) of the run's outputs where known, as every output
    shows them."""

    def __init__(self, buckets: list[tuple[float, int]], bounds: tuple[float, float] | None = None) -> None:
        self.values = [v for v, _ in buckets]
        self.cum: list[int] = []
        total = 0
        for _, c in buckets:
            total += c
            self.cum.append(total)
        self.n = total
        self.bounds = bounds

    @classmethod
    def merged(cls, dists: list[Dist]) -> Dist:
        counts: dict[float, int] = {}
        for d in dists:
            prev = 0
            for v, c in zip(d.values, d.cum, strict=True):
                counts[v] = counts.get(v, 0) + c - prev
                prev = c
        known = [d.bounds for d in dists if d.bounds is not None and d.n]
        bounds = (min(b[0] for b in known), max(b[1] for b in known)) if known and len(known) == len(dists) else None
        return cls(sorted(counts.items()), bounds)

    def at_rank(self, k: int) -> float:
        """The k-th smallest value (1-based); 0 for k < 1 and infinity beyond n (no bound there)."""
        if k < 1:
            return 0.0
        if k > self.n:
            return math.inf
        value = self.values[bisect.bisect_left(self.cum, k)]
        return self._clamp(value)

    def _clamp(self, value: float) -> float:
        return value if self.bounds is None else min(max(value, self.bounds[0]), self.bounds[1])

    def quantile(self, q: float) -> float:
        """HdrHistogram's value at quantile q: the value of rank ceil(q n), as every output of a run shows it."""
        return self.at_rank(max(1, math.ceil(q * self.n)))

    def interval(self, q: float, confidence: float) -> tuple[float, float]:
        lo, hi = intervals.rank_interval(self.n, q, confidence)
        return self.at_rank(lo), self.at_rank(hi)

    @property
    def max(self) -> float | None:
        return self._clamp(self.values[-1]) if self.n else None

"""One histogram's buckets as a comparison reads them: the value at any rank, a quantile, and a quantile's
confidence interval (:py:mod:`locust_rs.compare.intervals`), without asking the native histogram again per rank.

Response times of one run are not independent draws. A pause of the generator or the target delays every request
in flight together, so slow samples come in bursts, and a percentile rests on fewer independent events than its
count says: an interval computed as if they were independent is too narrow, most of all in the tail. A run's
``.hlog`` has its histograms second by second (its periods). How much more the count of samples below a percentile
varies from period to period than independent samples would is the design effect D (Pearson's dispersion of those
counts); the interval is the one of n / D independent samples. Without periods (a histogram made in memory), D is 1.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

from locust_rs.compare import intervals

Buckets = list[tuple[float, int]]
#: Fewer periods than this cannot say how the counts vary: D is taken as 1.
MIN_PERIODS = 3


class _Cumulative:
    """A histogram's values and cumulative counts (one second of a run, or a whole side)."""

    def __init__(self, buckets: Buckets) -> None:
        self.values = [v for v, _ in buckets]
        self.cum: list[int] = []
        total = 0
        for _, c in buckets:
            total += c
            self.cum.append(total)
        self.n = total

    def at_most(self, x: float) -> int:
        i = bisect.bisect_right(self.values, x)
        return self.cum[i - 1] if i else 0


class Dist(_Cumulative):
    """One histogram's buckets: the value at any rank, and a quantile's interval, without asking the histogram
    again per rank. Values are clamped to the exact (min, max) of the run's outputs where known, as every output
    shows them. ``periods``: the same samples second by second, as encoded ``.hlog`` payloads (decoded with
    ``decode`` when first needed), for the design effect."""

    def __init__(
        self,
        buckets: Buckets,
        bounds: tuple[float, float] | None = None,
        periods: list[str] | None = None,
        decode: Callable[[str], Buckets] | None = None,
    ) -> None:
        super().__init__(buckets)
        self.bounds = bounds
        self._encoded = list(periods or [])
        self._decode = decode
        self._periods: list[_Cumulative] | None = None

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
        out = cls(sorted(counts.items()), bounds)
        # the periods of every run: a repeat's seconds are as much the side's as the first run's
        out._periods = [p for d in dists for p in d.periods()]
        return out

    def periods(self) -> list[_Cumulative]:
        if self._periods is None:
            decode = self._decode
            self._periods = [_Cumulative(decode(e)) for e in self._encoded] if decode is not None else []
            self._periods = [p for p in self._periods if p.n]
        return self._periods

    def _raw_at_rank(self, k: int) -> float:
        return self.values[bisect.bisect_left(self.cum, k)]

    def at_rank(self, k: int) -> float:
        """The k-th smallest value (1-based); 0 for k < 1 and infinity beyond n (no bound there)."""
        if k < 1:
            return 0.0
        if k > self.n:
            return math.inf
        return self._clamp(self._raw_at_rank(k))

    def _clamp(self, value: float) -> float:
        return value if self.bounds is None else min(max(value, self.bounds[0]), self.bounds[1])

    def quantile(self, q: float) -> float:
        """HdrHistogram's value at quantile q: the value of rank ceil(q n), as every output of a run shows it."""
        return self.at_rank(max(1, math.ceil(q * self.n)))

    def design_effect(self, q: float) -> float:
        """D at quantile q: the dispersion, over the periods, of the count of samples at or below the q-quantile,
        relative to independent samples (1 when they vary as independent samples would, or cannot tell)."""
        periods = self.periods()
        if len(periods) < MIN_PERIODS or not self.n:
            return 1.0
        x = self._raw_at_rank(max(1, math.ceil(q * self.n)))
        below = [p.at_most(x) for p in periods]
        n = sum(p.n for p in periods)
        share = sum(below) / n
        if share <= 0.0 or share >= 1.0:
            return 1.0
        chi2 = sum((e - p.n * share) ** 2 / (p.n * share * (1 - share)) for e, p in zip(below, periods, strict=True))
        return max(1.0, chi2 / (len(periods) - 1))

    def interval(self, q: float, confidence: float) -> tuple[float, float]:
        """The q-quantile's interval: order statistics of n / D independent samples, mapped back onto this
        histogram's ranks (widened outward)."""
        d = self.design_effect(q)
        if d <= 1.0:
            lo, hi = intervals.rank_interval(self.n, q, confidence)
            return self.at_rank(lo), self.at_rank(hi)
        n_eff = max(1, int(self.n / d))
        lo, hi = intervals.rank_interval(n_eff, q, confidence)
        scale = self.n / n_eff
        lo_rank = math.floor(lo * scale) if lo >= 1 else 0
        hi_rank = min(math.ceil(hi * scale), self.n) if hi <= n_eff else self.n + 1
        return self.at_rank(lo_rank), self.at_rank(hi_rank)

    @property
    def max(self) -> float | None:
        return self._clamp(self.values[-1]) if self.n else None

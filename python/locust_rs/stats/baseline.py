"""Thresholds relative to a baseline run: ``--baseline PREFIX`` and ``p(95)<+10%``, ``error_rate<+1%``.

A relative threshold's limit is the baseline's value moved by the amount it names: ``+10%`` of a time is 1.10 times
the baseline's, ``+20ms`` is 20 ms more, ``+1%`` of ``error_rate`` is one percentage point more. It is crossed only
when the run's value is beyond that limit *and* the change from the baseline is real: the confidence interval of the
change (as ``locust-rs compare`` computes it, see :py:mod:`locust_rs.compare.table`) lies wholly on the crossing side
of no change. A limit that demands a change (``p(95)<-10%``: at least 10 % faster) is crossed when the interval lies
wholly beyond the limit instead. The intervals are made at 95 % for all the relative thresholds of a run together
(Bonferroni).

Percentiles (raw and ``_corrected``), ``med``, ``avg`` and ``error_rate`` can be relative; the other metrics have
no sampling interval that could tell a real change from noise.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from locust_rs.compare import intervals
from locust_rs.compare.dist import Dist
from locust_rs.compare.runs import Counts, RunData, RunNotFound, load
from locust_rs.compare.table import AGGREGATED, side_dist

#: what a relative threshold's value moves the baseline's by: a fraction of it, or an amount in the metric's unit
RATIO, DELTA = "ratio", "delta"
#: metrics with an interval: what a relative threshold can name
RELATIVE_METRICS = ("avg", "med", "error_rate")
#: the confidence of all the relative thresholds of a run together
CONFIDENCE = 0.95

__all__ = ["RATIO", "DELTA", "RELATIVE_METRICS", "Judged", "RunNotFound", "judge", "load_baseline", "relative_ok"]


def relative_ok(metric: str) -> bool:
    """Whether ``metric`` (canonical: ``p95``, ``p99.9_corrected``, ``avg``...) has an interval to judge it by."""
    return metric in RELATIVE_METRICS or (metric.startswith("p") and metric[1:2].isdigit())


def load_baseline(path: str | os.PathLike) -> RunData:
    """The baseline run of ``--baseline``: a ``--csv`` prefix, one of its files, or a directory (its newest run)."""
    return load(path)


@dataclass
class Judged:
    """One relative threshold's target against the baseline."""

    observed: float | None
    baseline: float | None
    #: the limit in the metric's unit (the baseline's value moved by the threshold's amount)
    limit: float | None
    #: the confidence interval of the change: of observed / baseline - 1 for times, of the difference for rates
    interval: tuple[float, float] | None
    passed: bool
    #: why a value beyond its limit passed, or why there is nothing to judge
    note: str = ""


def _key(request_type: str | None, name: str | None) -> tuple[str, str]:
    return AGGREGATED if name is None else (request_type or "", name)


def _dist(run: RunData, keys: list[tuple[str, str]], corrected: bool) -> Dist:
    """The histogram of one key, or of a group of keys merged (each corrected where it has one, if asked)."""
    if len(keys) == 1:
        key = keys[0]
        use = corrected and (key == AGGREGATED or run.histograms.has_corrected(*key))
        return side_dist([run], key, use)[0]
    parts = []
    for key in keys:
        use = corrected and run.histograms.has_corrected(*key)
        parts.append(side_dist([run], key, use)[0])
    return Dist.merged(parts)


def _counts(run: RunData, keys: list[tuple[str, str]]) -> Counts | None:
    found = [run.counts[k] for k in keys if k in run.counts]
    if not found:
        return None
    return Counts(sum(c.requests for c in found), sum(c.failures for c in found))


def _mean_sd(d: Dist) -> tuple[float, float]:
    total = sq = 0.0
    prev = 0
    for v, c in zip(d.values, d.cum, strict=True):
        total += v * (c - prev)
        sq += v * v * (c - prev)
        prev = c
    mean = total / d.n
    return mean, math.sqrt(max(0.0, sq / d.n - mean * mean))


def judge(
    metric: str,
    op: str,
    amount: float,
    kind: str,
    observed: float | None,
    baseline: RunData,
    candidate: RunData,
    keys: list[tuple[str | None, str | None]],
    tests: int,
) -> Judged:
    """One target of a relative threshold: ``observed`` is the run's value (as every output shows it), ``keys`` the
    request keys it covers ((None, None) for the aggregate), ``tests`` how many relative targets the run judges."""
    wanted = [_key(t, n) for t, n in keys]
    confidence = 1 - (1 - CONFIDENCE) / max(1, tests)
    if observed is None:
        return Judged(None, None, None, None, False, "no data in this run")
    if metric == "error_rate":
        a = _counts(baseline, wanted)
        b = _counts(candidate, wanted)
        if a is None or not a.requests or b is None:
            return Judged(observed, None, None, None, False, "no such requests in the baseline")
        base = a.failures / a.requests
        lo, hi = intervals.rate_difference(a.failures, a.requests, b.failures, b.requests, confidence)
        interval = (lo, hi)
    else:
        corrected = metric.endswith("_corrected")
        a_dist = _dist(baseline, wanted, corrected)
        b_dist = _dist(candidate, wanted, corrected)
        if not a_dist.n:
            return Judged(observed, None, None, None, False, "no such requests in the baseline")
        if not b_dist.n:
            return Judged(observed, None, None, None, False, "no response times in this run")
        if metric == "avg":
            # a normal-approximation interval for the difference of the means (many samples: the central limit
            # theorem), from the histograms' buckets; the baseline's value is its exact mean where _stats.csv has it
            (ma, sa), (mb, sb) = _mean_sd(a_dist), _mean_sd(b_dist)
            exact = _average(baseline, wanted)
            base = exact if exact is not None else ma
            half = intervals.z(confidence) * math.sqrt(sa * sa / a_dist.n + sb * sb / b_dist.n)
            # the difference's interval, as a fraction of the baseline's mean
            interval = ((mb - ma - half) / ma, (mb - ma + half) / ma) if ma > 0 else (-math.inf, math.inf)
        else:
            q = 0.5 if metric == "med" else float(metric[1:].removesuffix("_corrected")) / 100.0
            base = a_dist.quantile(q)
            side = math.sqrt(confidence)
            lo, hi = intervals.ratio_interval(
                a_dist.interval(q, side), b_dist.interval(q, side), base, b_dist.quantile(q)
            )
            interval = (lo - 1, hi - 1)
    limit = base * (1 + amount) if kind == RATIO else base + amount
    beyond = not _holds(op, observed, limit)
    # the limit as a change: a fraction of the baseline's value for times, a difference for rates
    allowed = amount if kind == RATIO or metric == "error_rate" else (amount / base if base else 0.0)
    rising = op in ("<", "<=")
    if (allowed < 0) if rising else (allowed > 0):
        # A limit that demands a change (p(95)<-10%: at least 10 % faster) passes only when the change is shown:
        # its whole interval on the passing side of the limit.
        shown = interval[1] < allowed if rising else interval[0] > allowed
        if not beyond and not shown:
            return Judged(observed, base, limit, interval, False, "within the limit, but not beyond the noise")
        return Judged(observed, base, limit, interval, shown)
    # A limit that allows a change (p(95)<+10%) is crossed only by a real change: its whole interval on the crossing
    # side of no change.
    real = interval[0] > 0 if rising else interval[1] < 0
    if beyond and not real:
        return Judged(observed, base, limit, interval, True, "beyond the limit, but within the noise")
    return Judged(observed, base, limit, interval, not beyond)


def _average(run: RunData, keys: list[tuple[str, str]]) -> float | None:
    """The exact mean response time of ``keys`` from ``_stats.csv`` (weighted by requests), or None."""
    found = [run.counts[k] for k in keys if k in run.counts]
    if not found or any(c.average is None for c in found):
        return None
    total = sum(c.requests for c in found)
    return sum((c.average or 0.0) * c.requests for c in found) / total if total else None


def _holds(op: str, observed: float, limit: float) -> bool:
    return {"<": observed < limit, "<=": observed <= limit, ">": observed > limit, ">=": observed >= limit}[op]

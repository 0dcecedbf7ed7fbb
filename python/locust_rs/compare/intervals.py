"""The statistics of a comparison: distribution-free intervals, from the standard library alone.

- A quantile's interval from order statistics: the true q-quantile lies between the l-th and u-th smallest of n
  samples with a probability the binomial distribution gives, whatever the distribution of the samples
  (:py:func:`rank_interval`). Exact for small counts; the normal approximation with a skewness term beyond.
- A ratio's interval from two such intervals (:py:func:`ratio_interval`).
- The difference of two failure rates: Newcombe's hybrid score interval from Wilson's (:py:func:`rate_difference`).
- Repeated runs: the exact one-sided Mann-Whitney (rank-sum) test between the runs of each side, ties included
  (:py:func:`mann_whitney`).

scipy has all of these, but the command that runs in a CI job should not pull in a 40 MB wheel for four formulas;
``tests/test_compare_intervals.py`` checks each against exact enumeration or published tables.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()
#: Below this variance (n q (1 - q)) the binomial is summed exactly; above it the normal approximation with
#: Cornish-Fisher's skewness term is within one rank of it, and summing would cost thousands of terms per quantile.
_EXACT_VARIANCE = 400.0


def z(confidence: float) -> float:
    """The two-sided normal quantile of ``confidence`` (1.96 for 0.95)."""
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def _binomial_quantiles(n: int, q: float, tail: float) -> tuple[int, int]:
    """(k_lo, k_hi) for B ~ Binomial(n, q): the largest k_lo with P(B < k_lo) <= tail and the smallest k_hi with
    P(B > k_hi) <= tail, by summing the probabilities outward from the mode."""
    if q <= 0.0:
        return 0, 0
    if q >= 1.0:
        return n, n
    mode = min(n, int((n + 1) * q))
    log_pmf_mode = math.lgamma(n + 1) - math.lgamma(mode + 1) - math.lgamma(n - mode + 1)
    log_pmf_mode += mode * math.log(q) + (n - mode) * math.log1p(-q)
    odds = q / (1 - q)
    # Probabilities below the mode, walking down: pmf(k - 1) = pmf(k) * k / ((n - k + 1) * odds).
    below, p, k = [], math.exp(log_pmf_mode), mode
    while k > 0 and p > 1e-300:
        p *= k / ((n - k + 1) * odds)
        k -= 1
        below.append(p)
    above, p, k = [], math.exp(log_pmf_mode), mode
    while k < n and p > 1e-300:
        p *= (n - k) * odds / (k + 1)
        k += 1
        above.append(p)
    total = math.exp(log_pmf_mode) + sum(below) + sum(above)
    # P(B < k_lo) is the sum of the probabilities of 0 .. k_lo - 1: walk up from the lowest kept term.
    k_lo, cum = mode - len(below), 0.0
    for p in reversed(below):  # probabilities of k = mode - len(below) ... mode - 1
        if (cum + p) / total > tail:
            break
        cum += p
        k_lo += 1
    k_hi, cum = mode + len(above), 0.0
    for p in reversed(above):  # probabilities of k = mode + len(above) ... mode + 1
        if (cum + p) / total > tail:
            break
        cum += p
        k_hi -= 1
    return k_lo, k_hi


def rank_interval(n: int, q: float, confidence: float) -> tuple[int, int]:
    """1-based ranks (lo, hi) of the order statistics that bracket the true q-quantile of n samples with at least
    ``confidence``: P(X_(lo) <= quantile <= X_(hi)) >= confidence. lo is 0 when no sample is low enough to bound it
    from below (read as "no lower bound"), hi is n + 1 when none bounds it from above (few samples, a high q)."""
    if n <= 0:
        return 0, 1
    tail = (1 - confidence) / 2
    variance = n * q * (1 - q)
    if variance <= _EXACT_VARIANCE:
        k_lo, k_hi = _binomial_quantiles(n, q, tail)
    else:
        # Cornish-Fisher: the binomial's quantile is its mean plus sd * (z + (z^2 - 1) * skewness / 6).
        sd = math.sqrt(variance)
        skew = (1 - 2 * q) / sd
        zt = _NORMAL.inv_cdf(tail)
        k_lo = math.floor(n * q + sd * (zt + (zt * zt - 1) * skew / 6) + 0.5)
        k_hi = math.ceil(n * q + sd * (-zt + (zt * zt - 1) * skew / 6) - 0.5)
    # P(X_(l) <= x_q) = P(B >= l) and P(X_(u) >= x_q) = P(B <= u - 1), with B the samples below x_q: so l = k_lo and
    # u = k_hi + 1.
    return max(0, min(n, k_lo)), max(1, min(n + 1, k_hi + 1))


def ratio_interval(
    a: tuple[float, float], b: tuple[float, float], a_point: float, b_point: float
) -> tuple[float, float]:
    """The interval of b / a from the intervals of a and b: [b_lo / a_hi, b_hi / a_lo]. With each side's interval at
    confidence c, the ratio's covers the true ratio with at least c squared (the samples are independent). Infinite
    ends stay open: (0, inf) says nothing. Two zero points give the ratio 1 (no time at all is no change)."""
    a_lo, a_hi = a
    b_lo, b_hi = b
    lo = b_lo / a_hi if a_hi > 0 and math.isfinite(a_hi) else 0.0
    hi = b_hi / a_lo if a_lo > 0 else math.inf
    if a_point == 0 and b_point == 0:
        return min(lo, 1.0), max(hi, 1.0)
    return lo, hi


def _wilson(x: int, n: int, zc: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = x / n
    denom = 1 + zc * zc / n
    centre = (p + zc * zc / (2 * n)) / denom
    half = zc * math.sqrt(p * (1 - p) / n + zc * zc / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_difference(x_a: int, n_a: int, x_b: int, n_b: int, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_b - p_a (failures x of requests n on each side): well behaved at zero
    failures and at small counts, where the normal (Wald) interval is not."""
    zc = z(confidence)
    p_a = x_a / n_a if n_a else 0.0
    p_b = x_b / n_b if n_b else 0.0
    l_a, u_a = _wilson(x_a, n_a, zc)
    l_b, u_b = _wilson(x_b, n_b, zc)
    d = p_b - p_a
    lo = d - math.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2)
    hi = d + math.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2)
    return lo, hi


def mann_whitney(lower: list[float], higher: list[float]) -> float:
    """The exact one-sided p-value that the values of ``higher`` are stochastically larger than those of
    ``lower``: the share of all the ways to split the pooled values into groups of these sizes whose ``higher``
    group has a rank sum at least as large as the one seen (mid-ranks for ties, so tied values, common among
    percentiles read from histogram buckets, count as such). With 3 runs a side and no ties, all three of
    ``higher`` above all three of ``lower`` gives 1 / 20 = 0.05."""
    m, n = len(higher), len(lower)
    if not m or not n:
        return 1.0
    pooled = sorted(higher + lower)
    # doubled mid-ranks: integers, so that the rank sums can index a table
    rank2: dict[float, int] = {}
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1] == pooled[i]:
            j += 1
        rank2[pooled[i]] = i + j + 2  # 2 x the mean of the 1-based ranks i + 1 .. j + 1
        i = j + 1
    seen = sum(rank2[x] for x in higher)
    # ways[k][s]: subsets of k of the values so far with doubled rank sum s
    ways: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(m)]
    for x in pooled:
        r = rank2[x]
        for k in range(m, 0, -1):
            for s_, c in ways[k - 1].items():
                ways[k][s_ + r] = ways[k].get(s_ + r, 0) + c
    return sum(c for s_, c in ways[m].items() if s_ >= seen) / math.comb(m + n, m)


def smallest_p(m: int, n: int) -> float:
    """The smallest p-value :py:func:`mann_whitney` can give with m and n runs: 1 / C(m + n, m)."""
    return 1.0 / math.comb(m + n, m) if m and n else 1.0

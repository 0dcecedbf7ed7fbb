"""The statistics of ``locust-rs compare`` (locust_rs.compare.intervals), against exact enumeration, published
figures and seeded simulation."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from locust_rs.compare import intervals


def _binom_cdf(k: int, n: int, q: float) -> float:
    """P(B <= k), summed exactly."""
    return sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(0, k + 1))


@pytest.mark.parametrize(
    ("n", "q", "confidence"),
    [(20, 0.5, 0.95), (50, 0.9, 0.95), (100, 0.99, 0.95), (200, 0.95, 0.99), (7, 0.5, 0.9), (300, 0.5, 0.975)],
)
def test_the_exact_rank_interval_is_the_binomials(n, q, confidence):
    lo, hi = intervals.rank_interval(n, q, confidence)
    tail = (1 - confidence) / 2
    # lo: the largest rank with P(B < lo) <= tail; hi - 1: the smallest k with P(B > k) <= tail
    below = (lambda k: _binom_cdf(k - 1, n, q)) if lo else None
    if below is not None:
        assert below(lo) <= tail + 1e-12 < below(lo + 1)
    if hi <= n:
        assert 1 - _binom_cdf(hi - 1, n, q) <= tail + 1e-12 < 1 - _binom_cdf(hi - 2, n, q)


def test_a_published_interval_for_the_median():
    # The median of 20 samples: X(6) to X(15), 95.9 % (e.g. Conover, Practical Nonparametric Statistics, table A3)
    assert intervals.rank_interval(20, 0.5, 0.95) == (6, 15)


def test_too_few_samples_leave_the_interval_open():
    # p99.9 of 100 samples cannot be bounded from above; p0.1 not from below
    assert intervals.rank_interval(100, 0.999, 0.95)[1] == 101
    assert intervals.rank_interval(100, 0.001, 0.95)[0] == 0
    assert intervals.rank_interval(0, 0.5, 0.95) == (0, 1)


@pytest.mark.parametrize(("n", "q"), [(5000, 0.5), (100_000, 0.999), (20_000, 0.9), (1_000_000, 0.95)])
def test_the_normal_approximation_is_within_one_rank_of_exact(n, q):
    approx = intervals.rank_interval(n, q, 0.95)
    k_lo, k_hi = intervals._binomial_quantiles(n, q, 0.025)
    assert abs(approx[0] - k_lo) <= 1
    assert abs(approx[1] - (k_hi + 1)) <= 1


def test_the_intervals_cover_the_true_quantile_as_often_as_they_say():
    rng = random.Random(20261207)
    n, q, confidence, trials = 300, 0.9, 0.95, 2000
    true = -math.log(1 - q)  # of Exp(1)
    lo_rank, hi_rank = intervals.rank_interval(n, q, confidence)
    covered = 0
    for _ in range(trials):
        xs = sorted(rng.expovariate(1.0) for _ in range(n))
        covered += xs[lo_rank - 1] <= true <= xs[hi_rank - 1]
    # At least the confidence (the binomial's steps make it a little more); 3 standard errors below it fails.
    assert covered / trials >= confidence - 3 * math.sqrt(confidence * (1 - confidence) / trials)


def test_newcombes_interval_for_a_difference_of_rates():
    # Newcombe (1998), Statistics in Medicine 17:873, table II, example (a): 56/70 - 48/80, method 10
    lo, hi = intervals.rate_difference(48, 80, 56, 70, 0.95)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    # zero failures on both sides: the interval holds zero
    lo, hi = intervals.rate_difference(0, 10_000, 0, 10_000, 0.95)
    assert lo < 0 < hi
    # 0 of 10,000 against 50 of 10,000: more failures
    assert intervals.rate_difference(0, 10_000, 50, 10_000, 0.95)[0] > 0


def _brute_force_p(lower, higher) -> float:
    """P(U <= u) over every split of the pooled values (ties included) into groups of these sizes, where U counts
    the pairs (x of the higher group, y of the lower) with x < y, a tie a half."""

    def u(hi, lo) -> float:
        return sum(1.0 if x < y else 0.5 if x == y else 0.0 for x in hi for y in lo)

    pooled = [*higher, *lower]
    m = len(higher)
    seen = u(higher, lower)
    count = total = 0
    for chosen in itertools.combinations(range(len(pooled)), m):
        hi = [pooled[i] for i in chosen]
        lo = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        count += u(hi, lo) <= seen + 1e-9
    return count / total


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ([1, 2, 3], [4, 5, 6]),
        ([1, 2, 3], [2.5, 5, 6]),
        ([4, 5, 6], [1, 2, 3]),
        ([1, 3, 5, 7], [2, 4, 6, 8, 9]),
        ([1.0, 2.0], [3.0, 4.0]),
        ([10, 11, 12, 13, 14], [12.5, 15, 16, 17, 18]),
        # ties, as percentiles read from histogram buckets have them
        ([1, 2, 3], [3, 4, 5]),
        ([10.0, 10.0, 11.0], [11.0, 12.0, 12.0]),
        ([5, 5, 5], [5, 5, 5]),
        ([1, 2, 2, 3], [2, 3, 3, 4]),
    ],
)
def test_mann_whitney_is_exact(lower, higher):
    assert intervals.mann_whitney(lower, higher) == pytest.approx(_brute_force_p(lower, higher))


def test_three_runs_a_side_all_beyond_is_one_in_twenty():
    assert intervals.mann_whitney([1, 2, 3], [4, 5, 6]) == pytest.approx(0.05)
    # a tie between the sides is not "beyond": the chance of as much is twice as large
    assert intervals.mann_whitney([1, 2, 3], [3, 4, 5]) == pytest.approx(0.10)
    assert intervals.smallest_p(3, 3) == pytest.approx(0.05)
    assert intervals.smallest_p(2, 2) == pytest.approx(1 / 6)


def test_a_ratio_interval_stays_open_where_a_side_is():
    assert intervals.ratio_interval((10, 12), (11, 13), 11, 12) == (11 / 12, 13 / 10)
    assert intervals.ratio_interval((10, math.inf), (11, 13), 11, 12) == (0.0, 1.3)
    assert intervals.ratio_interval((0.0, 12), (11, 13), 11, 12)[1] == math.inf

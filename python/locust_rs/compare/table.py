"""The comparison of two runs (or two sets of repeated runs): one row per request name and for Aggregated, with a
verdict per quantile, per failure rate and per row.

The rules (``docs/compare.md`` explains them):

- A quantile is *slower* when the whole confidence interval of the candidate's value over the baseline's lies above
  ``1 + noise``, *faster* when it lies below ``1 / (1 + noise)``, else there is *no detectable change*. The
  interval is distribution-free (order statistics of each run's histogram); the noise margin stands for what one
  pair of runs cannot see, the run-to-run variation of a shared machine.
- ``confidence`` holds for the whole table: each of its m tests (quantiles and failure rates of every compared row)
  is made at ``1 - (1 - confidence) / m`` (Bonferroni), so that two runs of one build show a change anywhere in the
  table at most ``1 - confidence`` of the time from sampling alone.
- Failure rates: *more failures* (or *fewer*) when the interval of the difference excludes zero.
- With several runs a side, a change must also exceed the spread between the runs of each side: the exact
  one-sided Mann-Whitney test between the runs' own values, at ``1 - confidence``. Three runs a side is the fewest
  that can pass it (all three beyond all three: p = 0.05).
- The maximum is shown, never judged: it is one sample, with no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from locust_rs.compare import intervals
from locust_rs.compare.dist import Dist
from locust_rs.compare.runs import Counts, HistogramSet, Key, RunData

AGGREGATED: Key = ("", "Aggregated")
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
SLOWER, FASTER, SAME = "slower", "faster", "no detectable change"
MORE_FAILURES, FEWER_FAILURES = "more failures", "fewer failures"
ONLY_BASELINE, ONLY_CANDIDATE = "only in the baseline", "only in the candidate"


@dataclass(frozen=True)
class Options:
    quantiles: tuple[float, ...] = QUANTILES
    #: of the whole table (see the module's docs)
    confidence: float = 0.95
    #: changes of a quantile within this fraction are noise, whatever the statistics say
    noise: float = 0.05
    #: compare the coordinated-omission-corrected histograms where every run of both sides has them
    corrected: bool = True

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence is a fraction from 0.5 to below 1 (0.95 for 95 %), not {self.confidence}")
        if not 0 <= self.noise < 1:
            raise ValueError(f"noise is a fraction from 0 to below 1 (0.05 for 5 %), not {self.noise}")
        if not self.quantiles or not all(0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles are fractions between 0 and 1 (0.95 for p95), not {self.quantiles}")


@dataclass
class QuantileChange:
    q: float
    baseline: float | None
    candidate: float | None
    #: the confidence interval of candidate / baseline - 1 (either end may be infinite), None without data
    interval: tuple[float, float] | None
    verdict: str
    #: why there is no detectable change, when the reason is not the data ("3 runs a side are needed"...)
    why: str = ""
    #: with repeats: the one-sided p-value of the spread test in the direction of the change
    p_spread: float | None = None
    #: with repeats: each run's own value, baseline's then candidate's
    runs: tuple[list[float], list[float]] = ((), ())  # type: ignore[assignment]

    @property
    def label(self) -> str:
        return f"p{100 * self.q:g}"

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        if self.baseline == 0:
            return 0.0 if self.candidate == 0 else math.inf
        return self.candidate / self.baseline - 1


@dataclass
class Row:
    request_type: str
    name: str
    baseline: Counts | None
    candidate: Counts | None
    #: whether the corrected histograms were compared
    corrected: bool = False
    quantiles: list[QuantileChange] = field(default_factory=list)
    max_baseline: float | None = None
    max_candidate: float | None = None
    #: interval of the candidate's failure rate less the baseline's, None without counts
    failure_interval: tuple[float, float] | None = None
    failure_verdict: str = ""
    verdict: str = SAME

    @property
    def label(self) -> str:
        return f"{self.request_type} {self.name}" if self.request_type else self.name

    @property
    def regression(self) -> bool:
        return self.verdict.startswith(SLOWER) or MORE_FAILURES in self.verdict

    @staticmethod
    def rate(c: Counts | None) -> float | None:
        return c.failures / c.requests if c is not None and c.requests else None


@dataclass
class Comparison:
    baseline: list[RunData]
    candidate: list[RunData]
    options: Options
    rows: list[Row]
    #: things the reader must know about the whole table (too few repeats, mixed corrected sides)
    notes: list[str] = field(default_factory=list)
    #: the confidence each test was made at (Bonferroni over the table)
    test_confidence: float = 0.95

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]

    @property
    def exit_code(self) -> int:
        """0 without a regression, 1 with one (slower or more failures on any row)."""
        return 1 if self.regressions else 0

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        parts = [f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return f"{len(self.rows)} rows: " + ", ".join(parts)


def side_dist(runs: list[RunData], key: Key, corrected: bool) -> tuple[Dist, list[Dist]]:
    """The pooled histogram of ``key`` over the runs of a side, and each run's. The corrected aggregate is each
    key's corrected histogram where it has one, else its raw one: the one every output of a run shows (``_hdr.csv``'s
    corrected Aggregated row), so its exact bounds apply too."""
    per_run = []
    for run in runs:
        t, n = (None, None) if key == AGGREGATED else key
        series = (key[0], key[1], corrected)
        buckets = run.histograms.buckets(t, n, corrected)
        per_run.append(Dist(buckets, run.bounds.get(series), run.periods.get(series), HistogramSet.decode_buckets))
    return (per_run[0] if len(per_run) == 1 else Dist.merged(per_run)), per_run


def has_corrected(runs: list[RunData], key: Key) -> bool:
    if key == AGGREGATED:
        return all(any(r.histograms.has_corrected(t, n) for t, n in r.histograms.keys()) for r in runs)
    return all(r.histograms.has_corrected(*key) for r in runs)


def _counts(runs: list[RunData], key: Key, dists: list[Dist]) -> Counts | None:
    """Requests and failures of a key over the runs of a side: ``_stats.csv``'s counts, or the histogram's count
    with failures unknown (-1) when a run has no ``_stats.csv`` row for it."""
    total = Counts()
    for run, d in zip(runs, dists, strict=True):
        c = run.counts.get(key)
        if c is None:
            if not d.n:
                continue
            # this run's failures are unknown, so the side's are
            total.requests += d.n
            total.failures = -1
            continue
        total.requests += c.requests
        if total.failures >= 0:
            total.failures += c.failures
    return total if total.requests else None


def _quantile_change(
    q: float,
    a: Dist,
    b: Dist,
    a_runs: list[Dist],
    b_runs: list[Dist],
    side_confidence: float,
    options: Options,
    spread: bool,
) -> QuantileChange:
    if not a.n or not b.n:
        return QuantileChange(q, a.quantile(q) if a.n else None, b.quantile(q) if b.n else None, None, SAME, "no data")
    va, vb = a.quantile(q), b.quantile(q)
    lo, hi = intervals.ratio_interval(a.interval(q, side_confidence), b.interval(q, side_confidence), va, vb)
    change = QuantileChange(q, va, vb, (lo - 1, hi - 1), SAME)
    if spread:
        change.runs = ([d.quantile(q) for d in a_runs], [d.quantile(q) for d in b_runs])
    if lo > 1 + options.noise:
        direction = SLOWER
    elif hi < 1 / (1 + options.noise):
        direction = FASTER
    else:
        if not math.isfinite(hi) or lo == 0:
            change.why = "too few samples to bound it"
        return change
    if spread:
        lower, higher = change.runs if direction == SLOWER else change.runs[::-1]
        change.p_spread = intervals.mann_whitney(list(lower), list(higher))
        if change.p_spread > 1 - options.confidence:
            change.why = f"within the spread between runs (p = {change.p_spread:.3f})"
            return change
    change.verdict = direction
    return change


def _keys(side: list[RunData]) -> set[Key]:
    keys: set[Key] = set()
    for run in side:
        keys.update(tuple(k) for k in run.histograms.keys())  # type: ignore[misc]
        keys.update(k for k in run.counts if k != AGGREGATED)
    return keys


def compare(baseline: list[RunData], candidate: list[RunData], options: Options | None = None) -> Comparison:
    """Compares the runs of ``candidate`` with those of ``baseline`` (one or more each; several are pooled, and
    their spread tested). Rows: Aggregated first, then the names of both sides sorted, then those of one side."""
    options = options or Options()
    if not baseline or not candidate:
        raise ValueError("a comparison needs at least one run on each side")
    a_keys, b_keys = _keys(baseline), _keys(candidate)
    both = [AGGREGATED, *sorted(a_keys & b_keys)]
    notes = []
    spread = len(baseline) > 1 and len(candidate) > 1
    if len(baseline) > 1 or len(candidate) > 1:
        smallest = intervals.smallest_p(len(baseline), len(candidate))
        if not spread:
            notes.append(
                f"{len(baseline)} baseline and {len(candidate)} candidate runs: the spread between repeats is "
                "tested only with several runs on both sides; these are pooled"
            )
        elif smallest > 1 - options.confidence:
            notes.append(
                f"{len(baseline)} and {len(candidate)} runs a side cannot tell a change from the spread between "
                f"repeats at {100 * options.confidence:g} % (the smallest p-value is {smallest:.3f}): use 3 or more "
                "a side; no row can be called slower or faster"
            )
    m = len(both) * (len(options.quantiles) + 1)
    test_confidence = 1 - (1 - options.confidence) / m
    side_confidence = math.sqrt(test_confidence)
    rows = []
    mixed = []
    for key in both:
        corrected = options.corrected and has_corrected(baseline, key) and has_corrected(candidate, key)
        if options.corrected and not corrected and (has_corrected(baseline, key) or has_corrected(candidate, key)):
            mixed.append(key)
        a, a_runs = side_dist(baseline, key, corrected)
        b, b_runs = side_dist(candidate, key, corrected)
        row = Row(key[0], key[1], _counts(baseline, key, a_runs), _counts(candidate, key, b_runs), corrected)
        row.quantiles = [
            _quantile_change(q, a, b, a_runs, b_runs, side_confidence, options, spread) for q in options.quantiles
        ]
        row.max_baseline, row.max_candidate = a.max, b.max
        ca, cb = row.baseline, row.candidate
        if ca is not None and cb is not None and ca.failures >= 0 and cb.failures >= 0:
            row.failure_interval = intervals.rate_difference(
                ca.failures, ca.requests, cb.failures, cb.requests, test_confidence
            )
            if row.failure_interval[0] > 0:
                row.failure_verdict = MORE_FAILURES
            elif row.failure_interval[1] < 0:
                row.failure_verdict = FEWER_FAILURES
        row.verdict = _row_verdict(row)
        rows.append(row)
    for key in sorted(a_keys - b_keys):
        a, a_runs = side_dist(baseline, key, False)
        rows.append(Row(key[0], key[1], _counts(baseline, key, a_runs), None, verdict=ONLY_BASELINE))
    for key in sorted(b_keys - a_keys):
        b, b_runs = side_dist(candidate, key, False)
        rows.append(Row(key[0], key[1], None, _counts(candidate, key, b_runs), verdict=ONLY_CANDIDATE))
    if mixed:
        names = ", ".join(" ".join(filter(None, k)) for k in mixed[:5]) + (" …" if len(mixed) > 5 else "")
        notes.append(f"raw times compared for {names}: only one side has corrected histograms for them")
    return Comparison(baseline, candidate, options, rows, notes, test_confidence)


def _row_verdict(row: Row) -> str:
    """Slower wins over faster (a regression must not hide behind an improvement elsewhere in the row)."""
    verdicts = {c.verdict for c in row.quantiles}
    latency = SLOWER if SLOWER in verdicts else FASTER if FASTER in verdicts else ""
    parts = [p for p in (latency, row.failure_verdict) if p]
    return ", ".join(parts) if parts else SAME

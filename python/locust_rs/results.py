"""Results of a run, for notebooks: pandas frames, exact percentiles, comparisons and plots.

Needs the ``analysis`` extra (``pip install locust-rs[analysis]``: pandas and matplotlib). A run is what
``locust --csv PREFIX`` wrote: Locust's ``PREFIX_stats.csv``, ``PREFIX_stats_history.csv``,
``PREFIX_failures.csv`` and ``PREFIX_exceptions.csv``, plus locust-rs's ``PREFIX_hdr.csv`` and
``PREFIX.hlog``. Example::

    from locust_rs import results

    run = results.load("out/run")
    run.stats                       # Locust's per-name table
    run.hdr                         # exact percentiles, raw and corrected
    run.percentile("/api/items", 0.999)
    run.arrival                     # PREFIX_arrival.csv, for arrival-rate classes
    results.compare(results.load("out/before"), run)   # locust-rs compare's table, with intervals and verdicts
    results.plot_compare(results.load("out/before"), run)
    run.plot_latency(); run.plot_percentiles()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from locust_rs import _native
from locust_rs.compare import intervals as _intervals
from locust_rs.compare import runs as _runs
from locust_rs.compare import table as _table

try:
    import pandas as pd
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("locust_rs.results needs pandas and matplotlib: pip install 'locust-rs[analysis]'") from e

HistogramSet = _native.HistogramSet


def load_hlog(path: str | os.PathLike) -> tuple[HistogramSet, pd.DataFrame]:
    """Reads a locust-rs ``.hlog``: the per-(type, name) totals as a :py:class:`HistogramSet` and the intervals as a
    frame (start, length, max and series tag per line). Untagged lines (the aggregate) and lines tagged
    ``corrected`` are listed in the frame but not added to the set, whose aggregate is computed from the keys."""
    hs, rows, _ = _runs.read_hlog(path)
    return hs, pd.DataFrame(rows, columns=["tag", "start", "length", "max_ms"])


def _read(path: str) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""]) if os.path.exists(path) else pd.DataFrame()


@dataclass(repr=False)
class Run:
    """One run's results. Frames are empty when the file is missing (e.g. no ``.hlog`` with metrics off)."""

    prefix: str
    stats: pd.DataFrame
    history: pd.DataFrame
    failures: pd.DataFrame
    exceptions: pd.DataFrame
    hdr: pd.DataFrame
    intervals: pd.DataFrame
    histograms: HistogramSet = field(repr=False)
    #: ``PREFIX_arrival.csv``: one row per arrival-rate class (empty for a closed-model run)
    arrival: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: each series' histograms second by second, encoded (what :py:func:`compare` reads the samples' clustering from)
    periods: dict = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return os.path.basename(self.prefix)

    def __repr__(self) -> str:
        total = self.stats[self.stats["Name"] == "Aggregated"] if "Name" in self.stats else self.stats
        if len(total):
            n, fails = int(total["Request Count"].iloc[0]), int(total["Failure Count"].iloc[0])
            figures = f"{n} requests, {fails} failures, {len(self.stats) - 1} names"
        else:
            figures = f"{len(self.histograms)} names"
        return f"Run({self.label!r}: {figures})"

    def _key(self, name: str, request_type: str | None) -> tuple[str, str] | tuple[None, None]:
        if name in ("Aggregated", None):
            return None, None
        known = self.histograms.keys()
        if request_type is None and " " in name and not any(k[1] == name for k in known):
            # "TYPE NAME", as thresholds and Locust's tables write it
            first, rest = name.split(" ", 1)
            if any(k == (first, rest) for k in known):
                request_type, name = first, rest
        keys = [k for k in known if k[1] == name and request_type in (None, k[0])]
        if not keys:
            raise KeyError(f"no requests named {name!r}" + (f" of type {request_type}" if request_type else ""))
        if len(keys) > 1:
            raise KeyError(f"{name!r} has several request types {[k[0] for k in keys]}: pass request_type")
        return keys[0]

    def percentile(self, name: str, q: float, corrected: bool = False, request_type: str | None = None) -> float:
        """The exact response time (ms) at quantile ``q`` (0..1, e.g. 0.999) for ``name`` or ``"Aggregated"``,
        from the ``.hlog`` histograms, so any quantile is available, not only the CSV's. It is the figure
        ``_hdr.csv`` shows for the same quantile: like every output of the run, it never lies beyond the exact
        min and max (a histogram's bucket alone would give its upper edge, up to 0.1 % above the max). The
        corrected aggregate of a run without corrected histograms is the raw one, as in ``docs/metrics.md``."""
        if not 0 <= q <= 1:
            raise ValueError("q is a fraction: 0.99 for p99")
        t, n = self._key(name, request_type)
        if corrected and t is not None and n is not None and not self.histograms.has_corrected(t, n):
            raise KeyError(f"{name!r} has no corrected histogram (its user had no expected interval)")
        if corrected and t is None and self.histograms.summary(corrected=True) is None:
            corrected = False
        value = self.histograms.value_at_quantile(q, t, n, corrected)
        if value is None:
            raise KeyError(f"no data for {name!r}")
        bounds = self._exact_bounds(t, n, corrected)
        return value if bounds is None else min(max(value, bounds[0]), bounds[1])

    def _exact_bounds(self, request_type: str | None, name: str | None, corrected: bool) -> tuple[float, float] | None:
        """The exact min and max (ms) of a key's raw or corrected side from ``_hdr.csv``, or None without it."""
        if self.hdr.empty:
            return None
        rows = self.hdr[(self.hdr["Type"] == (request_type or "")) & (self.hdr["Name"] == (name or "Aggregated"))]
        prefix = "Corrected " if corrected else ""
        if rows.empty or f"{prefix}Min" not in rows or pd.isna(rows[f"{prefix}Min"].iloc[0]):
            return None
        return float(rows[f"{prefix}Min"].iloc[0]), float(rows[f"{prefix}Max"].iloc[0])

    def distribution(self, name: str = "Aggregated", corrected: bool = False, request_type: str | None = None):
        """The percentile distribution of ``name`` as a frame: quantile, value_ms."""
        t, n = self._key(name, request_type)
        return pd.DataFrame(self.histograms.distribution(t, n, corrected), columns=["quantile", "value_ms"])

    # plots (matplotlib is imported only when plotting)
    def throughput(self) -> pd.DataFrame:
        """Requests and failures per second over time (time: seconds since the first row), from the exact
        cumulative counts of Locust's history: not its "current" rates, which average the last seconds and lag."""
        # Rows are written once a second and once more at the end, which may share a second: keep its last.
        h = self._aggregated_history().groupby("Timestamp", as_index=False).last()
        seconds = h["Timestamp"].diff()
        out = pd.DataFrame({"time": h["time"]})
        out["requests/s"] = h["Total Request Count"].diff() / seconds
        out["failures/s"] = h["Total Failure Count"].diff() / seconds
        return out.iloc[1:].reset_index(drop=True)

    def plot_throughput(self, ax=None):
        """Requests/s and failures/s over time, from the exact counts (:py:meth:`throughput`)."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(9, 3.5))[1]
        t = self.throughput()
        ax.plot(t["time"], t["requests/s"], label="requests/s")
        ax.plot(t["time"], t["failures/s"], label="failures/s", color="tab:red")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("per second")
        ax.set_title(f"Throughput: {self.label}")
        ax.legend()
        return ax

    def plot_latency(self, ax=None, percentiles=("50%", "95%", "99%")):
        """Response-time percentiles over time (Locust's history: the last 10 s at each point), with the whole run's
        from the HDR histograms as dashed lines."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(9, 3.5))[1]
        h = self._aggregated_history()
        for p in percentiles:
            if p in h:
                line = ax.plot(h["time"], pd.to_numeric(h[p], errors="coerce"), label=f"p{p[:-1]}, last 10 s")[0]
                try:
                    exact = self.percentile("Aggregated", float(p[:-1]) / 100)
                    ax.axhline(exact, ls="--", color=line.get_color(), label=f"p{p[:-1]} exact, whole run")
                except KeyError:
                    pass
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("ms")
        ax.set_title(f"Latency: {self.label}")
        ax.legend(fontsize="small")
        return ax

    def plot_percentiles(self, names=None, corrected: bool = True, ax=None):
        """HDR percentile distributions on a log "nines" axis, raw (solid) and corrected (dashed) where known."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(9, 4))[1]
        names = names or ["Aggregated"]
        for name in names:
            for corr in (False, True) if corrected else (False,):
                try:
                    d = self.distribution(name, corr)
                except KeyError:
                    continue
                if corr and (name == "Aggregated" and self.histograms.summary(corrected=True) is None):
                    continue
                if corr and name != "Aggregated" and not self.histograms.has_corrected(*self._key(name, None)):
                    continue
                d = d[d["quantile"] < 0.99999]
                x = 1 / (1 - d["quantile"].to_numpy())
                ax.plot(x, d["value_ms"], ls="--" if corr else "-", label=f"{name}{' (corrected)' if corr else ''}")
        _nines_axes(ax, f"Percentile distribution: {self.label}")
        return ax

    def _aggregated_history(self) -> pd.DataFrame:
        if self.history.empty:
            raise ValueError(f"{self.prefix}_stats_history.csv is missing or empty (use --csv, not --only-summary?)")
        h = self.history[self.history["Name"] == "Aggregated"].copy()
        h["time"] = h["Timestamp"] - h["Timestamp"].iloc[0]
        return h


def load(prefix: str | os.PathLike) -> Run:
    """Loads what ``locust --csv PREFIX`` (with locust-rs) wrote: ``prefix`` is that prefix, one of its files
    (``PREFIX_stats.csv``, ``PREFIX.hlog``...), or a directory, whose newest run it loads."""
    prefix = _runs.find_prefix(prefix)
    stats = _read(f"{prefix}_stats.csv")
    if stats.empty and not os.path.exists(f"{prefix}_hdr.csv"):
        raise FileNotFoundError(f"no {prefix}_stats.csv or {prefix}_hdr.csv: is {prefix!r} a --csv prefix?")
    hlog = f"{prefix}.hlog"
    periods: dict = {}
    if os.path.exists(hlog):
        histograms, rows, periods = _runs.read_hlog(hlog)
        intervals = pd.DataFrame(rows, columns=["tag", "start", "length", "max_ms"])
    else:
        histograms, intervals = HistogramSet(), pd.DataFrame(columns=["tag", "start", "length", "max_ms"])
    hdr = _read(f"{prefix}_hdr.csv")
    if not hdr.empty:
        hdr["Type"] = hdr["Type"].fillna("")
    return Run(
        prefix=prefix,
        stats=stats,
        history=_read(f"{prefix}_stats_history.csv"),
        failures=_read(f"{prefix}_failures.csv"),
        exceptions=_read(f"{prefix}_exceptions.csv"),
        hdr=hdr,
        intervals=intervals,
        histograms=histograms,
        arrival=_read(f"{prefix}_arrival.csv"),
        periods=periods,
    )


def _run_data(run: Run) -> _runs.RunData:
    if not len(run.histograms):
        # what `locust-rs compare` refuses too: without histograms every row would read "no detectable change"
        raise ValueError(f"{run.prefix}: no .hlog histograms to compare (a run with --no-hdr-metrics has none)")
    stats, hdr = run.stats.to_dict("records"), run.hdr.to_dict("records")
    return _runs.RunData.from_rows(run.prefix, run.histograms, stats, hdr, run.periods)


def _side(runs: Run | Sequence[Run]) -> list[_runs.RunData]:
    return [_run_data(runs)] if isinstance(runs, Run) else [_run_data(r) for r in runs]


def compare(
    a: Run | Sequence[Run],
    b: Run | Sequence[Run],
    quantiles=_table.QUANTILES,
    confidence: float = 0.95,
    noise: float = 0.05,
    corrected: bool = True,
) -> pd.DataFrame:
    """The table of ``locust-rs compare`` (``docs/compare.md``) as a frame: one row per request name (Aggregated
    first, then the names of both runs, then those of one), with ``b`` the candidate against the baseline ``a``
    (either may be a list of repeated runs). Columns: Type, Name, verdict, count_a/b, failures_a/b, fail_rate_a/b,
    the interval of the failure rate's difference (fail_diff_lo/hi) and, per quantile (``p95``...), the values
    ``_a`` and ``_b``, their ratio b / a with its confidence interval (``_ratio``, ``_lo``, ``_hi``) and the
    ``_verdict``; then max_a/b. ``frame.attrs`` holds the table's notes and the exit code the command would give."""
    table = _table.compare(_side(a), _side(b), _table.Options(tuple(quantiles), confidence, noise, corrected))
    rows = []
    for r in table.rows:
        row: dict = {"Type": r.request_type, "Name": r.name, "verdict": r.verdict, "corrected": r.corrected}
        for side, counts in (("a", r.baseline), ("b", r.candidate)):
            row[f"count_{side}"] = counts.requests if counts else 0
            known = counts is not None and counts.failures >= 0
            row[f"failures_{side}"] = counts.failures if known and counts else None
            row[f"fail_rate_{side}"] = _table.Row.rate(counts) if known else None
        row["fail_diff_lo"], row["fail_diff_hi"] = r.failure_interval or (None, None)
        for c in r.quantiles:
            row[f"{c.label}_a"], row[f"{c.label}_b"] = c.baseline, c.candidate
            row[f"{c.label}_ratio"] = None if c.change is None else 1 + c.change
            row[f"{c.label}_lo"], row[f"{c.label}_hi"] = (
                (1 + c.interval[0], 1 + c.interval[1]) if c.interval else (None, None)
            )
            row[f"{c.label}_verdict"] = c.verdict
        row["max_a"], row["max_b"] = r.max_baseline, r.max_candidate
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["notes"] = list(table.notes)
    frame.attrs["exit_code"] = table.exit_code
    return frame


def _bounded(ranks: tuple[int, int], n: int) -> bool:
    """Whether both ends of a quantile's interval are samples (not open for lack of them)."""
    return ranks[0] >= 1 and ranks[1] <= n


def plot_compare(
    a: Run | Sequence[Run],
    b: Run | Sequence[Run],
    name: str = "Aggregated",
    corrected: bool = True,
    confidence: float = 0.95,
    ax=None,
    request_type: str | None = None,
):
    """The percentile curves of ``name`` in both runs (or sets of runs) on a log "nines" axis, each with its
    pointwise confidence band (order statistics of its histogram, as :py:func:`compare` computes them): where the
    bands part, the runs differ beyond sampling noise. Like :py:func:`compare`, the corrected histograms where every
    run has them (``corrected=False``: the raw ones)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    ax = ax or plt.subplots(figsize=(9, 4))[1]
    sides = [_side(a), _side(b)]
    first = a if isinstance(a, Run) else a[0]
    key = _table.AGGREGATED if name == "Aggregated" else first._key(name, request_type)
    # as compare reads them: corrected only where every run of both sides has them
    corrected = corrected and all(_table.has_corrected(side, key) for side in sides)  # type: ignore[arg-type]
    for side, color in zip(sides, ("tab:blue", "tab:orange"), strict=True):
        dist, _ = _table.side_dist(side, key, corrected)  # type: ignore[arg-type]
        if not dist.n:
            continue
        # quantiles from p0 to the highest the run can bound from above, 20 per decade of nines
        grid = [1 - 10 ** (-k / 20) for k in range(0, 200)]
        grid = [q for q in grid if _bounded(_intervals.rank_interval(dist.n, q, confidence), dist.n)] or [0.5]
        x = [1 / (1 - q) for q in grid]
        values = [dist.quantile(q) for q in grid]
        bands = [dist.interval(q, confidence) for q in grid]
        label = side[0].label if len(side) == 1 else f"{side[0].label} +{len(side) - 1}"
        ax.plot(x, values, color=color, label=label)
        ax.fill_between(x, [lo for lo, _ in bands], [hi for _, hi in bands], color=color, alpha=0.25, linewidth=0)
    which = " (corrected)" if corrected else ""
    _nines_axes(ax, f"{name}{which}: percentiles with their {100 * confidence:g} % bands")
    # Plain numbers on the time axis: a run's percentiles often span less than a decade, where the log axis would
    # label nothing but powers of ten.
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    return ax


def _nines_axes(ax, title: str) -> None:
    """Percentile distributions' axes: log "nines" on x (90 %, 99 %...), log ms on y."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [1, 10, 100, 1000, 10000]
    ax.set_xticks(ticks, [f"{100 * (1 - 1 / t):g}%" for t in ticks])
    ax.set_xlabel("percentile")
    ax.set_ylabel("ms")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")

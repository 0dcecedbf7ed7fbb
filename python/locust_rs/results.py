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
    results.compare(results.load("out/before"), run)
    run.plot_latency(); run.plot_percentiles()
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from locust_rs import _native

try:
    import pandas as pd
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("locust_rs.results needs pandas and matplotlib: pip install 'locust-rs[analysis]'") from e

HistogramSet = _native.HistogramSet


def _unescape_tag(tag: str) -> str:
    for esc, ch in (("%2C", ","), ("%20", " "), ("%09", "\t"), ("%0A", "\n"), ("%0D", "\r"), ("%25", "%")):
        tag = tag.replace(esc, ch)
    return tag


def load_hlog(path: str | os.PathLike) -> tuple[HistogramSet, pd.DataFrame]:
    """Reads a locust-rs ``.hlog``: the per-(type, name) totals as a :py:class:`HistogramSet` and the intervals as a
    frame (start, length, max and series tag per line). Untagged lines (the aggregate) and lines tagged
    ``corrected`` are listed in the frame but not added to the set, whose aggregate is computed from the keys."""
    hs = HistogramSet()
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith(("#", '"')) or not line.strip():
                continue
            tag = ""
            if line.startswith("Tag="):
                tag, _, line = line[4:].partition(",")
            start, length, mx, b64 = line.strip().split(",", 3)
            rows.append({"tag": tag, "start": float(start), "length": float(length), "max_ms": float(mx)})
            if not tag or tag == "corrected":
                continue
            corrected = tag.startswith("corrected:")
            request_type, _, name = tag.removeprefix("corrected:").partition(":")
            hs.add_encoded(_unescape_tag(request_type), _unescape_tag(name), b64, corrected)
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
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [1, 10, 100, 1000, 10000]
        ax.set_xticks(ticks, [f"{100 * (1 - 1 / t):g}%" for t in ticks])
        ax.set_xlabel("percentile")
        ax.set_ylabel("ms")
        ax.set_title(f"Percentile distribution: {self.label}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
        return ax

    def _aggregated_history(self) -> pd.DataFrame:
        if self.history.empty:
            raise ValueError(f"{self.prefix}_stats_history.csv is missing or empty (use --csv, not --only-summary?)")
        h = self.history[self.history["Name"] == "Aggregated"].copy()
        h["time"] = h["Timestamp"] - h["Timestamp"].iloc[0]
        return h


def load(prefix: str | os.PathLike) -> Run:
    """Loads what ``locust --csv PREFIX`` (with locust-rs) wrote."""
    prefix = str(prefix)
    stats = _read(f"{prefix}_stats.csv")
    if stats.empty and not os.path.exists(f"{prefix}_hdr.csv"):
        raise FileNotFoundError(f"no {prefix}_stats.csv or {prefix}_hdr.csv: is {prefix!r} a --csv prefix?")
    hlog = f"{prefix}.hlog"
    if os.path.exists(hlog):
        histograms, intervals = load_hlog(hlog)
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
    )


def compare(a: Run, b: Run, quantiles=(0.5, 0.95, 0.99, 0.999)) -> pd.DataFrame:
    """Per name present in both runs: request counts, exact percentiles of each run and the ratio b / a."""
    rows = []
    names = [("", "Aggregated")] + sorted(set(a.histograms.keys()) & set(b.histograms.keys()))
    for t, n in names:
        row = {"Type": t, "Name": n, "count_a": a.histograms.count(t or None, n if t else None)}
        row["count_b"] = b.histograms.count(t or None, n if t else None)
        for q in quantiles:
            label = f"p{100 * q:g}"
            va, vb = (run.percentile(n, q, request_type=t or None) for run in (a, b))
            row[f"{label}_a"], row[f"{label}_b"] = va, vb
            row[f"{label}_ratio"] = (vb / va) if va and vb is not None else None
        rows.append(row)
    return pd.DataFrame(rows)

"""A run's results as a comparison reads them, with the standard library alone: the histograms of ``PREFIX.hlog``,
the counts of ``PREFIX_stats.csv`` and the exact bounds of ``PREFIX_hdr.csv``.

A run is named as ``locust_rs.results.load`` takes it: the ``--csv`` prefix, one of its files
(``PREFIX_stats.csv``, ``PREFIX.hlog``...), or a directory, whose newest run it is (as ``scripts/check_results.py``
of the VoiceAssist suite picks it).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from locust_rs import _native

HistogramSet = _native.HistogramSet

#: The files of a run, by the suffix each adds to its prefix: what names a run besides the prefix itself.
_SUFFIXES = ("_stats.csv", "_hdr.csv", ".hlog", "_stats_history.csv", "_failures.csv", "_exceptions.csv", ".html")

Key = tuple[str, str]
#: a key's raw or corrected side: (type, name, corrected)
Series = tuple[str, str, bool]


class RunNotFound(ValueError):
    """A path that names no run's results (or one without the histograms a comparison needs)."""


def unescape_tag(tag: str) -> str:
    for esc, ch in (("%2C", ","), ("%20", " "), ("%09", "\t"), ("%0A", "\n"), ("%0D", "\r"), ("%25", "%")):
        tag = tag.replace(esc, ch)
    return tag


def read_hlog(path: str | os.PathLike) -> tuple[HistogramSet, list[dict], dict[Series, list[str]]]:
    """A locust-rs ``.hlog``: the per-(type, name) totals as a :py:class:`HistogramSet`; the intervals (start,
    length, max and series tag per line); and each series' intervals as encoded histograms, by (type, name,
    corrected), the aggregate's under ("", "Aggregated", corrected). Untagged lines (the aggregate) and lines tagged
    ``corrected`` are not added to the set, whose aggregate is computed from the keys."""
    hs = HistogramSet()
    rows = []
    periods: dict[Series, list[str]] = {}
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
                periods.setdefault(("", "Aggregated", tag == "corrected"), []).append(b64)
                continue
            corrected = tag.startswith("corrected:")
            request_type, _, name = tag.removeprefix("corrected:").partition(":")
            request_type, name = unescape_tag(request_type), unescape_tag(name)
            hs.add_encoded(request_type, name, b64, corrected)
            periods.setdefault((request_type, name, corrected), []).append(b64)
    return hs, rows, periods


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV as dicts, or [] when the file is missing."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def find_prefix(path: str | os.PathLike) -> str:
    """The ``--csv`` prefix that ``path`` names: the prefix itself, one of its files, or a directory (its newest
    run, by the time its ``_stats.csv`` or ``.hlog`` was written)."""
    p = Path(path)
    if p.is_dir():
        found = sorted(
            (f for pattern in ("*_stats.csv", "*.hlog") for f in p.glob(pattern)),
            key=lambda f: (f.stat().st_mtime, f.name),
        )
        if not found:
            raise RunNotFound(f"{path}: a directory with no run in it (no *_stats.csv or *.hlog)")
        newest = str(found[-1])
        return newest.removesuffix("_stats.csv") if newest.endswith("_stats.csv") else newest.removesuffix(".hlog")
    text = str(p)
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and p.exists():
            return text.removesuffix(suffix)
    return text


@dataclass
class Counts:
    requests: int = 0
    #: -1: unknown (a run without its _stats.csv row)
    failures: int = 0
    #: the exact mean response time (ms) from _stats.csv, when read from it
    average: float | None = None


@dataclass
class RunData:
    """One run, as a comparison needs it."""

    prefix: str
    histograms: HistogramSet = field(repr=False)
    #: Request and failure counts per (type, name) from ``_stats.csv``; the aggregate under ("", "Aggregated")
    counts: dict[Key, Counts] = field(default_factory=dict)
    #: Exact (min, max) in ms per (type, name, corrected) from ``_hdr.csv``: a bucket's edge never goes beyond them
    bounds: dict[Series, tuple[float, float]] = field(default_factory=dict)
    #: Each series' histograms second by second, encoded as in the ``.hlog`` (:py:func:`read_hlog`)
    periods: dict[Series, list[str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return os.path.basename(self.prefix)

    @classmethod
    def from_rows(
        cls,
        prefix: str,
        histograms: HistogramSet,
        stats: list[dict],
        hdr: list[dict],
        periods: dict[Series, list[str]] | None = None,
    ) -> RunData:
        """A run from what is already read: the histograms, the rows of ``_stats.csv`` and ``_hdr.csv``, and the
        ``.hlog``'s periods."""
        counts: dict[Key, Counts] = {}
        for row in stats:
            name, t = row.get("Name"), _text(row.get("Type"))
            if not isinstance(name, str):
                continue
            key = ("", "Aggregated") if name == "Aggregated" and not t else (t, name)
            average = row.get("Average Response Time")
            counts[key] = Counts(
                int(float(row.get("Request Count") or 0)),
                int(float(row.get("Failure Count") or 0)),
                float(average) if average not in (None, "") and average == average else None,
            )
        bounds: dict[tuple[str, str, bool], tuple[float, float]] = {}
        for row in hdr:
            t, n = _text(row.get("Type")), _text(row.get("Name"))
            for corrected, pre in ((False, ""), (True, "Corrected ")):
                lo, hi = row.get(f"{pre}Min"), row.get(f"{pre}Max")
                if lo not in (None, "") and hi not in (None, "") and lo == lo:  # NaN from a frame is not a bound
                    try:
                        bounds[(t, n, corrected)] = (float(lo), float(hi))
                    except (TypeError, ValueError):
                        continue
        return cls(prefix, histograms, counts, bounds, periods or {})


def _text(value) -> str:
    """A CSV cell as text: a frame's NaN (an empty cell) is ""."""
    return value if isinstance(value, str) else ""


def load(path: str | os.PathLike) -> RunData:
    """Reads the run ``path`` names (see the module's docs). A run needs its ``.hlog``: the exact histograms are
    what the intervals are computed from, and a run with ``--no-hdr-metrics`` has none."""
    prefix = find_prefix(path)
    hlog = f"{prefix}.hlog"
    if not os.path.exists(hlog):
        if os.path.exists(f"{prefix}_stats.csv"):
            raise RunNotFound(
                f"{prefix}: no {os.path.basename(hlog)} beside {os.path.basename(prefix)}_stats.csv; a comparison "
                "needs the run's exact histograms (a run with --csv writes them, unless --no-hdr-metrics)"
            )
        raise RunNotFound(f"{path}: no run's results there (no {os.path.basename(prefix)}_stats.csv or .hlog)")
    try:
        histograms, _, periods = read_hlog(hlog)
    except (OSError, ValueError) as e:
        raise RunNotFound(f"{hlog}: not a readable .hlog ({e})") from None
    try:
        stats, hdr = read_csv(f"{prefix}_stats.csv"), read_csv(f"{prefix}_hdr.csv")
        return RunData.from_rows(prefix, histograms, stats, hdr, periods)
    except (OSError, ValueError, csv.Error) as e:
        raise RunNotFound(f"{prefix}: its _stats.csv or _hdr.csv is not readable ({e})") from None

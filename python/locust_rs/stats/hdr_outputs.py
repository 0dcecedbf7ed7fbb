"""HDR outputs: exact percentiles, coordinated-omission correction, the ``PREFIX_hdr.csv`` and
``PREFIX.hlog`` files, the HDR page and the web UI's "Exact percentiles" tab.

Every ``events.request`` is recorded once, by the statistics core (:py:mod:`locust_rs.stats`),
which is also what Locust's own tables and files read. This module is the Locust glue for the
outputs only: at ``init`` it starts an :py:class:`HdrRun` over the core, writes the ``.hlog``
interval by interval, and writes the rest at the end. Workers ship their figures to the master
through Locust's own stats report, so the master's outputs are the merge.

Values are recorded in microseconds (3 significant digits, 1 µs to 1 h) and reported in
milliseconds, Locust's unit.
"""

from __future__ import annotations

from locust.runners import MasterRunner, WorkerRunner

import csv
import logging
import os
import time
from collections.abc import Sequence

import gevent

from locust_rs import _native
from locust_rs._locust import state as _state
from locust_rs.stats import RequestStats, hdr_page, outputs, webui

HistogramSet = _native.HistogramSet
logger = logging.getLogger(__name__)

#: The ``.hlog`` interval, in seconds.
INTERVAL = 1.0
QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999)
QUANTILE_LABELS = ("p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99")
AGGREGATE = "Aggregated"


class _Hdr:
    """The HDR outputs' state of one run (on its environment, :py:mod:`locust_rs._locust.state`)."""

    def __init__(self) -> None:
        #: this node's outputs, while a run that keeps its statistics in the native core is set up and they are on
        #: (not with ``LOCUST_RS_METRICS=0`` or ``--no-hdr-metrics``)
        self.run: HdrRun | None = None


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


class HdrRun:
    """The HDR outputs of one Locust run on this node, read from the statistics core
    (:py:mod:`locust_rs.stats`): the same entries Locust's own tables and files show.

    ``total`` is a snapshot of every entry's cumulative histograms (since the start or the last stats
    reset; on the master, merged from the workers' reports). The ``.hlog`` gets what the core recorded
    in each interval.
    """

    def __init__(self, environment, stats) -> None:
        self.environment = environment
        self.stats = stats
        runner = environment.runner
        self.is_worker = isinstance(runner, WorkerRunner)
        self.is_master = isinstance(runner, MasterRunner)
        self.start_time = time.time()
        self.interval_start = self.start_time
        self.hlog: HlogWriter | None = None
        self._ticker = None
        # Set by finish(): a ticker killed without blocking may still run once, and must not reopen the file.
        self._finished = False
        opts = environment.parsed_options
        self.csv_prefix = getattr(opts, "csv_prefix", None) if opts is not None else None
        self.hlog_path = f"{self.csv_prefix}.hlog" if self.csv_prefix and not self.is_worker else None
        self.peak_users = 0
        # The final rows, computed once at the end for every output that shows them.
        self._final_rows: list[dict] | None = None
        if self.hlog_path:
            stats.core.track_intervals()

    @property
    def total(self) -> HistogramSet:
        """A fresh copy of every entry's histograms: take it once per use, and only where a merge needs one (the rows
        and the charts read the core entry by entry)."""
        return self.stats.core.histograms()

    # the interval log
    def start(self) -> None:
        if self._ticker is None and not self.is_worker:
            self._ticker = gevent.spawn(self._tick)

    def _tick(self) -> None:
        while True:
            gevent.sleep(INTERVAL)
            try:
                self.write_interval()
            except Exception:  # noqa: BLE001 - metrics must never stop a run
                logger.exception("locust-rs metrics: interval failed")

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.kill(block=False)
            self._ticker = None
        self.write_interval()

    def write_interval(self) -> None:
        if not self.hlog_path or self._finished:
            return
        now = time.time()
        # Taken every second whatever happens to the file: the core's interval histograms must not pile up.
        interval = self.stats.core.take_interval_log()
        path = self.hlog_path
        if not outputs.write(self.environment, path, lambda: self._write_hlog(path, interval, now)):
            # Said once (outputs.write); the .hlog is given up, and the other outputs are still written.
            self._drop_hlog()
        self.interval_start = now

    def _write_hlog(self, path: str, interval, now: float) -> None:
        if self.hlog is None:
            self.hlog = HlogWriter(path, self.start_time)
        if interval:
            self.hlog.write(interval, self.interval_start, now)

    def _drop_hlog(self) -> None:
        hlog, self.hlog = self.hlog, None
        if hlog is not None:
            try:
                hlog.close()
            except OSError:
                pass  # the failure that made us drop it is already said

    # outputs
    def rows(self) -> list[dict]:
        """One dict per (type, name) plus the aggregate: count, min, max, mean, stdev and the percentiles in ms, raw
        and (where known) corrected. Once the outputs are written (:py:meth:`finish`), the rows they were written
        from."""
        if self._final_rows is not None:
            return self._final_rows
        out = []
        stats = self.stats
        # Sorted as the outputs list them; the aggregate, which the core gives last, stays last.
        summaries = stats.core.summaries(list(QUANTILES))
        summaries[:-1] = sorted(summaries[:-1], key=lambda s: (s[0], s[1]))
        for t, n, raw, cor in summaries:
            entry = stats.total if t is None else stats.entries.get((n, t))
            if entry is not None:
                # Count, min, max and mean as Locust's tables have them (exact, not bucketed); the percentiles are
                # the same histogram's.
                raw["count"] = entry.num_requests - entry.num_none_requests
                raw["min"] = entry.min_response_time or 0.0
                raw["max"] = entry.max_response_time
                raw["mean"] = entry.avg_response_time
                raw["percentiles"] = [(q, entry.get_response_time_percentile(q)) for q in QUANTILES]
            fails = entry.num_failures if entry is not None else 0
            name = n if n is not None else AGGREGATE
            out.append({"type": t or "", "name": name, "raw": raw, "corrected": cor, "failures": fails})
        return out

    def write_csv(self, path: str, rows: list[dict] | None = None) -> None:
        stats = ("Count", "Min", "Max", "Mean", "StdDev", *QUANTILE_LABELS)
        header = ["Type", "Name", *stats, *(f"Corrected {s}" for s in stats)]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for row in self.rows() if rows is None else rows:
                cells = [row["type"], row["name"]]
                for side in (row["raw"], row["corrected"]):
                    if side is None:
                        cells += [""] * len(stats)
                        continue
                    cells += [side["count"], *(_fmt(side[k]) for k in ("min", "max", "mean", "stdev"))]
                    cells += [_fmt(v) for _, v in side["percentiles"]]
                w.writerow(cells)

    def finish(self, sections: Sequence[str] = ()) -> None:
        """The outputs, from the statistics core's final figures; ``sections`` (HTML, from the run's other reports,
        such as the arrival rates) go on the HDR page and in Locust's report."""
        # Each output on its own (stats.outputs): one that cannot be written (a full disk) is said once and left out
        # of the files written, and the next ones are still tried.
        env = self.environment
        self.stop()
        self._finished = True
        if self.hlog is not None and self.hlog_path:
            hlog, self.hlog = self.hlog, None
            outputs.write(env, self.hlog_path, hlog.close)
        if self.is_worker:
            return
        # One pass over the entries for every output (the CSV, the page, the console table after them).
        self._final_rows = self.rows()
        if self.csv_prefix:
            path = f"{self.csv_prefix}_hdr.csv"
            outputs.write(env, path, lambda: self.write_csv(path))
        html_file = getattr(env.parsed_options, "html_file", None)
        if html_file:
            base = html_file[:-5] if html_file.endswith(".html") else html_file
            page = f"{base}_hdr.html"
            if outputs.write(env, page, lambda: self._write_page(page, sections)):
                # Locust's report, rewritten with the link: if that fails it may be cut short, and is not listed.
                outputs.write(
                    env, html_file, lambda: hdr_page.link_back(html_file, os.path.basename(page), "".join(sections))
                )

    def _write_page(self, page: str, sections: Sequence[str]) -> None:
        html = hdr_page.render(self, QUANTILE_LABELS, sections=sections)
        with open(page, "w", encoding="utf-8") as f:
            f.write(html)

    def context(self) -> dict:
        """Host, start (UTC), duration (s), peak users and the path of Locust's report, for the HDR page."""
        total = self.stats.total
        start = total.start_time
        end = total.last_request_timestamp
        html_file = getattr(self.environment.parsed_options, "html_file", None)
        return {
            "host": self.environment.host,
            "start": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start)) if start else "",
            "duration": (end - start) if end and start else None,
            "users": self.peak_users,
            "locust_report": os.path.basename(html_file) if html_file else None,
        }

    def table(self) -> str:
        """The end-of-run console table of percentiles, the run's only one (Locust's is left out while this one
        prints, see :py:func:`setup`): raw rows, and corrected rows where a key has them, with a Histogram column
        only then."""
        all_rows = self.rows()
        corrected = any(row["corrected"] is not None for row in all_rows)
        head = ("Type", "Name", *(("Histogram",) if corrected else ()), *QUANTILE_LABELS, "max", "# reqs")
        rows = [head]
        for row in all_rows:
            for side, label in ((row["raw"], "raw"), (row["corrected"], "corrected")):
                if side is not None:
                    pct = [f"{v:.3f}" for _, v in side["percentiles"]][: len(QUANTILE_LABELS)]
                    histogram = (label,) if corrected else ()
                    rows.append(
                        (row["type"], row["name"][:60], *histogram, *pct, f"{side['max']:.3f}", str(side["count"]))
                    )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        left = 3 if corrected else 2
        lines = ["Response time percentiles (exact, HDR; ms)"]
        for i, r in enumerate(rows):
            cells = [c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
            if i == 0:
                lines.append("-" * len(lines[-1]))
        return "\n".join(lines)

    def web_rows(self) -> list[dict]:
        """Rows for the web UI's tab: keys without punctuation, as its tables camel-case them. Aggregated comes last,
        as in Locust's own table."""
        out = []
        for row in self.rows():
            for side, label in ((row["raw"], "raw"), (row["corrected"], "corrected")):
                if side is None:
                    continue
                r = {"type": row["type"], "name": row["name"], "histogram": label, "count": side["count"]}
                r["failures"] = row["failures"] if label == "raw" else ""
                for k in ("min", "mean", "max"):
                    r[k] = round(side[k], 3)
                for lbl, (_, v) in zip(QUANTILE_LABELS, side["percentiles"], strict=True):
                    r[lbl.replace(".", "")] = round(v, 3)
                out.append(r)
        return out


def hlog_tag(request_type: str | None, name: str | None, corrected: bool) -> str | None:
    """The ``.hlog`` tag of a series: none for the raw aggregate (what tools that ignore tags
    read), ``corrected`` for the corrected aggregate, ``TYPE:NAME`` and ``corrected:TYPE:NAME``
    per key. Commas and whitespace, which end a tag, are percent-encoded."""
    if request_type is None:
        return "corrected" if corrected else None
    tag = f"{request_type}:{name}"
    for ch, esc in (("%", "%25"), (",", "%2C"), (" ", "%20"), ("\t", "%09"), ("\n", "%0A"), ("\r", "%0D")):
        tag = tag.replace(ch, esc)
    return f"corrected:{tag}" if corrected else tag


class HlogWriter:
    """HdrHistogram's interval log format (version 1.3), as written by Java's
    ``HistogramLogWriter`` and read by ``HistogramLogProcessor`` and the other ports. Timestamps
    are seconds relative to ``BaseTime``; ``Interval_Max`` is in ms (values are µs)."""

    def __init__(self, path: str, start_time: float) -> None:
        self.start_time = start_time
        self.f = open(path, "w")  # noqa: SIM115 - closed by close()
        stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(start_time))
        self.f.write("#[Histogram log format version 1.3]\n")
        self.f.write(f"#[StartTime: {start_time:.3f} (seconds since epoch), {stamp}]\n")
        self.f.write(f"#[BaseTime: {start_time:.3f} (seconds since epoch)]\n")
        self.f.write('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n')

    def write(self, series, start: float, end: float) -> None:
        """One interval: ``series`` as :py:meth:`StatsCore.take_interval_log` gives them."""
        head = f"{start - self.start_time:.3f},{max(end - start, 0.0):.3f},"
        lines = []
        for t, n, corrected, b64, mx in series:
            tag = hlog_tag(t, n, corrected)
            lines.append(f"Tag={tag},{head}{mx:.3f},{b64}\n" if tag else f"{head}{mx:.3f},{b64}\n")
        self.f.write("".join(lines))
        self.f.flush()

    def close(self) -> None:
        self.f.close()


# Locust hooks ---------------------------------------------------------------------------------


def current(environment) -> HdrRun | None:
    """This node's :py:class:`HdrRun` of ``environment``'s run while it is set up, else None."""
    return _state.of(environment, _Hdr).run


def add_options(parser) -> None:
    """The metrics' command-line options (``--no-hdr-metrics``, ``--hdr-expected-interval``)."""
    group = parser.add_argument_group("locust-rs metrics")
    group.add_argument(
        "--no-hdr-metrics",
        action="store_true",
        default=False,
        env_var="LOCUST_NO_HDR_METRICS",
        help="Do not record HDR histograms (exact percentiles, PREFIX_hdr.csv, PREFIX.hlog)",
    )
    group.add_argument(
        "--hdr-expected-interval",
        type=float,
        default=0.0,
        metavar="SECONDS",
        env_var="LOCUST_HDR_EXPECTED_INTERVAL",
        help="Expected interval between a user's requests of one name, for coordinated-omission correction of "
        "users without constant_pacing/constant_throughput or an expected_interval attribute (default: none)",
    )


def setup(environment) -> None:
    """At Locust's ``init``, once :py:func:`locust_rs.stats.adopt` has moved the run's statistics onto the native
    core: starts this node's :py:class:`HdrRun` (unless the HDR outputs are off, or Locust's own statistics are kept)
    and the web UI tab."""
    state = _state.of(environment, _Hdr)
    opts = environment.parsed_options
    state.run = None
    stats = environment.stats
    if not isinstance(stats, RequestStats) or environment.runner is None:
        return
    if os.environ.get("LOCUST_RS_METRICS", "1") == "0" or getattr(opts, "no_hdr_metrics", False):
        return
    run = state.run = HdrRun(environment, stats)
    # One table of percentiles at the end: this run's (print_table), which has the corrected rows, not Locust's too.
    stats.exact_table_follows = not run.is_worker
    if environment.web_ui is not None and not run.is_worker:
        _extend_web_ui(environment)


WEB_TAB = "locust-rs-hdr"


def _extend_web_ui(environment) -> None:
    """A live "Exact percentiles" tab, through the extension points of Locust's React UI (``extended_tabs``,
    ``extended_tables``, ``extended_stats`` in ``/stats/requests``), plus the CSV and the HDR page as downloads."""
    from flask import Response

    web_ui = environment.web_ui
    state = _state.of(environment, _Hdr)
    structure = [
        {"key": "type", "title": "Type"},
        {"key": "name", "title": "Name"},
        {"key": "histogram", "title": "Histogram"},
        {"key": "count", "title": "# Requests"},
        {"key": "failures", "title": "# Fails"},
        {"key": "min", "title": "Min (ms)"},
        {"key": "mean", "title": "Mean (ms)"},
        *({"key": lbl.replace(".", ""), "title": f"{lbl} (ms)"} for lbl in QUANTILE_LABELS),
        {"key": "max", "title": "Max (ms)"},
    ]
    webui.add_tab(
        web_ui, WEB_TAB, "Exact percentiles", structure, lambda: None if state.run is None else state.run.web_rows()
    )
    args = web_ui.template_args
    args["extended_csv_files"] = [
        *args.get("extended_csv_files", []),
        {"href": "./locust-rs/hdr.csv", "title": "Download exact percentiles CSV (HDR)"},
        {"href": "./locust-rs/hdr.html", "title": "Exact percentiles and distribution chart (HDR)"},
    ]

    base = webui.base_path(web_ui)

    @web_ui.app.route(f"{base}/locust-rs/hdr.csv")
    @web_ui.auth_required_if_enabled
    def _hdr_csv():
        import tempfile

        if state.run is None:
            return Response("HDR metrics are off", status=404)
        with tempfile.NamedTemporaryFile("r", suffix=".csv") as f:
            state.run.write_csv(f.name)
            data = f.read()
        return Response(data, mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=hdr.csv"})

    @web_ui.app.route(f"{base}/locust-rs/hdr.html")
    @web_ui.auth_required_if_enabled
    def _hdr_html():
        if state.run is None:
            return Response("HDR metrics are off", status=404)
        return Response(hdr_page.render(state.run, QUANTILE_LABELS), mimetype="text/html")


def on_spawning_complete(environment, user_count: int) -> None:
    run = current(environment)
    if run is not None:
        run.peak_users = max(run.peak_users, int(user_count or 0))


def on_test_start(environment) -> None:
    run = current(environment)
    if run is not None:
        run.start()


def print_table(environment) -> None:
    """The exact table (raw and corrected), at ``quit``: after Locust's own end-of-run tables."""
    run = current(environment)
    if run is not None and not run.is_worker and run.stats.total.num_requests:
        logging.getLogger("locust.stats_logger").info("%s\n", run.table())


def written_files(environment) -> list[str]:
    """The files the run wrote (Locust's and ours), for the end-of-run summary."""
    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, WorkerRunner):
        return []
    paths = []
    prefix = getattr(opts, "csv_prefix", None)
    if prefix:
        suffixes: tuple[str, ...]
        suffixes = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv", "_hdr.csv", ".hlog")
        suffixes += ("_arrival.csv",)
        paths += [prefix + suffix for suffix in suffixes]
    html = getattr(opts, "html_file", None)
    if html:
        base = html[:-5] if html.endswith(".html") else html
        paths += [html, f"{base}_hdr.html"]
    json_file = getattr(opts, "json_file", None)
    if json_file:
        paths.append(f"{json_file}.json")
    junit = getattr(opts, "threshold_junit", None)
    if junit:
        paths.append(junit)
    failed = outputs.not_written(environment)
    return [p for p in paths if os.path.exists(p) and p not in failed]


def print_files(environment) -> None:
    files = written_files(environment)
    if files:
        logging.getLogger("locust.stats_logger").info("Files written:\n%s\n", "\n".join(f"  {p}" for p in files))


def on_quitting(environment, sections: Sequence[str] = ()) -> None:
    """The outputs (CSV, .hlog, HTML page, with the other reports' ``sections``)."""
    run = current(environment)
    if run is not None:
        try:
            run.finish(sections)
        except Exception:  # noqa: BLE001 - never turn an output problem into a crash at exit
            logger.exception("locust-rs metrics: writing the outputs failed")


def on_test_stop(environment) -> None:
    """Nothing: the outputs keep recording until the end of the run (a stopped test can start again)."""


def html_section(environment) -> str:
    """Nothing: the HDR outputs write the pages the other reports' sections go on."""
    return ""

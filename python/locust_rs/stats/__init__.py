"""Locust's request statistics on the Rust HDR core: one set of numbers.

When a run uses locust-rs, ``environment.stats`` becomes a :py:class:`RequestStats` (Locust's class,
subclassed, and swapped in place so every reference Locust already holds sees it), and Locust's own
``events.request`` listener is replaced by a native one. Each event is then recorded once, in Rust:
counts, failures, min/max/mean, content length, per-second counts and an HDR histogram (3 significant
digits, microsecond resolution) per (method, name). Locust's console tables, CSVs, web UI, HTML report
and ``--json`` read these entries through Locust's ``StatsEntry`` interface, and the HDR outputs
(``_hdr.csv``, ``.hlog``, the HDR page) read the same histograms.

Set ``LOCUST_RS_STATS=locust`` (or pass ``--locust-stats``) to keep Locust's own statistics instead.

User classes configure what their sessions record here: :py:func:`session_interval` (coordinated-omission
correction, :py:mod:`locust_rs.stats.correction`).
"""

from __future__ import annotations

from locust import stats as _ls

import json
import os
from typing import Any, overload

from locust_rs import _native
from locust_rs.stats import outputs
from locust_rs.stats.correction import expected_interval, session_interval  # noqa: F401 - for the user classes

#: The serialized-entry key that carries a worker's coordinated-omission corrected times to the master.
CORRECTED_KEY = "locust_rs_corrected"
#: Locust's ``StatsEntryDict`` lists the keys ``StatsEntry.unserialize`` keeps; ours rides along.
_ls.StatsEntryDict.__annotations__.setdefault(CORRECTED_KEY, "list | None")


def fmt_ms(value: float | None) -> str:
    """A response time for tables: milliseconds with 3 decimals (a sub-millisecond value is never ``0``)."""
    return f"{value or 0:.3f}"


@overload
def _us(ms: float) -> float: ...
@overload
def _us(ms: float | None) -> float | None: ...
def _us(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)


class StatsEntry(_ls.StatsEntry):
    """Locust's ``StatsEntry`` whose figures live in a native entry. Locust's derived properties (``fail_ratio``,
    ``avg_response_time``, ``current_rps``, ``total_rps`` …) work unchanged on top of these attributes."""

    def __init__(self, stats, name: str, method: str, use_response_times_cache: bool = False, core=None) -> None:
        # Locust's __init__ is not called: it would assign the attributes that are properties here.
        self.stats = stats
        self.name = name
        self.method = method
        self.use_response_times_cache = use_response_times_cache
        self._c = core if core is not None else stats._core.entry(name, method)

    num_requests = property(lambda self: self._c.num_requests)
    num_none_requests = property(lambda self: self._c.num_none_requests)
    num_failures = property(lambda self: self._c.num_failures)
    total_response_time = property(lambda self: self._c.total_response_time)
    # Times are kept to the microsecond (the clock's resolution), so every output shows the same 3 decimals.
    min_response_time = property(lambda self: _us(self._c.min_response_time))
    max_response_time = property(lambda self: _us(self._c.max_response_time))
    total_content_length = property(lambda self: self._c.total_content_length)
    num_reqs_per_sec = property(lambda self: self._c.reqs_per_sec())
    num_fail_per_sec = property(lambda self: self._c.fails_per_sec())
    response_times_cache = None

    @property
    def start_time(self) -> float:
        return self._c.start_time

    @start_time.setter
    def start_time(self, value: float) -> None:
        self._c.start_time = value

    @property
    def last_request_timestamp(self) -> float | None:
        return self._c.last_request_timestamp

    @last_request_timestamp.setter
    def last_request_timestamp(self, value: float | None) -> None:
        self._c.last_request_timestamp = value

    # The ignores here and on the median and percentiles below: Locust declares int times (and a writeable dict);
    # ours are exact floats, read from the core.
    @property
    def response_times(self) -> dict[float, int]:  # type: ignore[override]
        """{response time (ms): count}, one key per HDR bucket: Locust's shape, without its rounding."""
        return dict(self._c.response_times())

    def reset(self) -> None:
        self._c.reset()

    def log(self, response_time, content_length) -> None:
        self._c.log(response_time, content_length)

    def log_error(self, error) -> None:
        self._c.log_error()

    @property
    def median_response_time(self) -> float:  # type: ignore[override]
        return _us(self._c.percentile(0.5))

    def get_response_time_percentile(self, percent: float) -> float:  # type: ignore[override]
        """The response time (ms) that ``percent`` (0.0 - 1.0) of the requests finished within, exact to 3
        significant digits and never beyond the exact min and max."""
        return _us(self._c.percentile(percent))

    def get_current_response_time_percentile(self, percent: float) -> float | None:  # type: ignore[override]
        """As above, over the last 10 seconds (Locust's window); None until this entry's window has started."""
        if not self.use_response_times_cache:
            raise ValueError(
                "StatsEntry.use_response_times_cache must be set to True to calculate the _current_ response time "
                "percentile"
            )
        return _us(self._c.current_percentile(percent))

    def extend(self, other) -> None:
        """Adds another entry's figures: one of ours (exact histograms) or Locust's (a worker's report)."""
        if isinstance(other, StatsEntry):
            self._c.extend(other._c)
            return
        self._c.extend_serialized(
            other.start_time,
            other.last_request_timestamp,
            other.num_requests,
            other.num_none_requests,
            other.num_failures,
            other.total_response_time or 0.0,
            other.min_response_time,
            other.max_response_time or 0.0,
            other.total_content_length or 0,
            [(float(k), int(v)) for k, v in (other.response_times or {}).items()],
            [(int(k), int(v)) for k, v in (other.num_reqs_per_sec or {}).items()],
            [(int(k), int(v)) for k, v in (other.num_fail_per_sec or {}).items()],
            _pairs(getattr(other, CORRECTED_KEY, None)),
        )

    # Locust's StatsEntryDict, plus CORRECTED_KEY.
    def serialize(self) -> dict:  # type: ignore[override]
        data = {key: getattr(self, key, None) for key in _ls.StatsEntryDict.__annotations__ if key != CORRECTED_KEY}
        data[CORRECTED_KEY] = self._c.corrected_times()
        return data

    def to_string(self, current=True) -> str:
        if current:
            rps, fail_per_sec = self.current_rps, self.current_fail_per_sec
        else:
            rps, fail_per_sec = self.total_rps, self.total_fail_per_sec
        width = (_ls.STATS_NAME_WIDTH - _ls.STATS_TYPE_WIDTH) + 4
        return (
            f"{(self.method and self.method + ' ') or '':<{_ls.STATS_TYPE_WIDTH}} {self.name:<{width}} "
            f"{self.num_requests:7d} {f'{self.num_failures}({self.fail_ratio * 100:.2f}%)':>12} |"
            f"{fmt_ms(self.avg_response_time):>9} {fmt_ms(self.min_response_time):>9} "
            f"{fmt_ms(self.max_response_time):>9} {fmt_ms(self.median_response_time):>9} | "
            f"{rps or 0:7.2f} {fail_per_sec or 0:11.2f}"
        )

    def percentile(self) -> str:
        if not self.num_requests:
            raise ValueError("Can't calculate percentile on url with no successful requests")
        cells = " ".join(f"{fmt_ms(self.get_response_time_percentile(p)):>9}" for p in _ls.PERCENTILES_TO_REPORT)
        return (
            f"{self.method or '':<{_ls.STATS_TYPE_WIDTH}} {self.name:<{_ls.STATS_NAME_WIDTH}} "
            f"{self.num_requests:8d} {cells}"
        )

    def to_dict(self, escape_string_values=False) -> dict:
        d: dict[str, Any] = super().to_dict(escape_string_values)
        # Locust rounds min and max to whole milliseconds here; ours keep 3 decimals, as every time does here.
        d["min_response_time"] = round(self.min_response_time or 0, 3)
        d["max_response_time"] = round(self.max_response_time, 3)
        for k in ("avg_response_time", "median_response_time"):
            d[k] = round(d[k], 3)
        for p in _ls.PERCENTILES_TO_STATISTICS:
            d[f"response_time_percentile_{p}"] = round(d[f"response_time_percentile_{p}"], 3)
        return d


def _pairs(items) -> list[tuple[float, int]] | None:
    # msgpack carries the (value, count) tuples as lists.
    return None if items is None else [(float(v), int(n)) for v, n in items]


class _Entries(_ls.EntriesDict):
    """``stats.entries``: (name, method) -> :py:class:`StatsEntry`. Locust's master code stores its own
    ``StatsEntry`` here for a name first reported by a worker; it is turned into ours on the way in."""

    def __missing__(self, key):
        entry = self[key] = StatsEntry(self.request_stats, key[0], key[1], self.request_stats.use_response_times_cache)
        return entry

    def __setitem__(self, key, value) -> None:
        if not isinstance(value, StatsEntry):
            ours = StatsEntry(self.request_stats, key[0], key[1], self.request_stats.use_response_times_cache)
            if value.num_requests or value.num_failures:
                ours.extend(value)
            value = ours
        super().__setitem__(key, value)


class RequestStats(_ls.RequestStats):
    """Locust's ``RequestStats`` over the native core. ``events.request`` is recorded by ``core.on_request``;
    ``log_request`` and ``log_error`` remain for code that calls them directly."""

    #: Set when the HDR outputs print the run's table of percentiles: Locust's would repeat it.
    exact_table_follows = False

    def __init__(self, use_response_times_cache=True) -> None:
        self.use_response_times_cache = use_response_times_cache
        self._adopt()

    def _adopt(self) -> None:
        self._core = _native.StatsCore(self.use_response_times_cache, self._on_new_entry, self._on_error)
        self.entries = _Entries(self)
        self.errors = {}
        self.total = StatsEntry(self, "Aggregated", "", self.use_response_times_cache, core=self._core.total)
        self.history = []

    @property
    def core(self):
        """The native statistics (``locust_rs._native.StatsCore``)."""
        return self._core

    def _on_new_entry(self, name: str, method: str, core) -> None:
        entry = StatsEntry(self, name, method, self.use_response_times_cache, core=core)
        dict.__setitem__(self.entries, (name, method), entry)

    def _on_error(self, method: str, name: str, error) -> None:
        key = _ls.StatsError.create_key(method, name, error)
        entry = self.errors.get(key)
        if not entry:
            entry = self.errors[key] = _ls.StatsError(method, name, error)
        entry.occurred()

    def log_request(self, method, name, response_time, content_length) -> None:
        self._core.log_request(method, name, response_time, content_length)

    def log_error(self, method, name, error) -> None:
        self._core.log_error(method, name, error)

    def reset_all(self) -> None:
        self._core.reset_all()
        self.errors = {}
        self.history = []

    def clear_all(self) -> None:
        self._core.clear_all()
        self.entries = _Entries(self)
        self.total = StatsEntry(self, "Aggregated", "", self.use_response_times_cache, core=self._core.total)
        self.errors = {}
        self.history = []


def wanted(environment) -> bool:
    """Whether this run keeps its statistics in the native core (the default) or in Locust's own classes."""
    if os.environ.get("LOCUST_RS_STATS", "").lower() == "locust":
        return False
    return not getattr(environment.parsed_options, "locust_stats", False)


def adopt(environment) -> RequestStats | None:
    """Moves ``environment.stats`` onto the native core, in place, and puts the native listener where Locust's
    request listener was. Returns the stats, or None when Locust's own are kept."""
    _install_csv_writer()
    if not wanted(environment):
        return None
    stats = environment.stats
    if not isinstance(stats, RequestStats):
        stats.__class__ = RequestStats
        stats._adopt()
    handlers = environment.events.request._handlers
    # An earlier run's statistics core on the same events object (two runs in one process, one after the other):
    # its listener goes, or this run's requests would land in that run's statistics too.
    handlers[:] = [
        h
        for h in handlers
        if not (type(getattr(h, "__self__", None)) is _native.StatsCore and h.__self__ is not stats._core)
    ]
    listener = stats._core.on_request
    for i, handler in enumerate(handlers):
        if getattr(handler, "__qualname__", "").endswith("Runner.__init__.<locals>.on_request"):
            handlers[i] = listener
            break
    else:
        if not any(getattr(h, "__self__", None) is stats._core for h in handlers):
            environment.events.request.add_listener(listener)
    _install_formatting()
    return stats


def add_options(parser) -> None:
    parser.add_argument(
        "--locust-stats",
        action="store_true",
        default=False,
        env_var="LOCUST_LOCUST_STATS",
        # The statistics are chosen once, at start-up: a box in the web form could not change them for a run.
        include_in_web_ui=False,
        help="Keep Locust's own (bucketed) statistics instead of locust-rs's exact ones; also turns off the HDR "
        "outputs, which would otherwise be a second set of numbers",
    )


# Locust's module-level table and CSV code formats percentiles as integers; these replace it while a run
# uses the native core. ----------------------------------------------------------------------------------


def get_percentile_stats_summary(stats) -> list[str]:
    if not isinstance(stats, RequestStats):
        return _original["get_percentile_stats_summary"](stats)

    labels = _ls.get_readable_percentiles(_ls.PERCENTILES_TO_REPORT)
    summary = ["Response time percentiles (exact, HDR; ms)"]
    summary.append(
        f"{'Type':<{_ls.STATS_TYPE_WIDTH}} {'Name':<{_ls.STATS_NAME_WIDTH}} {'# reqs':>8} "
        + " ".join(f"{label:>9}" for label in labels)
    )
    separator = f"{'-' * _ls.STATS_TYPE_WIDTH}|{'-' * _ls.STATS_NAME_WIDTH}|{'-' * 8}|" + "|".join(
        "-" * 9 for _ in labels
    )
    summary.append(separator)
    for key in sorted(stats.entries.keys()):
        r = stats.entries[key]
        if r.num_requests - r.num_none_requests:
            summary.append(r.percentile())
    summary.append(separator)
    if stats.total.num_requests - stats.total.num_none_requests:
        summary.append(stats.total.percentile())
    return summary


def print_percentile_stats(stats) -> None:
    # Locust's end-of-run table of percentiles, with its blank line, unless the HDR outputs print the run's one.
    if not (isinstance(stats, RequestStats) and stats.exact_table_follows):
        _original["print_percentile_stats"](stats)


def get_stats_summary(stats, current=True) -> list[str]:
    if not isinstance(stats, RequestStats):
        return _original["get_stats_summary"](stats, current)
    width = (_ls.STATS_NAME_WIDTH - _ls.STATS_TYPE_WIDTH) + 4
    summary = [
        f"{'Type':<{_ls.STATS_TYPE_WIDTH}} {'Name':<{width}} {'# reqs':>7} {'# fails':>12} |"
        f"{'Avg':>9} {'Min':>9} {'Max':>9} {'Med':>9} | {'req/s':>7} {'failures/s':>11}"
    ]
    separator = (
        f"{'-' * _ls.STATS_TYPE_WIDTH}|{'-' * width}|{'-' * 7}|{'-' * 13}|{'-' * 9}|{'-' * 9}|{'-' * 9}|"
        f"{'-' * 10}|{'-' * 8}|{'-' * 11}"
    )
    summary.append(separator)
    for key in sorted(stats.entries.keys()):
        summary.append(stats.entries[key].to_string(current=current))
    summary.append(separator)
    summary.append(stats.total.to_string(current=current))
    return summary


def _percentile_fields(self, stats_entry, use_current: bool = False):
    if not isinstance(stats_entry, StatsEntry):
        return _original["_percentile_fields"](self, stats_entry, use_current)
    if not stats_entry.num_requests:
        return self.percentiles_na
    if use_current and stats_entry.use_response_times_cache:
        values = [stats_entry.get_current_response_time_percentile(x) or 0 for x in self.percentiles_to_report]
    else:
        values = [stats_entry.get_response_time_percentile(x) for x in self.percentiles_to_report]
    return [round(v, 3) for v in values]


def _csv_failed(self, handle, error: OSError) -> None:
    """One of Locust's CSV files could not be written (a full disk): said once, left out of the files written, and
    the run exits non-zero (:py:mod:`locust_rs.stats.outputs`), as for locust-rs's own outputs."""
    outputs.failed(self.environment, handle.name, error)


def _close_files(self) -> None:
    """The requests, failures and exceptions CSVs rewritten with the final figures before they close: Locust rewrites
    them once a second, so its last write misses the end of the run. The one place the final CSV is fixed, for
    locust-rs's statistics and for Locust's own (``--locust-stats``) alike. Each file on its own: one that cannot be
    written is said once, and the others are still written and closed."""
    for handle, writer, write in (
        (self.requests_csv_filehandle, self.requests_csv_writer, self.requests_csv),
        (self.failures_csv_filehandle, self.failures_csv_writer, self.failures_csv),
        (self.exceptions_csv_filehandle, self.exceptions_csv_writer, self.exceptions_csv),
    ):
        if not handle.closed:
            try:
                handle.seek(0)
                handle.truncate()
                write(writer)
            except OSError as e:
                _csv_failed(self, handle, e)
    for handle in (
        self.requests_csv_filehandle,
        self.stats_history_csv_filehandle,
        self.failures_csv_filehandle,
        self.exceptions_csv_filehandle,
    ):
        try:
            handle.close()  # Locust's close_files, one file at a time: a close flushes, and may fail
        except OSError as e:
            _csv_failed(self, handle, e)


def _stats_writer(self) -> None:
    """Locust's CSV loop, ended quietly once the files are closed. Locust closes them at shutdown without stopping
    this greenlet; a yield after that (the interpreter joining threads at exit) let it write to a closed file and print
    a traceback after the verdict, the run's last line."""
    try:
        _original["stats_writer"](self)
    except ValueError:
        if not self.requests_csv_filehandle.closed:
            raise
    except OSError as e:
        # A full disk: Locust's loop writes the four files in turn and cannot say which one failed, so none of them
        # is whole. Said once, not a traceback; the loop ends, and the end of the run tries each file again.
        for handle in (
            self.requests_csv_filehandle,
            self.stats_history_csv_filehandle,
            self.failures_csv_filehandle,
            self.exceptions_csv_filehandle,
        ):
            _csv_failed(self, handle, e)


def _serialized(stats) -> list[dict]:
    # Locust's serialize_stats strips (resets) every entry, so its --json output emptied the tables printed after it.
    return [e.serialize() for e in stats.entries.values() if e.num_requests or e.num_failures]


def print_stats_json(stats) -> None:
    if not isinstance(stats, RequestStats):
        return _original["print_stats_json"](stats)
    print(json.dumps(_serialized(stats), indent=4))


def save_stats_json(stats, filename: str) -> None:
    if not isinstance(stats, RequestStats):
        return _original["save_stats_json"](stats, filename)
    with open(f"{filename}.json", "w") as file:
        json.dump(_serialized(stats), file, indent=4)


_original: dict = {}


def _install_formatting() -> None:
    if "get_stats_summary" in _original:
        return
    for name in ("print_stats_json", "save_stats_json", "print_percentile_stats"):
        _original[name] = getattr(_ls, name)
        setattr(_ls, name, globals()[name])
    _original["get_percentile_stats_summary"] = _ls.get_percentile_stats_summary
    _original["get_stats_summary"] = _ls.get_stats_summary
    _original["_percentile_fields"] = _ls.StatsCSV._percentile_fields
    _ls.get_percentile_stats_summary = get_percentile_stats_summary
    _ls.get_stats_summary = get_stats_summary
    # A method of Locust's class, replaced on purpose (hence the ignore; as in _install_csv_writer).
    _ls.StatsCSV._percentile_fields = _percentile_fields  # type: ignore[method-assign]
    _install_csv_writer()


def _install_csv_writer() -> None:
    """The final CSV and the writer's quiet end, whichever statistics the run keeps."""
    if "close_files" in _original:
        return
    _original["close_files"] = _ls.StatsCSVFileWriter.close_files
    _original["stats_writer"] = _ls.StatsCSVFileWriter.stats_writer
    # Methods of Locust's class, replaced on purpose (hence the ignores).
    _ls.StatsCSVFileWriter.close_files = _close_files  # type: ignore[method-assign]
    _ls.StatsCSVFileWriter.stats_writer = _stats_writer  # type: ignore[method-assign]

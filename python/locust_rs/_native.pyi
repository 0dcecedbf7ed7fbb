"""Type stubs for the Rust core, locust_rs._native (crates/locust-rs/src/lib.rs registers these names).

Checked against the built module by ``make stubtest`` (mypy's stubtest). Every class is final, as pyo3
classes are unless declared subclassable.
"""

from collections.abc import Callable
from typing import Any, final

__version__: str
USER_AGENT: str
ERROR_KINDS: list[str]
"""The kind of every engine error a NativeError can carry (locust_rs._errors maps each)."""

def configure(worker_threads: int | None = None) -> int:
    """Sets the tokio worker-thread count for runtimes built from now on; returns the count in force."""

def runtime_started() -> bool:
    """True once this process has built its runtime (False again in a fresh fork child)."""

def wakeup_fd() -> int:
    """The handle the gevent watcher listens on: an eventfd or a pipe's read end, a socket on Windows (starts the
    runtime if needed)."""

def wakeup_backend() -> str:
    """The wakeup in force: "eventfd", "pipe" (other Unixes, or LOCUST_RS_WAKEUP=pipe) or "socketpair"."""

def drain(max: int = 512) -> list[tuple[int, NativeResponse | NativeError | bytes | None]]:
    """Takes up to ``max`` finished jobs as (ticket id, value)."""

def flush() -> None:
    """Hands the jobs submitted since the last flush to tokio (the bridge calls it when the hub is about to wait)."""

def drive() -> int:
    """The inline engine's turn: starts the queued jobs and runs tokio until it has nothing left to run. 1 if
    completions wait to be drained, plus 2 if work is left, plus 4 if jobs are in flight; 0 on the threaded engine."""

def engine() -> tuple[str, str | None]:
    """The engine this process runs, "inline" (on the Python thread) or "thread", and why not the inline one where it
    was asked for (by default, on Linux) and could not be had."""

def engine_fd() -> int | None:
    """The inline engine's epoll fd, which the hub watches; None on the threaded engine."""

def _submit_panicking_task() -> Ticket:
    """For tests: a task that panics; its waiter receives NativeError(kind="internal"). Only in a build with the
    test-hooks cargo feature (make install FEATURES=test-hooks)."""

def _park_after_readiness(ms: int, times: int) -> None:
    """Test hook (``test-hooks`` builds): park the thread that reads a socket for ``ms`` after each of its next
    ``times`` readiness events, before it reads."""

def clock_counts() -> tuple[int, int, str]:
    """(responses timed to the kernel's receive stamp, those timed at the read, why the first of those had none)."""

@final
class Ticket:
    @property
    def id(self) -> int: ...
    def cancel(self) -> None:
        """Aborts the job; a late completion is dropped."""

@final
class ConnectionPool:
    def __new__(cls, concurrency: int = 10) -> ConnectionPool: ...
    @property
    def concurrency(self) -> int: ...
    def idle_connections(self) -> int: ...
    def in_flight(self) -> int: ...
    def close(self) -> None: ...

@final
class Client:
    def __new__(
        cls,
        *,
        network_timeout: float | None = None,
        connection_timeout: float | None = None,
        max_redirects: int = 30,
        max_retries: int = 0,
        insecure: bool = True,
        headers: dict[str, object] | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        pool: ConnectionPool | None = None,
        concurrency: int = 10,
        http2_prior_knowledge: bool = False,
        ca_bundle: str | None = None,
        client_cert: tuple[str, str | None] | None = None,
        max_body_size: int | None = None,
    ) -> Client: ...
    @property
    def pool(self) -> ConnectionPool: ...
    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, object] | None = None,
        body: bytes | None = None,
        allow_redirects: bool = True,
        stream: bool = False,
        timeout: tuple[float | None, float | None] | None = None,
        insecure: bool | None = None,
        replace_defaults: bool = False,
        max_redirects: int | None = None,
        requests_redirects: bool = False,
        ca_bundle: str | None = None,
        client_cert: tuple[str, str | None] | None = None,
        proxies: list[tuple[str, str]] | None = None,
    ) -> Ticket: ...
    def cookies(self) -> list[tuple[str, str, str, str]]: ...
    def cookie_header(self, url: str) -> str | None:
        """The Cookie header this client would send to ``url``, if any."""
    def set_cookie(self, set_cookie: str, url: str) -> None: ...
    def set_cookie_anywhere(self, name: str, value: str, path: str) -> None:
        """A cookie without a domain, sent to every host on paths under ``path``."""
    def clear_cookies(self) -> None: ...

@final
class NativeError:
    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def errno(self) -> int | None: ...
    @property
    def request(self) -> tuple[str, str] | None:
        """(method, url) of the request that failed when it is not the one submitted (the last redirect hop)."""

@final
class NativeResponse:
    @property
    def status_code(self) -> int: ...
    @property
    def reason(self) -> str | None:
        """The reason phrase the server sent, else the standard one (None over HTTP/2 or for an unknown status)."""
    @property
    def url(self) -> str: ...
    @property
    def response_time(self) -> float: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_length(self) -> int: ...
    @property
    def http_version(self) -> str: ...
    @property
    def body_error(self) -> NativeError | None: ...
    @property
    def redirected(self) -> bool: ...
    @property
    def is_stream(self) -> bool: ...
    def headers(self) -> list[tuple[str, str]]: ...
    def header(self, name: str) -> str | None: ...
    def history(self) -> list[tuple[int, str, list[tuple[str, str]], str | None, bytes]]: ...
    def read_chunk(self) -> Ticket: ...

# --- WebSocket (crates/locust-rs/src/ws/; the Python face is locust_rs.websocket) ---

def ws_connect(
    url: str,
    headers: list[tuple[str, str]] | None = None,
    subprotocols: list[str] | None = None,
    timeout: float | None = None,
    insecure: bool = True,
    max_message_size: int | None = None,
    max_queue: int = ...,
    max_write_buffer: int = ...,
) -> Ticket:
    """Opens a WebSocket; the ticket completes with a WsConnection or a NativeError. ``max_queue`` caps the bytes of
    received messages not yet taken (at the cap the socket is not read), ``max_write_buffer`` the bytes waiting to be
    written (past it the connection fails); both default to 16 MiB."""

def ws_counters() -> dict[str, int]:
    """connections_open, connections_opened, messages/bytes sent/received of this process."""

def ws_clock_ns() -> int:
    """Now, on the clock of the send and arrival stamps."""

@final
class WsConnection:
    @property
    def url(self) -> str: ...
    @property
    def subprotocol(self) -> str | None: ...
    @property
    def status(self) -> int: ...
    @property
    def handshake_ms(self) -> float: ...
    @property
    def open(self) -> bool: ...
    @property
    def pending(self) -> int: ...
    @property
    def close_status(self) -> tuple[int, str] | None: ...
    @property
    def error(self) -> NativeError | None: ...
    def send(self, data: str | bytes | bytearray | memoryview) -> int | None:
        """Queues a message; the send stamp (ns), or None if the connection is over."""
    def written_at(self, queued: int) -> int:
        """When the message sent at stamp ``queued`` went out (ns), if in the last batch written; else ``queued``."""
    def try_recv(self) -> tuple[str | bytes, int, int] | NativeError | None:
        """(message, arrival stamp ns, payload bytes), None if nothing yet, or the error that ended it."""
    def wait(self, timeout: float | None = None) -> Ticket:
        """Completes with True once a message waits or the connection is over; takes nothing."""
    def close(self, code: int = 1000, reason: str = ...) -> Ticket:
        """Starts the closing handshake; completes once the connection is over."""
    def headers(self) -> list[tuple[str, str]]: ...
    def stats(self) -> tuple[int, int, int, int]: ...

# arrival (crates/locust-rs/src/arrival/): the open-model clock of one user class.

@final
class ArrivalSchedule:
    """Releases iterations when due to free users; starts users up to ``max_users``; drops and counts the rest."""

    def __new__(
        cls,
        start_rate: float,
        stages: list[tuple[float, float]],
        poisson: bool = False,
        max_users: int = 0,
        seed: int | None = None,
        manual_clock: bool = False,
    ) -> ArrivalSchedule: ...
    share: float
    max_users: int
    target: float | None
    covered_after: float | None
    """On a worker: how long (s) after its clock stands still its master gives its share to the others."""
    @property
    def running(self) -> bool: ...
    @property
    def paused(self) -> bool: ...
    def pause(self, own_for: float = 0.0) -> None:
        """Holds the clock: nothing is released until ``resume``. What falls due in the next ``own_for`` seconds is
        still this process's share: dropped, not skipped."""
    def resume(self, own: bool = False) -> None:
        """Lets the clock go on; what fell due while it was held is skipped and counted (``skipped``), or with ``own``
        (the share stayed this process's) dropped."""
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def reset(self) -> None: ...
    def timer_fd(self) -> int | None:
        """The fd the gevent hub watches for this clock (answered with ``tick``); None where a thread drives it."""
    def tick(self) -> None:
        """The hub's turn: releases what is due and sets the alarm for the next due iteration."""
    def advance(self, seconds: float) -> None:
        """Moves a manual clock on and releases what fell due (a schedule made with ``manual_clock=True``)."""
    def acquire(self) -> Ticket:
        """Completes with the next iteration's due time (ns after the start), or an error once stopped."""
    def wanted_users(self) -> Ticket:
        """Completes with how many users the pool wants started."""
    def register(self) -> None: ...
    def unregister(self) -> None: ...
    def begin(self, due: int) -> float:
        """Counts the iteration due at ``due`` and records its start lag; returns the lag (ms)."""
    def since(self, due: int) -> float: ...
    def snapshot(self) -> dict[str, Any]: ...
    def lag_times(self) -> list[tuple[float, int]]: ...
    def take_delta(self) -> tuple[int, int, int, list[tuple[float, int]]]: ...
    def merge(self, scheduled: int, iterations: int, dropped: int, lag_times: list[tuple[float, int]]) -> None: ...

#: A clock this late (s) has stood still: what fell due meanwhile is dropped or skipped, not released in a burst.
ARRIVAL_STALL: float

# stats (crates/locust-rs/src/stats/): Locust's request statistics with HDR histograms, recorded once per event.

@final
class StatsCore:
    """The statistics of one ``locust_rs.stats.RequestStats``: entries per (method, name) and the total."""

    def __new__(
        cls,
        use_response_times_cache: bool = True,
        on_new_entry: Callable[[str, str, StatsEntryCore], object] | None = None,
        on_error: Callable[[str, str, object], object] | None = None,
    ) -> StatsCore: ...
    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int | None,
        exception: object = None,
        context: object = None,
        response: object = None,
        start_time: object = None,
        url: object = None,
        **_kwargs: object,
    ) -> None:
        """The ``events.request`` listener: records the event once (entry, total, failure)."""
    def record(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: object,
        interval_ms: float,
        lead_ms: float | None = None,
    ) -> None:
        """What ``on_request`` does, called directly by a session when it is the only listener. ``lead_ms``: an
        arrival-rate iteration's request, sent that long after the iteration was due (corrected = raw + lead)."""
    def log_request(self, method: str, name: str, response_time: float | None, content_length: int | None) -> None: ...
    def log_error(self, method: str, name: str, error: object) -> None: ...
    @property
    def correcting(self) -> bool: ...
    @correcting.setter
    def correcting(self, on: bool) -> None: ...
    def entry(self, name: str, method: str) -> StatsEntryCore: ...
    @property
    def total(self) -> StatsEntryCore: ...
    def reset_all(self) -> None: ...
    def clear_all(self) -> None: ...
    def histograms(self) -> HistogramSet: ...
    def track_intervals(self) -> None: ...
    @property
    def pending_intervals(self) -> int:
        """How many entries have something for the next ``.hlog`` interval (what ``take_interval_log`` visits)."""
    def take_interval_log(self) -> list[tuple[str | None, str | None, bool, str, float]]:
        """The next ``.hlog`` interval, encoded: (type, name, corrected, base64 histogram, max ms) per series, the
        aggregate (type and name None) first; only the entries that recorded something since the last call."""
    def summaries(
        self, quantiles: list[float]
    ) -> list[tuple[str | None, str | None, dict[str, Any], dict[str, Any] | None]]:
        """(type, name, raw summary, corrected summary or None) per entry with response times, then the aggregate's
        (type and name None), as ``HistogramSet.summary`` gives them; one entry at a time, no copy of every one."""
    def distribution(
        self, request_type: str | None = None, name: str | None = None, corrected: bool = False, ticks: int = 5
    ) -> list[tuple[float, float]]: ...

@final
class StatsEntryCore:
    """One entry's figures (Locust's ``StatsEntry`` fields); times in ms."""

    @property
    def num_requests(self) -> int: ...
    @property
    def num_none_requests(self) -> int: ...
    @property
    def num_failures(self) -> int: ...
    @property
    def total_response_time(self) -> float: ...
    @property
    def min_response_time(self) -> float | None: ...
    @property
    def max_response_time(self) -> float: ...
    @property
    def total_content_length(self) -> int: ...
    @property
    def start_time(self) -> float: ...
    @start_time.setter
    def start_time(self, t: float) -> None: ...
    @property
    def last_request_timestamp(self) -> float | None: ...
    @last_request_timestamp.setter
    def last_request_timestamp(self, t: float | None) -> None: ...
    def reqs_per_sec(self) -> dict[int, int]: ...
    def fails_per_sec(self) -> dict[int, int]: ...
    def response_times(self) -> list[tuple[float, int]]: ...
    def corrected_times(self) -> list[tuple[float, int]] | None: ...
    def percentile(self, q: float) -> float: ...
    def current_percentile(self, q: float) -> float | None: ...
    def reset(self) -> None: ...
    def log(self, response_time: float | None, content_length: int | None) -> None: ...
    def log_error(self) -> None: ...
    def extend(self, other: StatsEntryCore) -> None: ...
    def extend_serialized(
        self,
        start_time: float,
        last_request_timestamp: float | None,
        num_requests: int,
        num_none_requests: int,
        num_failures: int,
        total_response_time: float,
        min_response_time: float | None,
        max_response_time: float,
        total_content_length: int,
        response_times: list[tuple[float, int]],
        reqs_per_sec: list[tuple[int, int]],
        fails_per_sec: list[tuple[int, int]],
        corrected_times: list[tuple[float, int]] | None = None,
    ) -> None: ...

# hdr (crates/locust-rs/src/hdr/): keyed HDR histogram sets; recorded in µs, reported in ms.

@final
class HistogramSet:
    """Raw and (for paced users) corrected HDR histograms keyed by (request type, name). Methods that take
    request_type/name read the aggregate of all keys when both are None."""

    def __init__(self) -> None: ...
    def __len__(self) -> int: ...
    def merge(self, other: HistogramSet) -> None: ...
    def clear(self) -> None: ...
    def copy(self) -> HistogramSet: ...
    def keys(self) -> list[tuple[str, str]]: ...
    def has_corrected(self, request_type: str, name: str) -> bool: ...
    def count(self, request_type: str | None = None, name: str | None = None) -> int: ...
    def summary(
        self,
        request_type: str | None = None,
        name: str | None = None,
        corrected: bool = False,
        quantiles: list[float] | None = None,
    ) -> dict[str, object] | None:
        """count, min, max, mean, stdev and percentiles [(q, ms)]; None if absent."""
    def value_at_quantile(
        self, q: float, request_type: str | None = None, name: str | None = None, corrected: bool = False
    ) -> float | None: ...
    def distribution(
        self, request_type: str | None = None, name: str | None = None, corrected: bool = False, ticks: int = 5
    ) -> list[tuple[float, float]]: ...
    def buckets(
        self, request_type: str | None = None, name: str | None = None, corrected: bool = False
    ) -> list[tuple[float, int]]:
        """(value ms, count) of every bucket with a count, lowest first; the value as value_at_quantile gives it."""
    def encode_histogram(
        self, request_type: str | None = None, name: str | None = None, corrected: bool = False
    ) -> tuple[str, float] | None:
        """(base64 V2-deflate, max ms): an .hlog payload."""
    def add_encoded(self, request_type: str, name: str, b64: str, corrected: bool = False) -> None: ...
    @staticmethod
    def decode_buckets(b64: str) -> list[tuple[float, int]]:
        """(value ms, count) of every bucket of one base64 V2(-deflate) histogram (an .hlog interval)."""
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> HistogramSet: ...

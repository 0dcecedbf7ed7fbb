"""OpenTelemetry for locust-rs users: what ``locust --otel`` gives Locust's ``HttpUser``, for every locust-rs user.

Locust's ``HttpUser`` gets its client spans from the requests instrumentation, which wraps ``requests.Session.send``.
locust-rs sends from Rust, so that instrumentation never sees a request; this module makes the same spans around the
facades instead:

- a CLIENT span per HTTP request (``HttpUser``, ``FastHttpUser``), per WebSocket handshake and per WebSocket
  request/reply, named as the request's line in Locust's statistics (``GET /path``, or ``GET <name=>``), with the
  HTTP semantic conventions the requests instrumentation uses (``OTEL_SEMCONV_STABILITY_OPT_IN`` chooses the same
  old, stable or both attribute names there and here), and lasting exactly the Rust-measured response time;
- the W3C ``traceparent`` (and ``tracestate``, from the configured propagators) on the wire, unless the user set one;
- every request event's response time (the Rust-measured one) in ``locust.client.duration.exponential``, a base-2
  exponential histogram per statistics line, fine enough for a backend to read the same percentiles as the HDR
  outputs (Locust's own ``locust.client.duration`` has explicit buckets in seconds and a series per name only).

``hook_locust`` (called when locust-rs is imported in a Locust run) makes Locust's own ``--otel`` set-up do all of
this. ``instrument`` does it for a process that configures OpenTelemetry itself. Without either, no facade changes:
the request methods are swapped for traced ones only while instrumented, so a run without ``--otel`` pays nothing.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

EXPONENTIAL_MAX_SIZE = 8192
"""Buckets of the exponential histogram, per series. Over 1 ms to 30 s (15 doublings) this keeps scale 9: adjacent
bucket bounds 0.14 % apart, finer than the HDR core's three significant digits needs (0.1 %) on most of the range."""

EXPONENTIAL_NAME = "locust.client.duration.exponential"
MAX_STATISTICS_LINES = 200
"""Lines (request type and name) that get series of their own; later ones share one, as in Locust's histogram."""
TOO_MANY_NAMES = "Too many unique request names"

_TRACEPARENT = "traceparent"
_state: _Tracing | None = None
_traceable: list[tuple[type, str, Callable, tuple]] = []
_originals: list[tuple[type, str, Callable]] = []


# -- Locust's --otel -------------------------------------------------------------------------------------------------


def hook_locust() -> None:
    """Extends Locust's ``--otel`` set-up (``locust.opentelemetry``): after it instruments requests it instruments the
    locust-rs facades and starts the exponential duration histogram, and its meter provider gets that histogram's
    view. Costs nothing until ``--otel`` is given, and imports no OpenTelemetry package before then."""
    try:
        import locust.opentelemetry as lo
    except ImportError:
        return  # a Locust before 2.42, which has no --otel
    auto = getattr(lo, "_setup_auto_instrumentation", None)
    meter = getattr(lo, "_setup_meter_provider", None)
    if auto is None or meter is None:
        # A Locust whose set-up is not the one this extends: its --otel runs without locust-rs's spans.
        logging.getLogger(__name__).debug("locust.opentelemetry has changed; locust-rs users are not traced")
        return
    if getattr(auto, "_locust_rs", False):
        return

    def setup_auto_instrumentation() -> None:
        # Locust calls this last, once the providers are global.
        auto()
        try:
            instrument()
        except ImportError as e:
            # As Locust treats a missing instrumentation package: the run goes on without spans.
            logging.getLogger(__name__).warning(
                "locust-rs users are not traced: %s. Install locust-rs[otel] (or locust[otel]).", e
            )
        # locust.opentelemetry imports events only from Locust 2.44
        from locust import events

        record_durations(events)

    def setup_meter_provider(resource, exporters):
        # Locust builds its MeterProvider inside this function with no way to pass views; it is built with them
        # here (the SDK takes views only at construction).
        from opentelemetry.sdk import metrics as sdk_metrics

        cls = sdk_metrics.MeterProvider
        sdk_metrics.MeterProvider = functools.partial(cls, views=duration_views())  # type: ignore[misc, assignment]
        try:
            return meter(resource, exporters)
        finally:
            sdk_metrics.MeterProvider = cls  # type: ignore[misc]

    setup_auto_instrumentation._locust_rs = True  # type: ignore[attr-defined]
    lo._setup_auto_instrumentation = setup_auto_instrumentation
    lo._setup_meter_provider = setup_meter_provider


def warn_if_untraced(environment) -> None:
    """A run given ``--otel`` whose locust-rs users are not traced says so once, at start, whatever the reason
    (no SDK, no exporter, a Locust whose set-up this does not know): its traces would otherwise just be missing."""
    options = environment.parsed_options
    if options is not None and getattr(options, "otel", False) and _state is None:
        missing = [m for m in ("opentelemetry.sdk", "opentelemetry.instrumentation") if not _installed(m)]
        hint = f"; pip install 'locust-rs[otel]' for {', '.join(missing)}" if missing else ""
        logging.getLogger(__name__).warning(
            "--otel: locust-rs users send no spans or trace headers in this run (see the messages above%s)", hint
        )


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def duration_views() -> list:
    """Views for a MeterProvider: ``locust.client.duration.exponential`` as a base-2 exponential histogram (every
    other instrument keeps the SDK's default aggregation)."""
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

    return [
        View(
            instrument_name=EXPONENTIAL_NAME,
            aggregation=ExponentialBucketHistogramAggregation(max_size=EXPONENTIAL_MAX_SIZE),
        )
    ]


def record_durations(events, meter_provider=None) -> None:
    """Records every request event's response time (the Rust-measured one) in ``locust.client.duration.exponential``,
    one series per statistics line (``request_type`` and ``name``) and failure class (``error.type``), so that a
    backend's percentiles of a series are those of the line in the HDR outputs. Locust's own
    ``locust.client.duration`` has a series per name only, which mixes ``GET /x`` with ``POST /x``."""
    from opentelemetry import metrics

    from locust_rs._native import __version__

    histogram = metrics.get_meter("locust_rs", __version__, meter_provider).create_histogram(
        EXPONENTIAL_NAME, unit="s", description="Time to last byte for requests, measured in Rust"
    )
    series: dict[tuple, dict] = {}
    lines: set[tuple] = set()

    def on_request(request_type, name, response_time, exception, **_kwargs) -> None:
        if response_time is None:
            return
        error = exception.__class__.__name__ if exception else None
        key = (request_type, name, error)
        attributes = series.get(key)
        if attributes is None:
            line = (request_type, name)
            if line not in lines and len(lines) >= MAX_STATISTICS_LINES:
                attributes = {"request_type": request_type, "name": TOO_MANY_NAMES}
            else:
                lines.add(line)
                attributes = {"request_type": request_type, "name": name}
            if error:
                attributes["error.type"] = error
            if len(series) < 4 * MAX_STATISTICS_LINES:
                series[key] = attributes
        histogram.record(response_time / 1000, attributes=attributes)

    events.request.add_listener(on_request)


def traceable(cls: type, attr: str, trace: Callable[..., Callable], *helpers) -> None:
    """Registers ``cls.attr`` to be replaced by ``trace(original, *helpers)`` while instrumented. Each facade module
    registers its own methods with its own traced wrapper (which knows the facade's URL rules and fields, and uses
    :py:func:`tracing` and the helpers below), so that this module imports none."""
    _traceable.append((cls, attr, trace, helpers))
    if _state is not None:
        _apply(cls, attr, trace, helpers)


def _apply(cls: type, attr: str, trace: Callable[..., Callable], helpers: tuple) -> None:
    original = cls.__dict__[attr]
    _originals.append((cls, attr, original))
    setattr(cls, attr, trace(original, *helpers))


def instrument(tracer_provider=None, meter_provider=None) -> None:
    """Makes every locust-rs session create client spans, send trace context and record the HTTP client duration,
    from now on.

    :param tracer_provider: where the spans go; the global one (``opentelemetry.trace.set_tracer_provider``) by
        default.
    :param meter_provider: where the ``http.client.duration`` histogram goes; the global one by default.
    """
    global _state
    first = _state is None
    _state = _Tracing(tracer_provider, meter_provider)
    if first:
        for cls, attr, trace, helpers in _traceable:
            _apply(cls, attr, trace, helpers)


def uninstrument() -> None:
    """Puts the facades' own methods back: no spans, no trace headers."""
    global _state
    while _originals:
        cls, attr, original = _originals.pop()
        setattr(cls, attr, original)
    _state = None


def instrumented() -> bool:
    return _state is not None


class _Call:
    """One traced request: its span and the attributes of its duration measurement."""

    __slots__ = ("span", "labels", "start_time")

    def __init__(self, span, labels: dict, start_time: int) -> None:
        self.span = span
        self.labels = labels
        self.start_time = start_time


class _Tracing:
    """What the requests instrumentation does around ``Session.send``, for a request the Rust engine sends: the same
    attributes under the same semantic-convention mode, the same ``OTEL_PYTHON_REQUESTS_EXCLUDED_URLS`` and captured
    header settings, and the same ``http.client.duration`` / ``http.client.request.duration`` histograms, fed with the
    Rust-measured time. OpenTelemetry is imported here, once, and only when instrumenting."""

    def __init__(self, tracer_provider, meter_provider=None) -> None:
        from opentelemetry import metrics, propagate, trace
        from opentelemetry.instrumentation import _semconv as semconv
        from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
        from opentelemetry.semconv._incubating.attributes.user_agent_attributes import USER_AGENT_SYNTHETIC_TYPE
        from opentelemetry.semconv.attributes import error_attributes, network_attributes, user_agent_attributes
        from opentelemetry.semconv.metrics import MetricInstruments
        from opentelemetry.semconv.metrics.http_metrics import HTTP_CLIENT_REQUEST_DURATION
        from opentelemetry.util import http

        from locust_rs._native import __version__

        stability = semconv._OpenTelemetrySemanticConventionStability
        stability._initialize()
        mode = self.mode = stability._get_opentelemetry_stability_opt_in_mode(
            semconv._OpenTelemetryStabilitySignalType.HTTP
        )
        self.report_old = semconv._report_old(mode)
        self.report_new = semconv._report_new(mode)
        schema_url = semconv._get_schema_url(mode)
        self.tracer = trace.get_tracer("locust_rs", __version__, tracer_provider, schema_url=schema_url)
        meter = metrics.get_meter("locust_rs", __version__, meter_provider, schema_url=schema_url)
        self.duration_old = self.duration_new = None
        if self.report_old:
            self.duration_old = meter.create_histogram(
                name=MetricInstruments.HTTP_CLIENT_DURATION,
                unit="ms",
                description="measures the duration of the outbound HTTP request",
                explicit_bucket_boundaries_advisory=semconv.HTTP_DURATION_HISTOGRAM_BUCKETS_OLD,
            )
        if self.report_new:
            self.duration_new = meter.create_histogram(
                name=HTTP_CLIENT_REQUEST_DURATION,
                unit="s",
                description="Duration of HTTP client requests.",
                explicit_bucket_boundaries_advisory=semconv.HTTP_DURATION_HISTOGRAM_BUCKETS_NEW,
            )
        self.excluded = http.get_excluded_urls("REQUESTS")
        self.captured_request = http.get_custom_headers(http.OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST)
        self.captured_response = http.get_custom_headers(http.OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE)
        self.sensitive = http.get_custom_headers(http.OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS)
        self.semconv = semconv
        self.http = http
        self.enabled = is_http_instrumentation_enabled
        self.inject = propagate.inject
        self.in_context = trace.set_span_in_context
        self.client = trace.SpanKind.CLIENT
        self.link = trace.Link
        self.status = trace.Status
        self.error_code = trace.StatusCode.ERROR
        self.error_type = error_attributes.ERROR_TYPE
        self.peer_address = network_attributes.NETWORK_PEER_ADDRESS
        self.peer_port = network_attributes.NETWORK_PEER_PORT
        self.user_agent = user_agent_attributes.USER_AGENT_ORIGINAL
        self.synthetic = USER_AGENT_SYNTHETIC_TYPE
        self.describe = functools.lru_cache(maxsize=4096)(self._describe)

    def start(self, method: str, url: str, span_name: str, headers: dict) -> _Call | None:
        """A started CLIENT span for a request to ``url`` with ``headers`` (lowercase names: the session's and the
        request's), or None when the URL is excluded or HTTP instrumentation is suppressed in this context."""
        described = self.describe(method, url, headers.get("user-agent"))
        if described is None or not self.enabled():
            return None
        attributes, labels = described
        if self.captured_request:
            attributes = {
                **attributes,
                **self.http.get_custom_header_attributes(
                    headers, self.captured_request, self.sensitive, self.http.normalise_request_header_name
                ),
            }
        start_time = time.time_ns()
        span = self.tracer.start_span(span_name, kind=self.client, attributes=attributes, start_time=start_time)
        return _Call(span, dict(labels), start_time)

    def _describe(self, method: str, url: str, user_agent: str | None) -> tuple[dict, dict] | None:
        """The span attributes and duration labels a request's method, URL and User-Agent give, or None for an
        excluded URL. Cached (``describe``): a load test sends the same few URLs over and over, and this is a third
        of the instrumentation's own time per request. The callers copy what they change."""
        if self.excluded and self.excluded.url_disabled(url):
            return None
        semconv, http, mode = self.semconv, self.http, self.mode
        url = http.redact_url(url)
        sanitized = http.sanitize_method(method.strip())
        attributes: dict[str, Any] = {}
        labels: dict[str, Any] = {}
        semconv._set_http_method(attributes, method, sanitized, mode)
        semconv._set_http_url(attributes, url, mode)
        user_agent = http.normalize_user_agent(user_agent)
        synthetic = http.detect_synthetic_user_agent(user_agent)
        if synthetic:
            attributes[self.synthetic] = synthetic
        if user_agent:
            attributes[self.user_agent] = user_agent
        semconv._set_http_method(labels, method, sanitized, mode)
        try:
            parts = urlsplit(url)
            if parts.scheme and self.report_old:
                semconv._set_http_scheme(labels, parts.scheme, mode)
            if parts.hostname:
                semconv._set_http_host_client(labels, parts.hostname, mode)
                semconv._set_http_net_peer_name_client(labels, parts.hostname, mode)
                if self.report_new:
                    semconv._set_http_host_client(attributes, parts.hostname, mode)
                    attributes[self.peer_address] = parts.hostname
            if parts.port:
                semconv._set_http_peer_port_client(labels, parts.port, mode)
                if self.report_new:
                    semconv._set_http_peer_port_client(attributes, parts.port, mode)
                    attributes[self.peer_port] = parts.port
        except ValueError:
            pass
        return attributes, labels

    def redact_url(self, url: str) -> str:
        """``url`` as a span may show it: without user and password (OpenTelemetry's rule, as for every HTTP span)."""
        return self.http.redact_url(url)

    def set_url(self, call: _Call, url: str) -> None:
        attributes: dict[str, Any] = {}
        self.semconv._set_http_url(attributes, self.http.redact_url(url), self.mode)
        call.span.set_attributes(attributes)

    def headers_for(self, call: _Call, headers: dict) -> dict | None:
        """The trace-context headers for the call's span that ``headers`` (lowercase names) does not set, or None when
        it sets ``traceparent``: the user's own is sent, with its ``tracestate``, untouched."""
        if _TRACEPARENT in headers:
            return None
        carrier: dict[str, str] = {}
        self.inject(carrier, context=self.in_context(call.span))
        return {k: v for k, v in carrier.items() if k.lower() not in headers}

    def run(self, call: _Call, send: Callable, args: tuple, kwargs: dict, status_error: type[Any] | None = None):
        """``send(*args, **kwargs)``, ending the call's span if it raises: as a failure (with the exception's
        ``status`` when it is a ``status_error``), or, for a greenlet killed while it waits (a user stopped
        mid-request), as no failure and with nothing measured, as the requests instrumentation does."""
        try:
            return send(*args, **kwargs)
        except Exception as e:
            status = e.status if status_error is not None and isinstance(e, status_error) else None
            self.finish(call, elapsed_ms(call.start_time), status=status, error=e)
            raise
        except BaseException:
            call.span.end()
            raise

    def finish(
        self,
        call: _Call,
        duration_ms: float,
        status: int | None = None,
        error: BaseException | None = None,
        native=None,
        response_headers=None,
    ) -> None:
        """Ends the span ``duration_ms`` after it started (the Rust-measured time) and records that duration, with the
        response's status, its HTTP version (from the ``native`` response) and the failure, as the requests
        instrumentation does; ``error.type`` is set on every failure."""
        semconv, mode, span, labels = self.semconv, self.mode, call.span, call.labels
        if status:
            semconv._set_status(span, labels, status, str(status), server_span=False, sem_conv_opt_in_mode=mode)
            if status >= 400 and span.is_recording():
                span.set_attribute(self.error_type, str(status))
        if native is not None:
            # "HTTP/1.1" -> "1.1", "HTTP/2" -> "2", the conventions' values.
            version = native.http_version[5:]
            semconv._set_http_network_protocol_version(labels, version, mode)
            if self.report_new and span.is_recording():
                # As the requests instrumentation: only with the stable names, which under http/dup adds the old
                # http.flavor too.
                attributes: dict[str, Any] = {}
                semconv._set_http_network_protocol_version(attributes, version, mode)
                span.set_attributes(attributes)
        if response_headers is not None and self.captured_response and span.is_recording():
            span.set_attributes(
                self.http.get_custom_header_attributes(
                    response_headers, self.captured_response, self.sensitive, self.http.normalise_response_header_name
                )
            )
        if error is not None:
            if span.is_recording():
                span.record_exception(error)
                span.set_status(self.status(self.error_code, f"{type(error).__name__}: {error}"))
                span.set_attribute(self.error_type, type(error).__qualname__)
            if self.report_new:
                labels[self.error_type] = type(error).__qualname__
        duration_ms = max(duration_ms, 0.0)
        if self.duration_old is not None:
            self.duration_old.record(
                round(duration_ms),
                attributes=semconv._filter_semconv_duration_attrs(
                    labels, semconv._client_duration_attrs_old, semconv._client_duration_attrs_new, type(mode).DEFAULT
                ),
            )
        if self.duration_new is not None:
            self.duration_new.record(
                duration_ms / 1000,
                attributes=semconv._filter_semconv_duration_attrs(
                    labels, semconv._client_duration_attrs_old, semconv._client_duration_attrs_new, type(mode).HTTP
                ),
            )
        span.end(end_time=call.start_time + int(duration_ms * 1e6))


def elapsed_ms(start_ns: int) -> float:
    """Milliseconds since ``start_ns`` (``time.time_ns()``): a span's duration when no response time was measured."""
    return (time.time_ns() - start_ns) / 1e6


# -- what the facades' traced methods use (each facade module wraps its own methods: traceable) ---------------------


def tracing() -> _Tracing | None:
    """The tracing in force, or None: a facade's traced method sends untraced without it."""
    return _state


@functools.cache
def engine_user_agent() -> str:
    """What the engine sends when neither the session nor the request sets a User-Agent."""
    from locust_rs._native import __version__

    return f"locust-rs/{__version__}"


def lower_headers(*mappings) -> dict:
    """Header mappings merged into one with lowercase names, later ones winning."""
    merged: dict = {}
    for m in mappings:
        if m:
            for k, v in m.items():
                merged[str(k).lower()] = v
    return merged


def with_headers(headers, extra: dict):
    """The request's headers plus ``extra``, in a new mapping (the caller's is not changed)."""
    if not headers:
        return extra
    merged = dict(headers)
    merged.update(extra)
    return merged

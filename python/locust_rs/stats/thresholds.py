"""Pass/fail criteria for a run, in the k6 style.

On the command line (repeatable)::

    locust -f locustfile.py --threshold "GET /api/chat/query:p(95)<3s" --threshold "error_rate<5%"

or from Python (a locustfile)::

    from locust_rs import thresholds
    thresholds.add("p(99)<500")
    thresholds.add("/api/items:rps>=50")
    thresholds.add("p(95)<1s", names=["POST /api/auth/login", "POST /api/auth/refresh"], label="Sign-in")

With ``names``, one threshold checks a group of requests as one: their figures are merged (exact histograms
included) before the metric is read, and ``label`` is what the verdict shows for them.

An expression is ``[NAME:]METRIC OP VALUE[UNIT]``. NAME is a request name as Locust shows it, optionally
prefixed by its type (``GET /api/items``); without it the aggregate of all requests is checked.
A name that several request types share is checked for each of them. METRICs:

- ``p(NN)`` or ``pNN`` (any percentile, e.g. ``p(95)``, ``p99.9``): the exact HDR percentile that every output
  of the run shows; ``p(NN)_corrected`` reads the coordinated-omission-corrected histogram (raw where the key
  has none);
- ``avg``, ``min``, ``max``, ``med``: response times;
- ``rps``, ``fail_rps``, ``requests``, ``fails``, ``error_rate`` (failures / requests);
- for arrival-rate users (:py:mod:`locust_rs.arrival`): ``dropped_iterations``, ``iterations`` and ``iteration_rate``
  (iterations begun per second), where NAME is a user class (all of them without one); and ``start_lag:METRIC``
  with any time metric above, e.g. ``start_lag:p(99)<10ms``.

k6's metric names mean what they mean in k6, so a k6 threshold pasted as ``METRIC:EXPR`` works:
``http_req_duration`` (``p(NN)``, ``avg``, ``min``, ``max``, ``med``), ``http_req_failed`` (``rate``, a fraction
0–1), ``http_reqs`` (``count``, ``rate``), ``iterations`` (``count``, ``rate``) and ``dropped_iterations``
(``count``), with k6's tags ``{name:...}`` and ``{method:...}`` naming a request (``{scenario:...}`` a user class
for the iteration metrics), e.g. ``http_req_duration{name:/api/items,method:GET}:p(95)<500``.

Relative to a baseline run (``--baseline PREFIX``, :py:mod:`locust_rs.stats.baseline`): a VALUE with a sign is a
change from the baseline's value, ``p(95)<+10%`` (at most 10 % above it), ``p(99)<+20ms``, ``error_rate<+1%`` (one
percentage point), ``avg<-5%`` (at least 5 % faster). Such a threshold is crossed only when the change is also real,
beyond the sampling noise of both runs: the statistics of ``locust-rs compare``. Percentiles, ``med``, ``avg`` and
``error_rate`` can be relative.

OP is one of ``< <= > >= == !=``. VALUE is a number; times are in ms unless a unit says otherwise (``us``,
``ms``, ``s``); ``error_rate`` is a fraction (``0.05``) or a percentage (``5%``). Thresholds are evaluated at
the end of the run (on the master in distributed runs): a breach sets the process exit code to 99, as in k6, and
the verdict prints last, one line per threshold with ✓ or ✗. A threshold with no data (an unknown name, no
requests) fails, so a typo cannot pass silently, and names the request name of the run closest to it. With
``--threshold-abort`` they are also checked every ``--threshold-abort-interval`` seconds while the test runs, and
the first breach stops it.
"""

from __future__ import annotations

from locust.runners import WorkerRunner

import dataclasses
import difflib
import logging
import operator
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gevent

from locust_rs import stats as rs_stats
from locust_rs._locust import state as _state
from locust_rs.arrival import report as arrival_report
from locust_rs.compare import formats, junit
from locust_rs.stats import baseline, hdr_outputs, outputs, webui

if TYPE_CHECKING:
    from locust.stats import StatsEntry

logger = logging.getLogger(__name__)
#: The exit code of a run whose thresholds were crossed: k6's, so that a CI step can tell it from failed requests
#: (Locust's ``--exit-code-on-error``, 1 by default) and from a usage error (2).
EXIT_CODE = 99
_print = logging.getLogger("locust.stats_logger").info

_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_TIME_METRICS = ("avg", "min", "max", "med")
_ITERATION_METRICS = ("dropped_iterations", "iterations", "iteration_rate")
_COUNT_METRICS = ("rps", "fail_rps", "requests", "fails", *_ITERATION_METRICS)
#: The NAME that checks arrival-rate iterations' start lag instead of a request name.
START_LAG = "start_lag"
_METRICS = (*_TIME_METRICS, *_COUNT_METRICS, "error_rate")
_UNITS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}
_PERCENTILE = re.compile(r"^p(?:\((?P<paren>[^)]*)\)|(?P<bare>[0-9.]+))(?P<corrected>_corrected)?$")
_OPERATOR = re.compile(r"<=|>=|==|!=|<|>")
_VALUE = re.compile(r"^(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[a-zµ%]*)$")
_HELP = (
    "expected [NAME:]METRIC OP VALUE, e.g. 'GET /api:p(95)<300ms', with METRIC one of p(NN), p(NN)_corrected, "
    + ", ".join(_METRICS)
)


# k6's built-in metrics: their aggregation methods, as ours.
_K6_METRICS = {
    "http_req_duration": {m: m for m in _TIME_METRICS},
    "http_req_failed": {"rate": "error_rate"},
    "http_reqs": {"count": "requests", "rate": "rps"},
    "iterations": {"count": "iterations", "rate": "iteration_rate"},
    "dropped_iterations": {"count": "dropped_iterations"},
}
_K6_NAME = re.compile(r"^(?P<metric>[a-z_]+)\s*(?:\{(?P<tags>[^}]*)\})?$")
_K6_TAGS = ("name", "method", "scenario")


def _k6(name: str, token: str, expression: str) -> tuple[str | None, str] | None:
    """The request or user-class name and our metric for a k6 threshold (``http_req_duration{name:/x}`` and
    ``p(95)``), or None when ``name`` is no k6 metric."""
    m = _K6_NAME.match(name)
    if m is None or m["metric"] not in _K6_METRICS:
        return None
    k6_metric = m["metric"]
    methods = _K6_METRICS[k6_metric]
    if k6_metric == "http_req_duration":
        try:
            metric = _metric(token, expression)
        except ValueError:
            metric = None
        if metric is not None and metric not in _TIME_METRICS and not metric.startswith("p"):
            metric = None
    else:
        metric = methods.get(token)
    if metric is None:
        usable = "p(NN), avg, min, max, med" if k6_metric == "http_req_duration" else ", ".join(methods)
        raise ValueError(f"invalid threshold {expression!r}: k6's {k6_metric} has no {token!r} here; use {usable}")
    tags: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (m["tags"] or "").split(","))):
        key, sep, value = part.partition(":")
        key = key.strip()
        if not sep or key not in _K6_TAGS or not value.strip():
            raise ValueError(
                f"invalid threshold {expression!r}: tag {part!r} is not one of name:..., method:..., scenario:..."
            )
        tags[key] = value.strip()
    if k6_metric in ("iterations", "dropped_iterations"):
        if set(tags) - {"scenario"}:
            raise ValueError(f"invalid threshold {expression!r}: {k6_metric} takes only a {{scenario:...}} tag")
        return tags.get("scenario"), metric
    if "scenario" in tags:
        raise ValueError(f"invalid threshold {expression!r}: the scenario tag applies to iterations only")
    if "method" in tags and "name" not in tags:
        # Locust keeps statistics per name and method, not per method: a method alone has no entry to read.
        raise ValueError(f"invalid threshold {expression!r}: {{method:...}} needs a {{name:...}} beside it")
    name_tag = tags.get("name")
    return (f"{tags['method'].upper()} {name_tag}" if "method" in tags else name_tag), metric


def _metric(token: str, expression: str) -> str:
    """The canonical metric (``p95``, ``p99.9_corrected``, ``avg``…) of a token, or a ValueError that names it."""
    if token in _METRICS:
        return token
    m = _PERCENTILE.match(token)
    if m is None:
        raise ValueError(f"invalid threshold {expression!r}: unknown metric {token!r}; {_HELP}")
    number = m["paren"] if m["paren"] is not None else m["bare"]
    try:
        q = float(number)
    except ValueError:
        raise ValueError(f"invalid threshold {expression!r}: {number!r} in {token!r} is not a number") from None
    if not 0 <= q <= 100:
        raise ValueError(f"invalid threshold {expression!r}: percentile {number} in {token!r} is out of 0..100")
    return f"p{number}{m['corrected'] or ''}"


def _value(text: str, metric: str, expression: str) -> float:
    m = _VALUE.match(text.strip())
    if m is None:
        token = text.strip() or "(nothing)"
        raise ValueError(f"invalid threshold {expression!r}: {token!r} is not a number with an optional unit")
    value, unit = float(m["number"]), m["unit"]
    if not unit:
        if metric == "error_rate" and value > 1:
            # A rate is a fraction: error_rate<5 would mean 500 % and always pass.
            raise ValueError(
                f"invalid threshold {expression!r}: a rate is a fraction from 0 to 1; for {value:g} % write "
                f"{value:g}%, or {value / 100:g} as a fraction"
            )
        return value
    if metric == "error_rate":
        if unit != "%":
            raise ValueError(f"invalid threshold {expression!r}: unit {unit!r} does not apply to error_rate (use %)")
        return value / 100.0

    if metric in _COUNT_METRICS:
        raise ValueError(f"invalid threshold {expression!r}: unit {unit!r} does not apply to {metric}")
    if unit not in _UNITS:
        raise ValueError(f"invalid threshold {expression!r}: unknown unit {unit!r} (use us, ms or s)")
    return value * _UNITS[unit]


def _relative(text: str, metric: str, op: str, expression: str) -> tuple[str, float]:
    """A value relative to the baseline run (``+10%``, ``+20ms``, ``-5%``): its kind and amount."""
    m = _VALUE.match(text.strip())
    if m is None:
        raise ValueError(f"invalid threshold {expression!r}: {text.strip()!r} is not a change such as +10% or +20ms")
    if not baseline.relative_ok(metric):
        raise ValueError(
            f"invalid threshold {expression!r}: {metric} cannot be relative to a baseline (+/-); only percentiles, "
            "med, avg and error_rate have an interval that tells a real change from noise"
        )
    if op not in ("<", "<=", ">", ">="):
        raise ValueError(f"invalid threshold {expression!r}: a change from the baseline takes < <= > or >=, not {op}")
    number, unit = float(m["number"]), m["unit"]
    if metric == "error_rate":
        if unit not in ("", "%"):
            raise ValueError(f"invalid threshold {expression!r}: unit {unit!r} does not apply to error_rate (use %)")
        # +1% of a rate is one percentage point: a relative change of a rate near zero means nothing
        return baseline.DELTA, number / 100.0 if unit == "%" else number
    if unit == "%":
        return baseline.RATIO, number / 100.0
    if unit and unit not in _UNITS:
        raise ValueError(f"invalid threshold {expression!r}: unknown unit {unit!r} (use %, us, ms or s)")
    return baseline.DELTA, number * _UNITS.get(unit or "ms", 1.0)


@dataclass(frozen=True)
class Threshold:
    expression: str
    name: str | None
    metric: str
    op: str
    value: float
    #: a group of request names (or user classes, for the iteration metrics) checked as one; empty: ``name``
    names: tuple[str, ...] = ()
    #: what the verdict shows as the target of a group
    label: str = ""
    #: relative to the ``--baseline`` run (:py:mod:`locust_rs.stats.baseline`): ``ratio`` (``+10%`` of a time: the
    #: value is a fraction) or ``delta`` (``+20ms``, ``+1%`` of error_rate: an amount in the metric's unit); "" for
    #: an absolute threshold
    relative: str = ""

    @classmethod
    def parse(cls, expression: str) -> Threshold:
        """Parses ``[NAME:]METRIC OP VALUE[UNIT]``; a malformed expression raises ValueError naming the token that
        is wrong."""
        op_match = _OPERATOR.search(expression)
        if op_match is None:
            raise ValueError(f"invalid threshold {expression!r}: no comparison operator (< <= > >= == !=); {_HELP}")
        left, op, right = expression[: op_match.start()], op_match.group(), expression[op_match.end() :]
        if _OPERATOR.match(right.lstrip()):
            raise ValueError(f"invalid threshold {expression!r}: {op + right.lstrip()[:2]!r} is not an operator")
        # The metric is the last ':'-separated part before the operator (names may contain ':').
        name, sep, metric_token = left.rpartition(":")
        metric_token = metric_token.strip()
        if not metric_token:
            raise ValueError(f"invalid threshold {expression!r}: no metric before {op!r}; {_HELP}")
        k6 = _k6(name.strip(), metric_token, expression) if sep else None
        if k6 is not None:
            target, metric = k6
        else:
            target, metric = (name.strip() or None if sep else None), _metric(metric_token, expression)
        if right.strip()[:1] in ("+", "-"):
            relative, value = _relative(right, metric, op, expression)
            if target == START_LAG:
                raise ValueError(f"invalid threshold {expression!r}: the start lag cannot be relative to a baseline")
            return cls(expression.strip(), target, metric, op, value, relative=relative)
        value = _value(right, metric, expression)
        return cls(expression.strip(), target, metric, op, value)

    @property
    def unit(self) -> str:
        """The unit the observed value and the limit are shown in."""
        if self.metric == "error_rate":
            return "%"
        return "" if self.metric in _COUNT_METRICS else "ms"

    @property
    def limit_text(self) -> str:
        """The limit as the verdict shows it: ``< 300.000 ms``, or ``< baseline +10 %`` for a relative one."""
        if self.relative == baseline.RATIO:
            return f"{self.op} baseline {100 * self.value:+g} %"
        if self.relative == baseline.DELTA:
            amount = f"{100 * self.value:+.2f} points" if self.unit == "%" else f"{self.value:+.3f} ms"
            return f"{self.op} baseline {amount}"
        return f"{self.op} {_shown(self.value, self.unit)}"


@dataclass
class Result:
    threshold: Threshold
    target: str
    observed: float | None
    passed: bool
    #: for a target with no data: the closest name the run saw, or ""
    did_you_mean: str = ""
    #: the requests (or iterations) the observed value comes from
    count: int = 0
    #: a relative threshold's judgement against the baseline run
    judged: baseline.Judged | None = None

    def as_dict(self) -> dict:
        """The result for a JSON file: the expression, the target, the observed value and the limit (in the
        threshold's unit: ms, a fraction, or a count), whether it passed, and how many requests it rests on."""
        t = self.threshold
        return {
            "expression": t.expression,
            "target": self.target,
            "names": list(t.names) if t.names else ([t.name] if t.name else []),
            "metric": t.metric,
            "observed": self.observed,
            "limit": t.limit_text,
            "unit": t.unit,
            "count": self.count,
            "passed": self.passed,
            "did_you_mean": self.did_you_mean,
            **(_judged_dict(self.judged) if t.relative else {}),
        }


def _judged_dict(j: baseline.Judged | None) -> dict:
    """A relative threshold's figures for a JSON file: the baseline's value, the limit it gives, the interval of the
    change (a fraction of the baseline's value for times, a difference of rates for error_rate), and any note."""
    if j is None:
        return {"baseline": None, "limit_value": None, "change_interval": None, "note": ""}
    return {
        "baseline": j.baseline,
        "limit_value": j.limit,
        "change_interval": list(j.interval) if j.interval else None,
        "note": j.note,
    }


_registered: list[Threshold] = []


def add(expression: str, *, names=None, label: str | None = None) -> Threshold:
    """Adds a threshold for the runs of this process (see the module docs for the syntax). ``names`` (request names,
    ``TYPE name`` or a bare name; user classes for the iteration metrics) makes it one threshold over that group,
    shown as ``label``."""
    t = Threshold.parse(expression)
    if names is not None:
        group = (names,) if isinstance(names, str) else tuple(names)
        if not group or not all(isinstance(n, str) and n.strip() for n in group):
            raise ValueError(f"invalid threshold {expression!r}: names must be one or more request names")
        if t.name is not None:
            raise ValueError(
                f"invalid threshold {expression!r}: it names {t.name!r} already; with names=, give the metric alone"
            )
        t = dataclasses.replace(t, names=tuple(n.strip() for n in group), label=label or " + ".join(group))
    elif label:
        t = dataclasses.replace(t, label=label)
    _registered.append(t)
    return t


def remove(threshold: Threshold) -> None:
    """Takes back a threshold :py:func:`add` returned, for every later run (nothing happens when it is not there)."""
    for i, t in enumerate(_registered):
        if t is threshold:
            del _registered[i]
            return


@dataclasses.dataclass
class _Run:
    """The thresholds' state of one run (on its environment, :py:mod:`locust_rs._locust.state`)."""

    #: thresholds not checked in this run, with why: id -> (threshold, reason)
    skipped: dict[int, tuple[Threshold, str]] = dataclasses.field(default_factory=dict)
    #: the verdict :py:func:`finish` took, or None before
    verdict: list[Result] | None = None
    #: why ``--threshold-abort`` stopped the current test ("" while it has not)
    aborted: str = ""
    #: the ``--baseline`` run that relative thresholds compare with (loaded at start)
    baseline: baseline.RunData | None = None


def skip(environment, threshold: Threshold, reason: str) -> None:
    """Leaves ``threshold`` out of this run: the verdict lists it as not checked, with ``reason`` (a locustfile that
    knows its run cannot meet it: a ``--tags`` run without the tasks that make its requests, say)."""
    _state.of(environment, _Run).skipped[id(threshold)] = (threshold, reason)


def unskip(environment, threshold: Threshold) -> None:
    """Checks ``threshold`` in this run again (after :py:func:`skip`)."""
    _state.of(environment, _Run).skipped.pop(id(threshold), None)


def skipped(environment) -> list[tuple[Threshold, str]]:
    """The thresholds :py:func:`skip` left out of this run, with why."""
    return list(_state.of(environment, _Run).skipped.values())


def clear() -> None:
    _registered.clear()


def active(environment) -> list[Threshold]:
    """The thresholds this run checks: those added from Python, then ``--threshold``'s, less the skipped ones."""
    opts = environment.parsed_options
    exprs = getattr(opts, "threshold", None) or [] if opts is not None else []
    left_out = _state.of(environment, _Run).skipped
    return [t for t in _registered if id(t) not in left_out] + [Threshold.parse(e) for e in exprs]


def _targets(stats, name: str | None) -> list[tuple[str | None, str | None, StatsEntry]]:
    if name is None:
        return [(None, None, stats.total)]
    found = []
    for (n, method), entry in stats.entries.items():
        if n == name or f"{method} {n}" == name:
            found.append((method, n, entry))
    return found


def _group(stats, t: Threshold, hdr) -> tuple[StatsEntry | None, hdr_outputs.HistogramSet | None]:
    """One entry with the figures of every request a group names, and (when ``hdr`` is given) one histogram of them
    under ``("", t.label)``: each member's corrected histogram where it has one, else its raw one."""
    members = {}
    for name in t.names:
        for request_type, n, entry in _targets(stats, name):
            members[(request_type, n)] = entry
    scratch = (
        rs_stats.RequestStats(use_response_times_cache=False)
        if isinstance(stats, rs_stats.RequestStats)
        else type(stats)(use_response_times_cache=False)
    )
    merged = scratch.get(t.label, "")
    merged_hdr = None
    for (request_type, n), entry in members.items():
        merged.extend(entry)
        if hdr is not None and hdr.count(request_type, n):
            encoded = hdr.encode_histogram(request_type, n, hdr.has_corrected(request_type, n))
            if encoded is not None:
                if merged_hdr is None:
                    merged_hdr = hdr_outputs.HistogramSet()
                merged_hdr.add_encoded("", t.label, encoded[0])
    return (merged if members else None), merged_hdr


def _observe(metric: str, entry, hdr, request_type, name) -> float | None:
    """The observed value, from the same entry every output of the run shows (the corrected percentiles from the
    HDR outputs' histograms); None when there is no data."""
    if metric == "rps":
        return entry.total_rps
    if metric == "fail_rps":
        return entry.total_fail_per_sec
    if metric == "requests":
        return float(entry.num_requests)
    if metric == "fails":
        return float(entry.num_failures)
    if metric == "error_rate":
        return entry.fail_ratio if entry.num_requests else None
    if entry.num_requests - entry.num_none_requests <= 0:
        return None
    if metric.endswith("_corrected"):
        q = float(metric[1:].removesuffix("_corrected")) / 100.0
        corrected = hdr is not None and (request_type is None or hdr.has_corrected(request_type, name))
        if hdr is not None and hdr.count(request_type, name):
            return hdr.value_at_quantile(q, request_type, name, corrected)
        return entry.get_response_time_percentile(q)
    if metric == "avg":
        return entry.avg_response_time
    if metric == "min":
        return entry.min_response_time
    if metric == "max":
        return entry.max_response_time
    if metric == "med":
        return entry.median_response_time
    return entry.get_response_time_percentile(float(metric[1:]) / 100.0)


def evaluate(environment, thresholds: list[Threshold] | None = None, *, final: bool = True) -> list[Result]:
    """Checks the thresholds against the run's stats now; a threshold whose target has no
    data (an unknown name, no requests) fails, so a typo cannot pass silently. Relative thresholds are judged
    against the baseline only when ``final``: looked at every few seconds, a 95 % interval would be crossed by
    chance far more often than 5 % of the time, and warm-up would count; before the end they show their value and
    pass, "judged at the end"."""
    run = hdr_outputs.current(environment)
    checked = active(environment) if thresholds is None else thresholds
    # Only the corrected percentiles need the HDR outputs' histograms (a copy of every entry's); the rest read the
    # entries directly.
    needs_hdr = run is not None and any(t.metric.endswith("_corrected") for t in checked)
    hdr = run.total if needs_hdr and run is not None else None
    stats = environment.runner.stats if environment.runner is not None else environment.stats
    results = []
    # relative thresholds are judged together at the end: their intervals share one confidence (Bonferroni)
    relative: list[tuple[Result, list[tuple[str | None, str | None]]]] = []
    for t in checked:
        if t.metric in _ITERATION_METRICS or t.name == START_LAG:
            results.append(_iteration_result(environment, t))
            continue
        if t.names:
            merged, merged_hdr = _group(stats, t, hdr)
            if merged is None:
                seen = [f"{method} {n}" for n, method in stats.entries]
                hint = next(filter(None, (_closest(n, seen) for n in t.names)), "")
                results.append(Result(t, t.label, None, False, hint))
                continue
            observed = _observe(t.metric, merged, merged_hdr, "", t.label)
            passed = observed is not None and _OPS[t.op](observed, t.value)
            results.append(Result(t, t.label, observed, passed, count=merged.num_requests))
            if t.relative:
                keys = [(rt, n) for name in t.names for rt, n, _ in _targets(stats, name)]
                relative.append((results[-1], keys))
            continue
        targets = _targets(stats, t.name)
        if not targets:
            seen = [f"{method} {n}" for n, method in stats.entries]
            results.append(Result(t, t.label or t.name or "Aggregated", None, False, _closest(t.name, seen)))
            continue
        for request_type, name, entry in targets:
            observed = _observe(t.metric, entry, hdr, request_type, name)
            passed = observed is not None and _OPS[t.op](observed, t.value)
            label = f"{request_type} {name}" if request_type else (t.label or "Aggregated")
            results.append(Result(t, label, observed, passed, count=entry.num_requests))
            if t.relative:
                relative.append((results[-1], [(request_type, name)]))
    if relative and final:
        _judge_relative(environment, stats, relative)
    for result, _ in relative if not final else ():
        result.passed = True
        result.judged = baseline.Judged(result.observed, None, None, None, True, "judged at the end")
    return results


def _this_run(stats) -> baseline.RunData:
    """The run so far as a comparison reads a run: its histograms and its counts."""
    counts = {(method, n): baseline.Counts(e.num_requests, e.num_failures) for (n, method), e in stats.entries.items()}
    counts[("", "Aggregated")] = baseline.Counts(stats.total.num_requests, stats.total.num_failures)
    core = getattr(stats, "core", None)
    histograms = core.histograms() if core is not None else hdr_outputs.HistogramSet()
    return baseline.RunData("this run", histograms, counts)


def _judge_relative(environment, stats, pending: list[tuple[Result, list[tuple[str | None, str | None]]]]) -> None:
    """Judges the relative thresholds' results against the ``--baseline`` run, in place."""
    base = _state.of(environment, _Run).baseline
    this = _this_run(stats) if base is not None else None
    for result, keys in pending:
        t = result.threshold
        if base is None or this is None:
            result.passed = False
            result.judged = baseline.Judged(result.observed, None, None, None, False, "no --baseline run")
            continue
        judged = baseline.judge(t.metric, t.op, t.value, t.relative, result.observed, base, this, keys, len(pending))
        result.judged = judged
        result.passed = judged.passed


def _closest(name: str | None, seen: list[str]) -> str:
    """The name of ``seen`` closest to a threshold's name that matched nothing (a typo, a wrong method), or ""."""
    if not name:
        return ""
    found = difflib.get_close_matches(name, seen, n=1, cutoff=0.6)
    return found[0] if found else ""


def _iteration_result(environment, t: Threshold) -> Result:
    """A threshold on arrival-rate iterations: counts per user class (NAME) or for all, or the start lag."""
    rows = arrival_report.summary(environment)
    if t.name == START_LAG:
        times = sorted(v for r in rows for v in r["lag_times"])
        observed = _lag_metric(t.metric, times)
        return Result(t, START_LAG, observed, observed is not None and _OPS[t.op](observed, t.value))
    seen = [r["name"] for r in rows]
    wanted = t.names or ((t.name,) if t.name is not None else ())
    if wanted:
        rows = [r for r in rows if r["name"] in wanted]
    target = t.label or t.name or "all arrival-rate users"
    if not rows:
        return Result(t, target, None, False, next(filter(None, (_closest(n, seen) for n in wanted)), ""))
    iterations = sum(r["iterations"] for r in rows)
    if t.metric == "iteration_rate":
        elapsed = max(r["elapsed"] for r in rows)
        observed = iterations / elapsed if elapsed > 0 else None
    else:
        observed = float(sum(r["dropped"] if t.metric == "dropped_iterations" else r["iterations"] for r in rows))
    passed = observed is not None and _OPS[t.op](observed, t.value)
    return Result(t, target, observed, passed, count=iterations)


def _lag_metric(metric: str, times: list[tuple[float, int]]) -> float | None:
    count = sum(n for _, n in times)
    # A start lag has no corrected side, and counts are not times.
    if not count or metric.endswith("_corrected") or metric in _COUNT_METRICS or metric == "error_rate":
        return None
    if metric == "avg":
        return sum(v * n for v, n in times) / count
    if metric == "min":
        return times[0][0]
    if metric == "max":
        return times[-1][0]
    q = 0.5 if metric == "med" else float(metric[1:]) / 100.0
    return arrival_report.percentile(times, q)


def _shown(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.2f}%"
    return f"{value:.3f} ms" if unit == "ms" else f"{value:g}"


def _cells(r: Result) -> tuple[str, str, str, str, str]:
    """A result as the verdict shows it: ✓ or ✗, the expression, the target, the observed value, the limit."""
    t = r.threshold
    observed = "no data" if r.observed is None else _shown(r.observed, t.unit)
    if r.did_you_mean:
        observed += f" (did you mean {r.did_you_mean!r}?)"
    limit = t.limit_text
    j = r.judged
    if j is not None:
        if j.baseline is not None and j.limit is not None:
            limit += f" = {_shown(j.limit, t.unit)}"
        if j.interval is not None and r.observed is not None and j.baseline is not None:
            lo, hi = j.interval
            if t.unit == "%":
                change = f"{100 * (r.observed - j.baseline):+.2f} points, interval {100 * lo:+.2f} … {100 * hi:+.2f}"
            else:
                change = f"{formats.percent(r.observed / j.baseline - 1 if j.baseline else None)}, interval "
                change += f"{formats.percent(lo)} … {formats.percent(hi)}"
            observed += f" (baseline {_shown(j.baseline, t.unit)}: {change})"
        if j.note:
            observed += f": {j.note}"
    return ("✓" if r.passed else "✗", t.expression, r.target, observed, limit)


def _skipped_cells(environment) -> list[tuple[str, str, str, str, str]]:
    cells = []
    for t, why in skipped(environment):
        target = t.label or t.name or "Aggregated"
        cells.append(("-", t.expression, target, f"not checked: {why}", t.limit_text))
    return cells


def report(results: list[Result], environment=None) -> str:
    """The verdict: one line per threshold and target (✓ or ✗, observed against the limit, with units; - for one
    ``environment``'s run skipped as it cannot meet it), then a count of the failed ones."""
    left_out = _skipped_cells(environment) if environment is not None else []
    rows = [("", "Threshold", "Target", "Observed", "Limit"), *(_cells(r) for r in results), *left_out]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["Thresholds"]
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    failed = sum(1 for r in results if not r.passed)
    total = len(results)
    plural = "s" if total > 1 else ""
    counted = f"{failed} of {total} thresholds failed" if failed else f"all {total} threshold{plural} passed"
    if not total:
        counted = "no threshold checked"
    lines.append(counted + (f"; {len(left_out)} not checked" if left_out else ""))
    return "\n".join(lines)


def finish(environment) -> list[Result]:
    """End-of-run evaluation (at ``quitting``, before Locust settles the exit code): sets it to :py:data:`EXIT_CODE`
    on a breach, unless an earlier error set one already. The table prints later, with :py:func:`print_verdict`.
    The verdict is taken once per run, by whoever asks first: a locustfile's ``quitting`` listener runs before
    locust-rs's, and may take it first to put it in a file of its own; a second call returns the same results."""
    run = _state.of(environment, _Run)
    if run.verdict is not None:
        return list(run.verdict)
    run.verdict = []
    if isinstance(environment.runner, WorkerRunner):
        return []
    if active(environment):
        run.verdict = evaluate(environment)
    if not all(r.passed for r in run.verdict) and not environment.process_exit_code:
        environment.process_exit_code = EXIT_CODE
    _write_junit(environment, run.verdict)
    return list(run.verdict)


def _write_junit(environment, verdict: list[Result]) -> None:
    """``--threshold-junit FILE``: the verdict as JUnit XML, one test case per threshold and target (failed when
    crossed, skipped when the locustfile left it out of the run), for Jenkins' and GitLab's test reports."""
    opts = environment.parsed_options
    path = getattr(opts, "threshold_junit", None) if opts is not None else None
    if not path:
        return
    cases = []
    for r in verdict:
        mark, expression, target, observed, limit = _cells(r)
        failure = None if r.passed else (f"{target}: {observed}, limit {limit}", "threshold crossed", observed)
        cases.append(
            junit.Case(f"{target}: {expression}", "locust-rs.thresholds", failure, None, f"{observed} ({limit})")
        )
    for _mark, expression, target, why, limit in _skipped_cells(environment):
        cases.append(junit.Case(f"{target}: {expression}", "locust-rs.thresholds", None, why, limit))
    text = junit.document("locust-rs thresholds", cases)

    def write() -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    outputs.write(environment, path, write)


def results(environment) -> list[Result]:
    """The verdict :py:func:`finish` took at the end of ``environment``'s run (empty before, on a worker, or without
    thresholds)."""
    return list(_state.of(environment, _Run).verdict or [])


def crossed(environment) -> tuple[int, int]:
    """How many thresholds :py:func:`finish` found crossed in ``environment``'s run, and of how many."""
    verdict = results(environment)
    return sum(1 for r in verdict if not r.passed), len(verdict)


def print_verdict(environment) -> None:
    """The verdict of :py:func:`finish`, at ``quit``: the last thing a headless run prints."""
    verdict = results(environment)
    if verdict or skipped(environment):
        _print("%s\n", report(verdict, environment))


def _watch(environment, interval: float) -> None:
    run = _state.of(environment, _Run)
    run.aborted = ""
    while True:
        gevent.sleep(interval)
        # relative thresholds are judged at the end only (see evaluate)
        checked = [t for t in active(environment) if not t.relative]
        failed = [r for r in evaluate(environment, checked) if not r.passed and r.observed is not None]
        if failed:
            run.aborted = "; ".join(f"{r.threshold.expression} ({r.target}: {r.observed:.3f})" for r in failed)
            logger.error("threshold breached, aborting the test: %s", run.aborted)
            environment.process_exit_code = EXIT_CODE
            gevent.spawn(environment.runner.quit)
            return


def add_options(parser) -> None:
    """The thresholds' command-line options (``--threshold``, ``--threshold-abort``, ...)."""
    group = parser.add_argument_group("locust-rs thresholds")
    group.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        env_var="LOCUST_THRESHOLD",
        help="Pass/fail criterion, e.g. 'GET /api:p95<300' or 'error_rate<0.01' (repeatable); a breach at the end "
        "sets exit code 99",
    )
    group.add_argument(
        "--baseline",
        default=None,
        metavar="RUN",
        env_var="LOCUST_BASELINE",
        help="A run to judge relative thresholds against ('p(95)<+10%%', 'error_rate<+1%%'): its --csv prefix, one "
        "of its files, or a directory (its newest run); see locust-rs compare",
    )
    group.add_argument(
        "--threshold-junit",
        default=None,
        metavar="FILE",
        env_var="LOCUST_THRESHOLD_JUNIT",
        help="Write the thresholds' verdict as JUnit XML (one test case per threshold and target) to FILE",
    )
    group.add_argument(
        "--threshold-abort",
        action="store_true",
        default=False,
        env_var="LOCUST_THRESHOLD_ABORT",
        help="Stop the test at the first threshold breach (checked while it runs)",
    )
    group.add_argument(
        "--threshold-abort-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        env_var="LOCUST_THRESHOLD_ABORT_INTERVAL",
        help="How often --threshold-abort checks (default 2 s)",
    )


def setup(environment) -> None:
    """At Locust's ``init``: checks the thresholds' syntax (a typo fails at start) and arms ``--threshold-abort``."""
    opts = environment.parsed_options
    # A typo must fail at start, not after a long run.
    try:
        checked = active(environment)
    except ValueError as e:
        logger.error("%s", e)
        sys.exit(2)
    _load_baseline(environment, opts, checked)
    if (
        opts is not None
        and getattr(opts, "threshold_abort", False)
        and not isinstance(environment.runner, WorkerRunner)
    ):

        def start(**_kw) -> None:
            gevent.spawn(_watch, environment, max(0.1, float(opts.threshold_abort_interval)))

        environment.events.test_start.add_listener(start)
    if environment.web_ui is not None and not isinstance(environment.runner, WorkerRunner) and active(environment):
        _extend_web_ui(environment)


def _load_baseline(environment, opts, checked: list[Threshold]) -> None:
    """Reads ``--baseline`` at start (on the node that judges), so that a wrong path fails before the test runs;
    a relative threshold without one is a usage error too."""
    if isinstance(environment.runner, WorkerRunner):
        return  # the master judges, with its own --baseline
    path = getattr(opts, "baseline", None) if opts is not None else None
    relative = [t.expression for t in checked if t.relative]
    if relative and not path:
        logger.error(
            "relative thresholds (%s) compare with a baseline run: give one with --baseline PREFIX", ", ".join(relative)
        )
        sys.exit(2)
    if not path:
        return
    try:
        run = baseline.load_baseline(path)
    except (baseline.RunNotFound, OSError) as e:
        logger.error("--baseline: %s", e)
        sys.exit(2)
    _state.of(environment, _Run).baseline = run
    logger.info("baseline for relative thresholds: %s", run.prefix)


WEB_TAB = "locust-rs-thresholds"
_WEB_COLUMNS = ("status", "threshold", "target", "observed", "limit")


def _extend_web_ui(environment) -> None:
    """A "Thresholds" tab: each threshold against the run so far, and at the end the verdict, with the reason when
    ``--threshold-abort`` stopped the test."""
    titles = ("", "Threshold", "Target", "Observed", "Limit")
    structure = [{"key": k, "title": t} for k, t in zip(_WEB_COLUMNS, titles, strict=True)]
    webui.add_tab(environment.web_ui, WEB_TAB, "Thresholds", structure, lambda: web_rows(environment))


def web_rows(environment) -> list[dict]:
    verdict = results(environment)
    # the verdict once the run has taken it; until then, the run so far (relative thresholds judged at the end)
    current = verdict or evaluate(environment, final=False)
    cells = [*(_cells(r) for r in current), *_skipped_cells(environment)]
    rows = [dict(zip(_WEB_COLUMNS, c, strict=True)) for c in cells]
    aborted = _state.of(environment, _Run).aborted
    if aborted:
        reason = ("✗", "stopped by --threshold-abort", "", aborted, "")
        rows.append(dict(zip(_WEB_COLUMNS, reason, strict=True)))
    return rows

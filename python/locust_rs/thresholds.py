"""Pass/fail criteria for a run, in the k6 style.

On the command line (repeatable)::

    locust -f locustfile.py --threshold "GET /api/chat/query:p95<3000" --threshold "error_rate<0.05"

or from Python (a locustfile)::

    from locust_rs import thresholds
    thresholds.add("p99<500")
    thresholds.add("/api/items:rps>=50")

An expression is ``[NAME:]METRIC OP VALUE``. NAME is a request name as Locust shows it, optionally
prefixed by its type (``GET /api/items``); without it the aggregate of all requests is checked.
A name that several request types share is checked for each of them. METRICs:

- ``pNN`` (any percentile, e.g. ``p50``, ``p99.9``): exact HDR percentile in ms; ``pNN_corrected``
  reads the coordinated-omission-corrected histogram (raw where the key has none);
- ``avg``, ``min``, ``max``, ``med`` in ms (HDR figures);
- ``rps``, ``fail_rps``, ``requests``, ``fails``, ``error_rate`` (failures / requests, 0..1),
  from Locust's own stats.

OP is one of ``< <= > >= == !=``; VALUE a number (a trailing ``ms`` is allowed). Thresholds are
evaluated at the end of the run (on the master in distributed runs): a table is printed and a
breach sets the process exit code to 1. With ``--threshold-abort`` they are also checked every
``--threshold-abort-interval`` seconds while the test runs, and the first breach stops it.
"""

from __future__ import annotations

from locust.runners import WorkerRunner

import logging
import operator
import re
import sys
from dataclasses import dataclass

import gevent

from locust_rs import metrics

logger = logging.getLogger(__name__)
_print = logging.getLogger("locust.stats_logger").info

_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_EXPR = re.compile(
    r"^\s*(?:(?P<name>.+):)?\s*(?P<metric>p\d+(?:\.\d+)?(?:_corrected)?|avg|min|max|med|rps|fail_rps|requests|fails"
    r"|error_rate)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?:ms)?\s*$"
)


@dataclass(frozen=True)
class Threshold:
    expression: str
    name: str | None
    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, expression: str) -> Threshold:
        m = _EXPR.match(expression)
        if m is None:
            raise ValueError(
                f"invalid threshold {expression!r}: expected [NAME:]METRIC OP VALUE, e.g. 'GET /api:p95<300' "
                "with METRIC one of pNN, pNN_corrected, avg, min, max, med, rps, fail_rps, requests, fails, error_rate"
            )
        q = m["metric"]
        if q.startswith("p") and not 0 <= float(q[1:].removesuffix("_corrected")) <= 100:
            raise ValueError(f"invalid threshold {expression!r}: percentile out of 0..100")
        name = m["name"].strip() if m["name"] else None
        return cls(expression.strip(), name or None, q, m["op"], float(m["value"]))


@dataclass
class Result:
    threshold: Threshold
    target: str
    observed: float | None
    passed: bool


_registered: list[Threshold] = []


def add(expression: str) -> Threshold:
    """Adds a threshold for the runs of this process (see the module docs for the syntax)."""
    t = Threshold.parse(expression)
    _registered.append(t)
    return t


def clear() -> None:
    _registered.clear()


def active(environment) -> list[Threshold]:
    opts = environment.parsed_options
    exprs = getattr(opts, "threshold", None) or [] if opts is not None else []
    return [*_registered, *(Threshold.parse(e) for e in exprs)]


def _targets(stats, name: str | None) -> list[tuple[str | None, str | None, object]]:
    if name is None:
        return [(None, None, stats.total)]
    found = []
    for (n, method), entry in stats.entries.items():
        if n == name or f"{method} {n}" == name:
            found.append((method, n, entry))
    return found


def _observe(metric: str, entry, hdr, request_type, name) -> float | None:
    if metric == "rps":
        return entry.total_rps
    if metric == "fail_rps":
        return entry.total_fail_per_sec
    if metric == "requests":
        return float(entry.num_requests)
    if metric == "fails":
        return float(entry.num_failures)
    if metric == "error_rate":
        return entry.fail_ratio
    if hdr is not None and hdr.count(request_type, name):
        corrected = metric.endswith("_corrected")
        if metric.startswith("p"):
            q = float(metric[1:].removesuffix("_corrected")) / 100.0
            if corrected and request_type is not None and not hdr.has_corrected(request_type, name):
                corrected = False
            return hdr.value_at_quantile(q, request_type, name, corrected)
        if metric == "med":
            return hdr.value_at_quantile(0.5, request_type, name)
        s = hdr.summary(request_type, name)
        return s["mean"] if metric == "avg" else s[metric]
    # No HDR data (recording off): Locust's own, rounded, figures.
    if entry.num_requests == 0:
        return None
    if metric == "avg":
        return entry.avg_response_time
    if metric == "min":
        return entry.min_response_time
    if metric == "max":
        return entry.max_response_time
    if metric == "med":
        return entry.median_response_time
    return entry.get_response_time_percentile(float(metric[1:].removesuffix("_corrected")) / 100.0)


def evaluate(environment, thresholds: list[Threshold] | None = None) -> list[Result]:
    """Checks the thresholds against the run's stats now; a threshold whose target has no
    data (an unknown name, no requests) fails, so a typo cannot pass silently."""
    run = metrics.current()
    hdr = run.total if run is not None else None
    stats = environment.runner.stats if environment.runner is not None else environment.stats
    results = []
    for t in active(environment) if thresholds is None else thresholds:
        targets = _targets(stats, t.name)
        if not targets:
            results.append(Result(t, t.name or "Aggregated", None, False))
            continue
        for request_type, name, entry in targets:
            observed = _observe(t.metric, entry, hdr, request_type, name)
            passed = observed is not None and _OPS[t.op](observed, t.value)
            label = f"{request_type} {name}" if request_type else "Aggregated"
            results.append(Result(t, label, observed, passed))
    return results


def report(results: list[Result]) -> str:
    rows = [("Threshold", "Target", "Observed", "Result")]
    for r in results:
        obs = "no data" if r.observed is None else f"{r.observed:.3f}"
        rows.append((r.threshold.expression, r.target, obs, "PASS" if r.passed else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["Thresholds"]
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


_verdict: list[Result] = []


def finish(environment) -> list[Result]:
    """End-of-run evaluation (at ``quitting``, before Locust settles the exit code): sets it to 1 on a breach. The
    table prints later, with :py:func:`print_verdict`."""
    global _verdict
    _verdict = []
    if isinstance(environment.runner, WorkerRunner) or not active(environment):
        return []
    results = _verdict = evaluate(environment)
    if not all(r.passed for r in results):
        environment.process_exit_code = 1
    return results


def print_verdict() -> None:
    """The verdict of :py:func:`finish`, at ``quit``: the last thing a headless run prints."""
    if _verdict:
        _print(report(_verdict))


def _watch(environment, interval: float) -> None:
    while True:
        gevent.sleep(interval)
        run = metrics.current()
        if run is not None:
            run.pump()
        failed = [r for r in evaluate(environment) if not r.passed and r.observed is not None]
        if failed:
            logger.error(
                "threshold breached, aborting the test: %s",
                "; ".join(f"{r.threshold.expression} ({r.target}: {r.observed:.3f})" for r in failed),
            )
            environment.process_exit_code = 1
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
        help="Pass/fail criterion, e.g. 'GET /api:p95<300' or 'error_rate<0.01' (repeatable); a breach at the end "
        "sets exit code 1",
    )
    group.add_argument(
        "--threshold-abort",
        action="store_true",
        default=False,
        help="Stop the test at the first threshold breach (checked while it runs)",
    )
    group.add_argument(
        "--threshold-abort-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="How often --threshold-abort checks (default 2 s)",
    )


def setup(environment) -> None:
    """At Locust's ``init``: checks the thresholds' syntax (a typo fails at start) and arms ``--threshold-abort``."""
    opts = environment.parsed_options
    # A typo must fail at start, not after a long run.
    try:
        active(environment)
    except ValueError as e:
        logger.error("%s", e)
        sys.exit(2)
    if (
        opts is not None
        and getattr(opts, "threshold_abort", False)
        and not isinstance(environment.runner, WorkerRunner)
    ):

        def start(**_kw) -> None:
            gevent.spawn(_watch, environment, max(0.1, float(opts.threshold_abort_interval)))

        environment.events.test_start.add_listener(start)

"""The run's verdict in words: the last line a run prints, with every reason for its exit code.

Exit codes (documented in ``docs/metrics.md``):

- 0: the run passed;
- 1 (Locust's ``--exit-code-on-error``): requests failed or tasks raised, and no threshold was crossed; also an output
  the user asked for that could not be written (:py:mod:`locust_rs.stats.outputs`), whatever ``--exit-code-on-error``
  says;
- 2: a usage error before any user ran (an option's value, a threshold's syntax, a host; with the ``locust-rs``
  command also Locust's own usage errors and a locustfile that fails to import, which plain ``locust`` exits 1
  for); also an unhandled error in Locust itself;
- 99 (:py:data:`locust_rs.stats.thresholds.EXIT_CODE`, as in k6): a threshold was crossed. It wins over failed requests,
  and the line names both.
"""

from __future__ import annotations

import logging

from locust_rs.stats import outputs, thresholds

_print = logging.getLogger("locust.stats_logger").info


def _failed_requests(environment) -> str:
    """The failed requests and task exceptions of the run, in words, or "" when there were none."""
    runner = environment.runner
    if runner is None:
        return ""
    parts = []
    total = runner.stats.total
    if total.num_failures:
        share = 100.0 * total.num_failures / total.num_requests if total.num_requests else 0.0
        parts.append(f"{total.num_failures:,} of {total.num_requests:,} requests failed ({share:.2f} %)")
    errors = sum(e.get("count", 1) for e in runner.exceptions.values()) if runner.exceptions else 0
    if errors:
        parts.append(f"{errors:,} task exception{'s' if errors != 1 else ''}")
    if not parts and runner.errors:  # failures recorded without a request count (a custom statistics entry)
        parts.append(f"{len(runner.errors):,} kinds of failure")
    return " and ".join(parts)


def line(environment, exit_code: int) -> str:
    """One sentence: passed or failed, the exit code, and why."""
    options = environment.parsed_options
    on_error = getattr(options, "exit_code_on_error", 1) if options is not None else 1
    failed_requests = _failed_requests(environment)
    n_crossed, n_thresholds = thresholds.crossed(environment)
    missing = outputs.not_written(environment)
    reasons = []
    if n_crossed:
        reasons.append(f"{n_crossed} of {n_thresholds} threshold{'s' if n_thresholds != 1 else ''} crossed")
    if missing:
        what = ", ".join(f"{path} ({why})" for path, why in missing.items())
        reasons.append(f"{len(missing)} output{'s' if len(missing) != 1 else ''} not written: {what}")
    if failed_requests:
        if on_error == 0:
            reasons.append(f"{failed_requests}, which --exit-code-on-error 0 lets pass")
        elif exit_code == on_error and not n_crossed:
            reasons.append(failed_requests)
        else:
            reasons.append(f"{failed_requests}, which alone would exit {on_error} (--exit-code-on-error)")
    if exit_code == 0:
        if n_thresholds:
            reasons.insert(0, f"all {n_thresholds} threshold{'s' if n_thresholds != 1 else ''} passed")
        return "Run passed (exit code 0)" + (": " + "; ".join(reasons) if reasons else "")
    if not n_crossed and not missing and not (failed_requests and exit_code == on_error):
        reasons.insert(0, "an error stopped the run (see the messages above)")
    return f"Run failed (exit code {exit_code}): " + "; ".join(reasons)


def print_line(environment, exit_code: int) -> None:
    """The verdict, at ``quit``, as the last line a run prints."""
    _print(line(environment, exit_code))

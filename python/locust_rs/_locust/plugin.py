"""The one module that registers locust-rs's Locust event listeners and command-line options.

``stats`` (Locust's statistics on the native core), ``stats.hdr_outputs`` (the HDR outputs, the web UI tab),
``stats.thresholds`` (pass/fail criteria) and ``arrival.report`` only provide functions; this module wires them to
Locust's events, in the order they need: at ``init`` the statistics move onto the core before the outputs that read it
start; at ``quitting``, the outputs are written before the threshold verdict. ``locust_rs/__init__.py`` imports it in a
Locust run, before Locust parses its options.
"""

from __future__ import annotations

from locust import events
from locust.runners import WorkerRunner

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from greenlet import getcurrent

from locust_rs import arrival, otel, stats
from locust_rs._facade import sessions as _sessions
from locust_rs._gevent import wait as _wait
from locust_rs._locust import distributed
from locust_rs.arrival import report as arrival_report
from locust_rs.stats import clock, correction, hdr_outputs, outputs, thresholds, verdict, webui

if TYPE_CHECKING:
    from locust.event import EventHook

    from collections.abc import Callable

logger = logging.getLogger(__name__)
_SCHEMES = ("http", "https", "ws", "wss")
# Whether a Locust run of this process reached `init`: a fact about the process, for the locust-rs command's exit
# code, not state of a run.
_began = False
# The listeners wired for the latest environment on each events object (by its id): Locust's events without an
# environment argument (`quit`, `spawning_complete`, the report events) get it from these closures. A later
# environment on the same events object replaces them, so an earlier run's closures never see its events.
_wired: dict[int, list[tuple[EventHook, Callable[..., None]]]] = {}

_wait.install()


def run_began() -> bool:
    """Whether this process's Locust run reached ``init`` (so its exit code is the run's, not a usage error's)."""
    return _began


def host_problem(host: str) -> str | None:
    """What is wrong with a ``--host`` value, in one line, or None. Without this a bad host only shows as one failure
    per request, after every user has spawned."""
    if "://" not in host:
        return f"--host {host!r} has no scheme; did you mean 'http://{host}'?"
    try:
        parts = urlsplit(host)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as e:
        return f"--host {host!r} is not a valid URL: {e}"
    if parts.scheme.lower() not in _SCHEMES:
        return f"--host {host!r}: the scheme {parts.scheme!r} is not supported (use http:// or https://)"
    if not parts.hostname:
        return f"--host {host!r} names no host"
    return None


def check_host(environment) -> None:
    """Stops the run at start, before any user spawns, when the host it was given cannot work (a worker leaves it to
    its master, which checks the same value)."""
    host = environment.host
    if not host or isinstance(environment.runner, WorkerRunner):
        return
    problem = host_problem(str(host))
    if problem:
        logger.error("%s", problem)
        sys.exit(2)


class Report(Protocol):
    """What the plugin asks of each of the run's reports, in this order over a run. A module is one (mypy checks
    that each in :py:data:`REPORTS` has every function)."""

    def setup(self, environment: Any, /) -> None:
        """At ``init``: the report's state, its web UI tab."""

    def on_test_start(self, environment: Any, /) -> None: ...

    def on_test_stop(self, environment: Any, /) -> None: ...

    def html_section(self, environment: Any, /) -> str:
        """At ``quitting``: its figures as HTML for the pages a report writes, or ""."""
        ...

    def on_quitting(self, environment: Any, sections: Sequence[str], /) -> None:
        """Writes its files, the pages among them with every report's ``sections``."""

    def print_table(self, environment: Any, /) -> None:
        """At ``quit``: its end-of-run table, after Locust's own."""


#: The run's reports: the HDR outputs (exact percentiles: _hdr.csv, .hlog, the HDR page, the web UI tab) and the open
#: model's (_arrival.csv, its section, console line and tab).
REPORTS: tuple[Report, ...] = (hdr_outputs, arrival_report)

distributed.install()
otel.hook_locust()


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    _sessions.add_options(parser)
    stats.add_options(parser)
    hdr_outputs.add_options(parser)
    thresholds.add_options(parser)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    attach(environment)


def attach(environment) -> None:
    """What locust-rs does at Locust's ``init``, for ``environment``: wires its listeners to ``environment.events``,
    bound to that environment, and sets up the run's state. Locust's ``init`` calls it in a run. Call it yourself for
    an environment with events of its own (``Environment()`` without ``events=``, as in Locust's runners driven in
    process by a script or a test), after its runner is made; Locust's global events get nothing of it."""
    global _began
    _began = True
    _wire(environment)
    check_host(environment)
    if environment.web_ui is not None:
        webui.check_form(environment.web_ui, {"max_body_size": _sessions.parse_size})
    otel.warn_if_untraced(environment)
    adopted = stats.adopt(environment)
    distributed.setup(environment, adopted is not None)
    distributed.listen_lost(
        environment,
        lambda client_id, now: arrival_report.on_worker_lost(environment, client_id, now),
        lambda client_id: arrival_report.on_worker_back(environment, client_id),
    )
    for report in REPORTS:
        report.setup(environment)
    correction.setup(environment, hdr_outputs.current(environment) is not None)
    thresholds.setup(environment)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:
    arrival.on_test_start(environment)
    for report in REPORTS:
        report.on_test_start(environment)
    distributed.on_test_start(environment)


@events.test_stopping.add_listener
def _on_test_stopping(environment, **_kwargs) -> None:
    # Before Locust stops the users: a clock still running would hand iterations to users being stopped, and start
    # new ones in their place.
    arrival.on_test_stop(environment)


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs) -> None:
    arrival.on_test_stop(environment)
    for report in REPORTS:
        report.on_test_stop(environment)


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    # The runner first: no request may end after the files are written. Then the files, then the verdict on them.
    settle(environment)
    sections = [section for report in REPORTS if (section := report.html_section(environment))]
    for report in REPORTS:
        report.on_quitting(environment, sections)
    thresholds.finish(environment)
    outputs.set_exit_code(environment)  # after the thresholds, whose 99 wins


def settle(environment) -> None:
    """Quits the run's runner, if it still runs, before the outputs are written at ``quitting``.

    ``--run-time`` quits the runner before Locust fires ``quitting``; SIGINT and SIGTERM fire ``quitting`` first and
    quit the runner after it. The requests in flight then ended in between: Locust's statistics, its CSV and JSON
    files and its tables counted them, and the outputs written at ``quitting`` did not (8 to 49 requests fewer). A
    master's runner also collects its workers' last reports as it quits. A runner that quit already has no greenlets
    left (its state does not say so: a master's is back to ready), and is not quit twice, which on a master would
    wait another 0.5 s for workers that are gone. The locustfile's own ``quitting`` listeners have run by now (Locust
    calls them in reverse)."""
    runner = environment.runner
    if runner is None or not runner.greenlet or getcurrent() in runner.greenlet:
        return
    runner.quit()


def _wire(environment) -> None:
    """At ``init``: listeners on ``environment.events`` for the events whose listeners get no environment, bound to
    this one; on events of its own, for every event locust-rs listens to."""
    events_ = environment.events
    for hook, listener in _wired.pop(id(events_), []):
        hook.remove_listener(listener)

    def on_spawning_complete(user_count, **_kwargs) -> None:
        hdr_outputs.on_spawning_complete(environment, user_count)

    def on_report_to_master(client_id, data, **_kwargs) -> None:
        distributed.on_report_to_master(environment, data)
        arrival_report.on_report_to_master(environment, data)
        clock.on_report_to_master(environment, data)

    def on_worker_report(client_id, data, **_kwargs) -> None:
        distributed.on_worker_report(environment, client_id, data)
        arrival_report.on_worker_report(environment, client_id, data)
        clock.on_worker_report(environment, client_id, data)

    def on_quit(exit_code: int = 0, **_kwargs) -> None:
        # After Locust's own tables, in this order: the exact table, the files, the thresholds, the verdict last.
        for report in REPORTS:
            report.print_table(environment)
        if not isinstance(environment.runner, WorkerRunner):
            clock.print_line(environment)
        hdr_outputs.print_files(environment)
        thresholds.print_verdict(environment)
        if not isinstance(environment.runner, WorkerRunner):
            verdict.print_line(environment, exit_code)

    wired: list[tuple[EventHook, Callable[..., None]]] = [
        (events_.spawning_complete, on_spawning_complete),
        (events_.report_to_master, on_report_to_master),
        (events_.worker_report, on_worker_report),
        (events_.quit, on_quit),
    ]
    if events_ is not events:
        # Events of its own: the module's listeners above, on Locust's global events, never hear them. (On the
        # global events they stay where they are, registered as this module is imported: so they run before a
        # locustfile's own test_start listeners, and after its quitting ones, which Locust calls in reverse.)
        wired += [
            (events_.test_start, lambda **kw: _on_test_start(environment)),
            (events_.test_stopping, lambda **kw: _on_test_stopping(environment)),
            (events_.test_stop, lambda **kw: _on_test_stop(environment)),
            (events_.quitting, lambda **kw: _on_quitting(environment)),
        ]
    for hook, listener in wired:
        hook.add_listener(listener)
    _wired[id(events_)] = wired

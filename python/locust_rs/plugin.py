"""The one module that registers locust-rs's Locust event listeners and command-line options.

``stats`` (Locust's statistics on the native core), ``metrics`` (the HDR outputs, the web UI tab) and ``thresholds``
(pass/fail criteria) only provide functions; this module wires them to Locust's events, in the order they need: at
``init`` the statistics move onto the core before the outputs that read it start; at ``quitting``, the outputs are
written before the threshold verdict. ``locust_rs/__init__.py`` imports it in a
Locust run, before Locust parses its options.
"""

from __future__ import annotations

from locust import events

from locust_rs import metrics, stats, thresholds


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    stats.add_options(parser)
    metrics.add_options(parser)
    thresholds.add_options(parser)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    metrics.setup(environment, stats.adopt(environment))
    thresholds.setup(environment)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:
    metrics.on_test_start()


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    metrics.on_quitting()
    thresholds.finish(environment)


@events.quit.add_listener
def _on_quit(**_kwargs) -> None:
    metrics.print_table()
    thresholds.print_verdict()

"""The one module that registers locust-rs's Locust event listeners and command-line options.

``metrics`` (HDR histograms, their outputs, the web UI tab) and ``thresholds`` (pass/fail criteria) only provide
functions; this module wires them to Locust's events, in the order they need: at ``quitting``, the metrics' final
drain comes before the threshold verdict, so the verdict sees every request. ``locust_rs/__init__.py`` imports it in a
Locust run, before Locust parses its options.
"""

from __future__ import annotations

from locust import events

from locust_rs import metrics, thresholds


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    metrics.add_options(parser)
    thresholds.add_options(parser)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    metrics.setup(environment)
    thresholds.setup(environment)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:
    metrics.on_test_start()


@events.report_to_master.add_listener
def _on_report_to_master(client_id, data, **_kwargs) -> None:
    metrics.on_report_to_master(data)


@events.worker_report.add_listener
def _on_worker_report(client_id, data, **_kwargs) -> None:
    metrics.on_worker_report(client_id, data)


@events.reset_stats.add_listener
def _on_reset_stats(**_kwargs) -> None:
    metrics.on_reset_stats()


@events.spawning_complete.add_listener
def _on_spawning_complete(user_count, **_kwargs) -> None:
    metrics.on_spawning_complete()


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    metrics.on_quitting()
    thresholds.finish(environment)

"""What locust-rs needs from Locust, in one place: the names and private seams it imports, reads or patches.

The supported range is :py:data:`locust_rs._locust_version.RANGE`. Every name in :py:data:`SEAMS` was checked in
Locust 2.46.7 and 2.47.0, the range's floor and newest release (and exists back to 2.40.0, except ``StopTest``,
from 2.43, and ``RestMixin``, from 2.46.6). ``tests/test_locust_compat.py`` fails on a Locust where one is missing,
and ``make test-locust-floor`` runs it on the floor, so that a release that moves a seam is caught by the test
suite, not by a user's traceback. The patches themselves are made by the modules that own them (``stats``,
``distributed``, ``swap``, ``_gevent.wait``, ``otel``); each patched name is listed here.
"""

from __future__ import annotations

import importlib

#: ``module:attribute.path`` of every Locust name locust-rs imports, reads or patches (patched ones marked in the
#: comment), that all supported releases have.
SEAMS = (
    # exceptions the sessions raise, catch or let through
    *(
        f"locust.exception:{n}"
        for n in (
            "CatchResponseError",
            "InterruptTaskSet",
            "LocustError",
            "RescheduleTask",
            "RescheduleTaskImmediately",
            "ResponseError",
            "StopTest",
            "StopUser",
        )
    ),  # fmt: skip
    "locust.log:unhandled_greenlet_exception",
    "locust.event:EventHook.fire",
    # the facades' contracts, and the import swap (patched: the module globals)
    "locust.contrib.fasthttp:FAILURE_EXCEPTIONS",
    "locust.contrib.fasthttp:LocustBadStatusCode",
    "locust.contrib.fasthttp:FastHttpUser.rest",
    "locust.contrib.fasthttp:FastHttpUser._callstack_regex",
    "locust.contrib.fasthttp:FastHttpSession",
    "locust.contrib.fasthttp:RestResponseContextManager",
    "locust.clients:HttpSession",
    "locust.user.users:RestMixin",
    "locust.user:HttpUser",
    "locust.web:HttpUser",
    # the zero wait (patched: TaskSet._sleep) and the open model
    "locust.user.task:TaskSet._sleep",
    "locust.user.task:TaskSet.wait",
    "locust.user.task:TaskSet.execute_task",
    "locust.util.timespan:parse_timespan",
    # runners (patched: WorkerRunner.connect_to_master)
    *(
        f"locust.runners:{n}"
        for n in (
            "STATE_INIT",
            "STATE_RUNNING",
            "STATE_SPAWNING",
            "WORKER_REPORT_INTERVAL",
            "MasterRunner",
            "WorkerRunner.connect_to_master",
            "Runner.spawn_users",
            "Runner.register_message",
            "WorkerNodes.all",
        )
    ),  # fmt: skip
    # the statistics on the native core (patched: the module's table, JSON and CSV functions)
    *(
        f"locust.stats:{n}"
        for n in (
            "RequestStats",
            "StatsEntry",
            "StatsError.create_key",
            "EntriesDict",
            "StatsEntryDict",
            "STATS_NAME_WIDTH",
            "STATS_TYPE_WIDTH",
            "PERCENTILES_TO_REPORT",
            "PERCENTILES_TO_STATISTICS",
            "get_readable_percentiles",
            "get_percentile_stats_summary",
            "print_percentile_stats",
            "get_stats_summary",
            "print_stats_json",
            "save_stats_json",
            "StatsCSV._percentile_fields",
            "StatsCSVFileWriter.close_files",
            "StatsCSVFileWriter.stats_writer",
        )
    ),  # fmt: skip
    # the web UI's tabs and downloads
    "locust.web:WebUI.auth_required_if_enabled",
)


def missing_seams() -> list[str]:
    """The names of :py:data:`SEAMS` the installed Locust lacks (none on a supported release)."""
    missing = []
    for seam in SEAMS:
        module_name, _, path = seam.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in path.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            missing.append(seam)
    return missing

"""Soak: a steady, realistic load held for a long time (``run-tests.sh soak``: 100 users for 60 minutes), to find
memory leaks, growing response times and resource exhaustion. The think times are longer than the main
locustfile's (``config.WAIT_TIMES["Soak"]``); the shape ramps up over the first ``RAMP_SHARE`` of the run and then
holds. Every ``REPORT_EVERY_S`` the run logs its current throughput and median and 95th-percentile response times,
so a drift shows in the log as well as in the ``*_stats_history.csv``.

    locust -f locustfiles/scenarios/soak_scenario.py --headless -u 100 -r 5 -t 60m
"""

from __future__ import annotations

from locust import LoadTestShape, between, events
from locust.runners import WorkerRunner

import os
import sys

import gevent

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import config  # noqa: E402
import locustfile  # noqa: E402
import utils  # noqa: E402

WAIT = between(*config.WAIT_TIMES["Soak"])
DEFAULT_USERS = 100
DEFAULT_RUN_TIME_S = 3600
RAMP_SHARE = 0.05
REPORT_EVERY_S = 300


class SoakRegularUser(locustfile.RegularUser):
    wait_time = WAIT


class SoakPowerUser(locustfile.PowerUser):
    wait_time = WAIT


class SoakAdminUser(locustfile.AdminUser):
    wait_time = WAIT


class SoakShape(LoadTestShape):
    use_common_options = True

    def tick(self):
        options = self.runner.environment.parsed_options if self.runner else None
        users = int(getattr(options, "num_users", None) or DEFAULT_USERS)
        run_time = float(getattr(options, "run_time", None) or DEFAULT_RUN_TIME_S)
        elapsed = self.get_run_time()
        if elapsed >= run_time:
            return None
        ramp = max(1.0, RAMP_SHARE * run_time)
        return users, max(1.0, users / ramp)


@events.test_start.add_listener
def _drift_reporter(environment, **_kw) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return

    def report() -> None:
        while True:
            gevent.sleep(REPORT_EVERY_S)
            total = environment.stats.total
            utils.log.info(
                "soak: %d users, %.1f req/s now, p50 %s ms, p95 %s ms, %d failures so far",
                environment.runner.user_count,
                total.current_rps,
                total.get_current_response_time_percentile(0.5),
                total.get_current_response_time_percentile(0.95),
                total.num_failures,
            )

    gevent.spawn(report)

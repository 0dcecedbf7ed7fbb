"""Spike: a quiet baseline, a sudden jump to the peak at a high spawn rate, a hold, the drop back, and a recovery
period at the baseline, to see whether the service absorbs the spike and recovers afterwards.

    locust -f locustfiles/scenarios/spike_scenario.py --headless -u 1000 -r 200 -t 5m

The shape reads the common options: ``--users`` is the peak (default 1000), ``--spawn-rate`` the rate of the jump
(default 200/s), ``--run-time`` the whole test (default 5 minutes). Of the run time:

=========  =========  =====================================
phase      share      users
=========  =========  =====================================
baseline   20 %       10 % of the peak, ramped gently
spike      30 %       the peak, reached at the spawn rate
recovery   the rest   back to the baseline
=========  =========  =====================================
"""

from __future__ import annotations

from locust import LoadTestShape, between

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import config  # noqa: E402
import locustfile  # noqa: E402

WAIT = between(*config.WAIT_TIMES["Spike"])
DEFAULT_PEAK = 1000
DEFAULT_SPAWN_RATE = 200.0
DEFAULT_RUN_TIME_S = 300
BASELINE_SHARE = 0.10
PHASES = (("baseline", 0.2), ("spike", 0.5), ("recovery", 1.0))  # phase -> end, as a share of the run time


class SpikeRegularUser(locustfile.RegularUser):
    wait_time = WAIT


class SpikePowerUser(locustfile.PowerUser):
    wait_time = WAIT


class SpikeAdminUser(locustfile.AdminUser):
    wait_time = WAIT


class SpikeShape(LoadTestShape):
    use_common_options = True

    def plan(self) -> tuple[int, float, float]:
        """(peak users, spawn rate of the jump, run time in seconds), from the options or the defaults."""
        options = self.runner.environment.parsed_options if self.runner else None
        peak = getattr(options, "num_users", None) or DEFAULT_PEAK
        rate = getattr(options, "spawn_rate", None) or DEFAULT_SPAWN_RATE
        run_time = getattr(options, "run_time", None) or DEFAULT_RUN_TIME_S
        return int(peak), float(rate), float(run_time)

    def phase(self, elapsed: float) -> str | None:
        _peak, _rate, run_time = self.plan()
        for name, end in PHASES:
            if elapsed < end * run_time:
                return name
        return None

    def tick(self):
        peak, rate, _run_time = self.plan()
        phase = self.phase(self.get_run_time())
        if phase is None:
            return None  # the end of the test
        baseline = max(1, int(peak * BASELINE_SHARE))
        if phase == "spike":
            return peak, rate
        # gentle on the way in; on the way out, users stop at the same high rate
        return baseline, (max(1.0, baseline / 10) if phase == "baseline" else rate)

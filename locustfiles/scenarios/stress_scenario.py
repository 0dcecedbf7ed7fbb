"""Stress: the three user types of ``locustfile.py`` with a tenth of their think time, to find where the service
breaks. Load it with many users (``run-tests.sh stress``: 500 users, 50 a second, 15 minutes) and watch for the
point where response times climb and failures or rate-limit hits start.

    locust -f locustfiles/scenarios/stress_scenario.py --headless -u 500 -r 50 -t 15m

The user mix (70/20/10) and the task weights are those of the main locustfile.
"""

from __future__ import annotations

from locust import between

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import config  # noqa: E402
import locustfile  # noqa: E402

WAIT = between(*config.WAIT_TIMES["Stress"])


class StressRegularUser(locustfile.RegularUser):
    wait_time = WAIT


class StressPowerUser(locustfile.PowerUser):
    wait_time = WAIT


class StressAdminUser(locustfile.AdminUser):
    wait_time = WAIT

"""A fixed amount of work for counting instructions: every user sends ``LOCUST_RS_BENCH_REQUESTS`` requests
(``GET /``, no wait, as ``locustfile.py``'s task) and stops; the process quits when the last one has.

    LOCUST_RS_BENCH_REQUESTS=100 valgrind --tool=callgrind --callgrind-out-file=100.cg \\
        python -m locust -f benchmarks/fixed_locustfile.py --headless -u 50 -r 1000 -t 300s --host URL

Run it twice with two counts (say 100 and 500). The difference of the two totals, divided by the difference in
requests, is the cost of one request without start-up and shut-down; see "Instructions per request" in the README.
Under valgrind the threads take turns, so the engine answers in smaller batches than it would on its own cores and
per-batch work (the hub's wakeups) weighs more than in a real run: compare builds with it, not generators.
"""

from locust import constant, task
from locust.exception import StopUser

import os

import gevent

import locust_rs

REQUESTS = int(os.environ.get("LOCUST_RS_BENCH_REQUESTS", "100"))
_stopped: list[int] = []


class FixedUser(locust_rs.FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.sent = 0

    @task
    def index(self) -> None:
        self.client.get("/")
        self.sent += 1
        if self.sent >= REQUESTS:
            _stopped.append(1)
            if len(_stopped) >= self.environment.parsed_options.num_users:
                gevent.spawn_later(0.5, self.environment.runner.quit)
            raise StopUser()

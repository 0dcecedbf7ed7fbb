"""Two Locust runs in one process, one after the other, with different options: each keeps its own statistics,
HDR outputs, thresholds, verdict and exit code (issue 28: run state lives on the environment, not in module
globals). The runs are Locust's own runner in process, driven through Locust's events as ``locust.main`` drives them,
and each ends on a condition (a count of requests), not on a clock."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)
from locust import constant, events, task
from locust.argument_parser import parse_options
from locust.env import Environment

import csv
import time

import gevent
import pytest

from locust_rs import FastHttpUser
from locust_rs.stats import hdr_outputs, thresholds, verdict
from locust_rs.arrival import report as arrival_report
from locust_rs._locust import plugin  # noqa: F401 - its listeners, on Locust's events, as in a run

REQUESTS = 20


class First(FastHttpUser):
    wait_time = constant(0.001)

    @task
    def hit(self):
        self.client.get("/echo/first", name="first")


class Second(FastHttpUser):
    wait_time = constant(0.001)

    @task
    def hit(self):
        self.client.get("/echo/second", name="second")


def _run(url: str, user_class, *args: str) -> Environment:
    options = parse_options(["--host", url, "--headless", *args])
    env = Environment(user_classes=[user_class], events=events, host=url, parsed_options=options)
    runner = env.create_local_runner()
    events.init.fire(environment=env, runner=runner, web_ui=None)
    runner.start(2, spawn_rate=100)
    deadline = time.monotonic() + 30
    while runner.stats.total.num_requests < REQUESTS:
        assert time.monotonic() < deadline, f"{runner.stats.total.num_requests} requests in 30 s"
        gevent.sleep(0.01)
    runner.quit()
    events.quitting.fire(environment=env, reverse=True)
    events.quit.fire(exit_code=env.process_exit_code or 0)
    return env


@pytest.fixture
def no_declared_thresholds():
    thresholds.clear()
    yield
    thresholds.clear()


def test_two_runs_in_one_process_keep_their_own_state(http_server, tmp_path, no_declared_thresholds):
    first = _run(http_server, First, "--csv", str(tmp_path / "first"), "--threshold", "max<0.001")
    first_total = first.runner.stats.total.num_requests
    second = _run(http_server, Second, "--no-hdr-metrics", "--threshold", "requests>0")

    # statistics: each run's own names, and the first's figures are not touched by the second's requests
    assert {name for name, _m in first.runner.stats.entries} == {"first"}
    assert {name for name, _m in second.runner.stats.entries} == {"second"}
    assert first.runner.stats.total.num_requests == first_total >= REQUESTS
    # HDR outputs: on in the first run (its CSV, with its names only), off in the second
    assert hdr_outputs.current(first) is not None and hdr_outputs.current(second) is None
    with open(tmp_path / "first_hdr.csv", newline="") as f:
        assert {row["Name"] for row in csv.DictReader(f)} == {"first", "Aggregated"}
    # thresholds: each run's own, its own verdict and exit code
    assert [(r.threshold.expression, r.passed) for r in thresholds.results(first)] == [("max<0.001", False)]
    assert [(r.threshold.expression, r.passed) for r in thresholds.results(second)] == [("requests>0", True)]
    assert first.process_exit_code == thresholds.EXIT_CODE and second.process_exit_code is None
    assert verdict.line(first, 99).startswith("Run failed (exit code 99): 1 of 1 threshold crossed")
    assert verdict.line(second, 0) == "Run passed (exit code 0): all 1 threshold passed"
    # no arrival-rate classes in either
    assert arrival_report.summary(first) == [] and arrival_report.summary(second) == []

"""A zero wait (``constant(0)``) skips its trip through the hub only when the task already blocked; the other
greenlets still run and stop requests still land."""

from locust import User, constant, task
from locust.env import Environment
from locust.exception import StopUser
from locust.user.task import TaskSet

import gevent
import pytest

import locust_rs
from locust_rs._gevent import bridge as _bridge
from locust_rs._gevent import wait as _wait

TASKS = 60


@pytest.fixture
def real_sleeps(monkeypatch):
    """The zero waits that went through the hub."""
    _wait.install()
    calls = []

    def counting_sleep(seconds):
        calls.append(seconds)
        gevent.sleep(seconds)

    monkeypatch.setattr(_wait, "_gevent_sleep", counting_sleep)
    return calls


def _ticker(ticks: list) -> gevent.Greenlet:
    def run():
        while True:
            ticks.append(1)
            gevent.sleep(0)

    return gevent.spawn(run)


class Counted:
    """A mixin whose tasks call ``self.done()`` at their end; the user stops after TASKS of them."""

    def done(self):
        self.count = getattr(self, "count", 0) + 1
        if self.count >= TASKS:
            raise StopUser()


def _run(user_cls, ticks: list) -> int:
    user = user_cls(Environment(user_classes=[user_cls]))
    ticker = _ticker(ticks)
    try:
        gevent.spawn(user.run).join(timeout=30)
    finally:
        ticker.kill()
    return user.count


def test_installed_in_a_locust_run():
    assert TaskSet._sleep is _wait._sleep


def test_a_task_that_never_blocks_still_yields_at_every_zero_wait(real_sleeps):
    class Busy(Counted, User):
        wait_time = constant(0)

        @task
        def spin(self):
            sum(range(100))
            self.done()

    ticks = []
    assert _run(Busy, ticks) == TASKS
    # No hub iteration happened between tasks, so every wait went through the hub, and the other greenlet ran.
    assert len(real_sleeps) >= TASKS - 1
    assert len(ticks) >= TASKS - 1


def test_a_nested_task_set_that_never_blocks_still_yields_at_every_zero_wait(real_sleeps):
    _bridge._get()  # the skip is considered only once the bridge exists, as after any request

    class Inner(Counted, TaskSet):
        def __getattr__(self, name):
            # A task set that answers every name: the wait's own state must not be read from it.
            return f"{name}?"

        @task
        def spin(self):
            sum(range(100))
            self.user.done()

    class Nested(Counted, User):
        wait_time = constant(0)
        tasks = [Inner]

    ticks = []
    assert _run(Nested, ticks) == TASKS
    # Every wait went through the hub, the first one too (the last task stops the user before its wait).
    assert len(real_sleeps) == TASKS - 1
    assert len(ticks) >= TASKS - 1


@pytest.mark.parametrize("base", [locust_rs.FastHttpUser, locust_rs.HttpUser], ids=["fasthttp", "requests"])
def test_a_task_that_blocked_skips_the_extra_trip(base, http_server, real_sleeps):
    class Fetch(Counted, base):
        host = http_server
        wait_time = constant(0)

        @task
        def fetch(self):
            self.client.get("/echo")
            self.done()

    ticks = []
    assert _run(Fetch, ticks) == TASKS
    # The first wait has nothing to compare with; after that every task had blocked on its request.
    assert len(real_sleeps) <= 1
    # The other greenlet still ran while the requests were in flight.
    assert len(ticks) >= TASKS - 1


def test_a_nonzero_wait_still_sleeps(real_sleeps):
    class Paced(Counted, User):
        wait_time = constant(0.001)

        @task
        def spin(self):
            self.done()

    assert _run(Paced, []) == TASKS
    assert real_sleeps == [0.001] * (TASKS - 1)


@pytest.mark.parametrize("stop_timeout", [None, 10], ids=["kill", "graceful"])
def test_stop_requests_land_with_zero_waits(stop_timeout, http_server):
    _wait.install()
    started, finished = [], []

    class Fetch(locust_rs.FastHttpUser):
        host = http_server
        wait_time = constant(0)

        @task
        def fetch(self):
            started.append(1)
            self.client.get("/echo")
            finished.append(1)

    env = Environment(user_classes=[Fetch], stop_timeout=stop_timeout)
    runner = env.create_local_runner()
    try:
        runner.start(5, spawn_rate=100)
        gevent.sleep(0.5)
        assert runner.user_count == 5 and len(finished) > 5
        with gevent.Timeout(5):
            runner.stop()
        assert runner.user_count == 0
        assert all(g.dead for g in runner.user_greenlets)
        if stop_timeout:
            # A graceful stop lets every running task end, and the user stops at its next wait.
            assert len(started) == len(finished)
    finally:
        runner.quit()

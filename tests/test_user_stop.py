"""What a user leaves behind when it stops: its HTTP connections close at once, as its WebSocket connections do, not
when Python's cycle collector gets to the user (issue 32, defect 7: at ``ulimit -n 256``, 60-88 % of requests failed
for about a minute after a ramp from 1,000 users to 100). Locust's runner in this process, with the cycle collector
off, so that nothing but the stop can close them."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)
from locust import constant, task
from locust.env import Environment

import gc
import time
from urllib.parse import urlsplit

import gevent
import psutil
import pytest

from locust_rs import FastHttpUser, HttpUser


class Fast(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def hit(self):
        self.client.get("/echo/fast")


class Requests(HttpUser):
    wait_time = constant(0.01)

    @task
    def hit(self):
        self.client.get("/echo/requests")


def _open_to(port: int) -> int:
    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def _until(condition, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        gevent.sleep(0.01)


@pytest.fixture
def no_cycle_collector():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


@pytest.mark.parametrize("user_class", [Fast, Requests])
def test_a_ramp_down_closes_the_stopped_users_connections_at_once(http_server, user_class, no_cycle_collector):
    port = urlsplit(http_server).port
    env = Environment(user_classes=[user_class], host=http_server)
    runner = env.create_local_runner()
    try:
        runner.start(20, spawn_rate=10_000)
        _until(lambda: _open_to(port) >= 20, f"20 users connected ({_open_to(port)})")
        runner.start(2, spawn_rate=10_000)  # 18 users stop
        _until(lambda: runner.user_count == 2, "the ramp down")
        _until(lambda: _open_to(port) <= 2, f"the stopped users' connections closed ({_open_to(port)} open)")
    finally:
        runner.quit()

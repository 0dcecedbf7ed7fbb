"""The open model through Locust's own runner in this process, on the arrival clock's manual time source
(``arrival.use_manual_clock``): what falls due, what begins, what is dropped, the start lags, the pool's growth, a
rate set while running and a worker's share are exact, whatever the machine's speed. Each step of the clock waits
until every iteration it released has run its request, so the figures never depend on how fast the users are.

The end-to-end runs in ``test_arrival.py`` check the same paths through ``locust`` subprocesses, on the real clock,
asserting only what the machine's speed cannot change."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)
from locust import LoadTestShape, events, task
from locust.argument_parser import parse_options
from locust.env import Environment

import re
import time

import gevent
import pytest

from locust_rs import FastHttpUser, arrival, constant_arrival_rate, ramping_arrival_rate
from locust_rs.arrival import report as arrival_report
from locust_rs._locust import plugin  # noqa: F401 - its listeners, on Locust's events, as in a run


class Api(FastHttpUser):
    wait_time = constant_arrival_rate(1000, max_users=60)

    @task
    def hit(self):
        self.client.get("/echo/api", name="api")


class Grows(FastHttpUser):
    # 10 iterations per 10 ms step against 2 users: the pool starts 8 more, and no more than its cap of 10
    wait_time = constant_arrival_rate(1000, max_users=10)

    @task
    def hit(self):
        self.client.get("/echo/grows", name="grows")


class Capped(FastHttpUser):
    # 10 iterations per step, 3 users and no room to grow: 7 of every 10 are dropped
    wait_time = constant_arrival_rate(1000, max_users=3)

    @task
    def hit(self):
        gevent.sleep(10)  # busy until the test stops it


class Ramp(FastHttpUser):
    wait_time = ramping_arrival_rate([(1, 200), (1, 200)], start_rate=0)

    @task
    def hit(self):
        self.client.get("/echo/ramp", name="ramp")


def _start(url: str, user_class, users: int, busy: int = 0) -> Environment:
    """A run of ``users`` users of ``user_class`` on the manual clock, once every user but ``busy`` (those that took
    the iteration due at the start and hold it) waits for an iteration."""
    options = parse_options(["--host", url, "--headless", "--only-summary"])
    env = Environment(user_classes=[user_class], events=events, host=url, parsed_options=options)
    arrival.use_manual_clock(env)
    runner = env.create_local_runner()
    events.init.fire(environment=env, runner=runner, web_ui=None)
    runner.start(users, spawn_rate=10_000)
    _until(lambda: _snapshot(env) is not None and _snapshot(env)["idle"] == users - busy, "every user waits")
    return env


def _until(condition, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        gevent.sleep(0.001)


def _snapshot(env):
    pools = list(arrival.pools(env).values())
    return pools[0].schedule.snapshot() if pools and pools[0].schedule.running else None


def _settled(env, requests_per_iteration: int = 1) -> bool:
    """Every iteration released so far has begun and sent its request, and every user waits for the next."""
    snap = _snapshot(env)
    begun = snap["scheduled"] - snap["dropped"]
    return (
        snap["iterations"] == begun
        and env.runner.stats.total.num_requests == begun * requests_per_iteration
        and snap["idle"] == snap["users"]
    )


def _step(env, seconds: float, steps: int, settled=_settled) -> None:
    for _ in range(steps):
        arrival.advance_clock(env, seconds)
        _until(lambda: settled(env), f"the step's iterations ran: {_snapshot(env)}")


def _end(env) -> None:
    env.runner.quit()
    events.quitting.fire(environment=env, reverse=True)


def test_every_iteration_due_begins_with_its_exact_start_lag_and_its_first_request_is_measured_from_its_due_time(
    http_server,
):
    env = _start(http_server, Api, 50)
    _until(lambda: _settled(env), "the first iteration (due at 0) ran")
    _step(env, 0.01, 200)  # 2 s in steps of 10 ms: one iteration due every 1 ms
    snap = _snapshot(env)
    assert (snap["scheduled"], snap["iterations"], snap["dropped"]) == (2001, 2001, 0), snap
    assert snap["elapsed"] == pytest.approx(2.0)
    assert snap["peak_users"] == 50, snap  # never more than -u: a user was always free
    # Due every 1 ms, released at the next 10 ms step: a start lag from 0 to 10 ms (an iteration due on a step by
    # the rate's arithmetic may fall a nanosecond after it), and no more.
    lags = arrival.pools(env)[Api].schedule.lag_times()
    assert sum(n for _t, n in lags) == 2001
    assert min(t for t, _n in lags) == 0 and max(t for t, _n in lags) <= 10.01, lags
    mean = lambda times: sum(t * n for t, n in times) / sum(n for _t, n in times)  # noqa: E731
    assert mean(lags) == pytest.approx(4.5, abs=0.1), lags
    entry = env.runner.stats.get("api", "GET")
    assert entry.num_requests == 2001 and entry.num_failures == 0
    # The corrected histogram measures each first request from its due time: its start lag more than the raw time,
    # so the two means differ by the mean start lag (to the histograms' 3 significant digits).
    core = env.stats.core.entry("api", "GET")
    raw, corrected = core.response_times(), core.corrected_times()
    assert corrected is not None and sum(n for _t, n in corrected) == 2001
    assert mean(corrected) - mean(raw) == pytest.approx(mean(lags), abs=0.02), (raw, corrected, lags)
    (row,) = arrival_report.summary(env)
    assert (row["scheduled"], row["iterations"], row["dropped"]) == (2001, 2001, 0), row
    assert row["target_rate"] == pytest.approx(1000)
    _end(env)


def test_the_pool_starts_users_up_to_its_cap_and_drops_only_beyond_it(http_server):
    env = _start(http_server, Grows, 2)
    _until(lambda: _settled(env), "the first iteration ran")
    # The pool starts users for iterations that find none free; they take them as they start (the first step waits
    # for them: a due iteration waits for a user being started, while the class is under its cap).
    _step(env, 0.01, 50)
    snap = _snapshot(env)
    assert (snap["scheduled"], snap["iterations"], snap["dropped"]) == (501, 501, 0), snap
    assert snap["users"] == snap["peak_users"] == 10, snap
    assert env.runner.user_count == 10
    _end(env)


def test_with_every_user_busy_and_the_pool_at_its_cap_the_rest_is_dropped(http_server):
    env = _start(http_server, Capped, 3, busy=1)

    def settled(env):
        snap = _snapshot(env)
        # every iteration released so far has begun or was dropped
        return snap["iterations"] == min(3, snap["scheduled"]) == snap["scheduled"] - snap["dropped"]

    _until(lambda: settled(env), "the first iteration began")
    _step(env, 0.01, 10, settled)
    snap = _snapshot(env)
    # 101 due: 3 began (one user each, busy for good), 98 dropped, none waiting.
    assert (snap["scheduled"], snap["iterations"], snap["dropped"]) == (101, 3, 98), snap
    assert snap["peak_users"] == 3, snap
    _end(env)


def test_a_ramp_releases_exactly_what_its_stages_say_then_nothing(http_server):
    env = _start(http_server, Ramp, 20)
    _until(lambda: _settled(env), "the first iteration ran")
    _step(env, 0.01, 100)
    assert _snapshot(env)["scheduled"] == 1 + 100, _snapshot(env)  # the ramp: 200/s * 1 s / 2
    _step(env, 0.01, 150)
    snap = _snapshot(env)
    # 200 more over the plateau, then none in the half second after the last stage
    assert (snap["scheduled"], snap["iterations"], snap["dropped"]) == (301, 301, 0), snap
    _end(env)


def test_a_rate_set_while_running_and_a_workers_share_are_in_force_from_that_moment_of_the_clock(http_server):
    env = _start(http_server, Api, 50)
    _until(lambda: _settled(env), "the first iteration ran")
    _step(env, 0.01, 50)  # 0.5 s at the class's 1000/s: 501
    arrival.set_target(env, "Api", 200.0)  # a load shape's arrival_rate()
    _step(env, 0.01, 50)  # 0.5 s at 200/s: 100 more
    assert _snapshot(env)["scheduled"] == 601, _snapshot(env)
    arrival.set_share(env, 0.5)  # what a master tells each of two workers
    _step(env, 0.01, 100)  # 1 s at 100/s
    arrival.set_target(env, "Api", None)  # back to the class's own rate, still half of it
    _step(env, 0.01, 100)  # 1 s at 500/s
    snap = _snapshot(env)
    assert snap["scheduled"] == 601 + 100 + 500, snap
    assert (snap["iterations"], snap["dropped"]) == (snap["scheduled"], 0), snap
    assert snap["share"] == 0.5 and snap["target_rate"] == pytest.approx(500), snap
    _end(env)


def test_a_worker_runs_nothing_until_its_master_says_its_share(http_server):
    """A worker's pools start at share 0 (a worker joining a running test must not run the whole rate), then run
    1/n once the master's message comes: ``arrival.report.on_worker_message``, as the master sends it."""
    from locust.rpc import Message
    from locust.runners import WorkerRunner

    env = _start(http_server, Api, 50)
    _until(lambda: _settled(env), "the first iteration ran")
    # This runner is local; a worker's pools start at share 0 (arrival._Pool.start): set as a worker's would be.
    assert not isinstance(env.runner, WorkerRunner)
    arrival.set_share(env, 0.0)
    _step(env, 0.01, 50)
    assert _snapshot(env)["scheduled"] == 1, _snapshot(env)
    arrival_report.on_worker_message(env, Message("locust_rs_arrival_split", {"count": 4, "targets": {}}, "master"))
    _step(env, 0.01, 100)  # 1 s at 1000/s / 4
    snap = _snapshot(env)
    assert snap["scheduled"] == 1 + 250 and snap["share"] == 0.25, snap
    arrival_report.on_worker_message(
        env, Message("locust_rs_arrival_split", {"count": 2, "targets": {"Api": 100}}, "m")
    )
    _step(env, 0.01, 100)  # 1 s at 100/s / 2
    snap = _snapshot(env)
    assert snap["scheduled"] == 1 + 250 + 50 and snap["target_rate"] == pytest.approx(50), snap
    assert arrival.targets(env) == {"Api": 100.0}
    _end(env)


def test_the_manual_clock_is_set_before_the_first_user_and_only_moves_when_asked(http_server):
    env = _start(http_server, Api, 5)
    with pytest.raises(RuntimeError, match="before the first arrival-rate user"):
        arrival.use_manual_clock(env)
    _until(lambda: _settled(env), "the first iteration ran")
    gevent.sleep(0.2)  # 200 iterations on a real clock
    assert _snapshot(env)["scheduled"] == 1, _snapshot(env)
    _end(env)
    other = Environment(user_classes=[Api], events=events)
    with pytest.raises(RuntimeError, match="needs use_manual_clock"):
        arrival.advance_clock(other, 1)


class _Shape(LoadTestShape):
    def __init__(self, rate) -> None:
        super().__init__()
        self.rate = rate

    def tick(self):
        return None

    def arrival_rate(self):
        return self.rate


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        (float("nan"), "_Shape.arrival_rate() gave nan for Api: a rate is a number of iterations per second from 0"),
        (-5, "_Shape.arrival_rate() gave -5 for Api"),
        (float("inf"), "_Shape.arrival_rate() gave inf for Api"),
        (True, "_Shape.arrival_rate() gave True for Api"),
        ("fast", "_Shape.arrival_rate() gave 'fast' for Api"),
        ({"Nope": 5}, "_Shape.arrival_rate() names 'Nope', which is not an arrival-rate user class of this run (Api)"),
        ({"Api": float("nan")}, "_Shape.arrival_rate() gave nan for Api"),
    ],
)
def test_a_shapes_bad_arrival_rate_is_named(rate, message):
    env = Environment(user_classes=[Api], shape_class=_Shape(rate))
    with pytest.raises(arrival_report.ShapeError, match=re.escape(message)):
        arrival_report._shape_targets(env)


def test_a_shapes_good_arrival_rates():
    assert arrival_report._shape_targets(Environment(user_classes=[Api], shape_class=_Shape(50))) == {"Api": 50}
    assert arrival_report._shape_targets(Environment(user_classes=[Api], shape_class=_Shape(None))) == {"Api": None}
    both = Environment(user_classes=[Api, Ramp], shape_class=_Shape({"Ramp": 0}))
    assert arrival_report._shape_targets(both) == {"Api": None, "Ramp": 0}


def test_a_bad_shape_stops_the_run_once_with_one_line_not_a_traceback_a_second(caplog):
    """It logged a traceback every second and ran on at the class's own rate."""

    class Runner:
        quits = 0

        def quit(self):
            Runner.quits += 1

    env = Environment(user_classes=[Api], shape_class=_Shape(float("nan")))
    env.runner = Runner()  # type: ignore[assignment]
    monitor = arrival_report._Monitor(env)
    with caplog.at_level("ERROR"):
        done = gevent.spawn(monitor.run)
        done.join(timeout=5)
        gevent.sleep(0)  # the quit it spawned
    assert done.dead
    assert Runner.quits == 1 and env.process_exit_code == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "_Shape.arrival_rate() gave nan for Api: a rate is a number of iterations per second from 0, or None for the "
        "class's own; stopping the run"
    ]
    assert errors[0].exc_info is None

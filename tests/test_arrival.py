"""Open-model (arrival-rate) users: the schedule's rate, the pool and its cap, dropped iterations, start lag, the
corrected latency of an iteration's first request, ramps, thresholds and outputs.

The runs go to ``stall_server.py`` on loopback (about 1 ms a response, a stall on demand, a route that never
answers), each bounded by Locust's ``-t`` and ``finish_locust``'s timeout."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)

import csv
import json
import math
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import gevent
import pytest

import child_servers
from test_e2e_locust import finish_locust, processes, start_locust, write_locustfile
from test_websocket import ws_server  # noqa: F401 - the module-scoped server fixture

from locust_rs import _native, constant_arrival_rate, ramping_arrival_rate
from locust_rs._gevent import bridge as _bridge
from locust_rs.arrival import watch
from locust_rs.arrival.report import percentile

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def stall_server():
    proc, info = child_servers.spawn(HERE / "stall_server.py", what="the stall server")
    yield f"http://127.0.0.1:{info['port']}"
    child_servers.stop(proc)


def _run(tmp_path: Path, host: str, body: str, run_time: int, *args: str, only_summary: bool = True):
    lf = write_locustfile(tmp_path, textwrap.dedent(body))
    prefix = tmp_path / "run"
    if "-r" not in args and "-u" in args:
        # The pool spawns in the first second (Locust's default of 1 user/s would drop most of a short run).
        args = (*args, "-r", args[args.index("-u") + 1])
    if only_summary:
        args = ("--only-summary", *args)
    proc = start_locust(lf, "--headless", "-H", host, "-t", f"{run_time}s", "--csv", str(prefix), *args)
    return finish_locust(proc, run_time + 30, prefix)


def _arrival_rows(run) -> dict[str, dict[str, str]]:
    with open(f"{run.csv_prefix}_arrival.csv", newline="") as f:
        return {row["User class"]: row for row in csv.DictReader(f)}


def _hdr_rows(run) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{run.csv_prefix}_hdr.csv", newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


# -- the API ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: constant_arrival_rate(-1), "a rate must be a number from 0"),
        (lambda: constant_arrival_rate(float("nan")), "a rate must be a number from 0"),
        (lambda: constant_arrival_rate("10"), "a rate must be a number of iterations"),
        (lambda: constant_arrival_rate(10, time_unit=0), "time_unit must be a positive number"),
        (lambda: constant_arrival_rate(10, time_unit="soon"), "time_unit 'soon'"),
        (lambda: constant_arrival_rate(10, max_users=-3), "max_users must be a whole number"),
        (lambda: ramping_arrival_rate([]), "at least one stage"),
        (lambda: ramping_arrival_rate([(0, 10)]), "stage 1 duration must be a positive number"),
        (lambda: ramping_arrival_rate([("10s",)]), "stage 1 ('10s',) is not (duration, target)"),
        (lambda: ramping_arrival_rate([{"duration": "10s"}]), "stage 1 {'duration': '10s'} has no 'target'"),
        (lambda: ramping_arrival_rate([(float("inf"), 1), (1, 2)]), "stage 1 lasts forever but is not the last"),
        # each of these failed otherwise (ZeroDivisionError, a run of nothing, an OverflowError naming nothing, one in
        # a user's task)
        (lambda: constant_arrival_rate(10, time_unit="0s"), "time_unit must be a positive number of seconds"),
        (lambda: constant_arrival_rate(10, time_unit=float("inf")), "time_unit must be a finite number of seconds"),
        (lambda: constant_arrival_rate(10, seed=-1), "seed must be a whole number from 0 to 2**64 - 1"),
        (lambda: constant_arrival_rate(10, seed=2**64), "seed must be a whole number from 0 to 2**64 - 1"),
        (lambda: constant_arrival_rate(10, max_users=10**30), "max_users must be a whole number of users"),
    ],
)
def test_a_bad_schedule_is_refused_when_the_locustfile_is_imported(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_k6_style_stages_and_time_units_give_rates_per_second():
    r = ramping_arrival_rate([{"duration": "1m", "target": 600}, ("30s", 0)], start_rate=60, time_unit="1m")
    assert r.start_rate == 1.0
    assert r.stages == [(60.0, 10.0), (30.0, 0.0)]
    assert constant_arrival_rate(3, time_unit=2).stages == [(float("inf"), 1.5)]
    assert r() == 0.0  # as a wait time: the wait happens before the task, on the schedule


def test_hdr_percentile_of_bucket_lists():
    times = [(1.0, 90), (5.0, 9), (100.0, 1)]
    assert percentile(times, 0.5) == 1.0
    assert percentile(times, 0.95) == 5.0
    assert percentile(times, 0.999) == 100.0
    assert percentile(times, 1.0) == 100.0
    assert percentile([], 0.5) == 0.0


# -- the native schedule, in this process ---------------------------------------------------------------------------


@pytest.fixture(params=["hub", "thread"])
def clock_driver(request, monkeypatch):
    """Schedules made in the test are driven by the gevent hub (Linux's default) or by a thread of their own."""
    if request.param == "thread":
        monkeypatch.setenv("LOCUST_RS_ARRIVAL_CLOCK", "thread")
    else:
        monkeypatch.delenv("LOCUST_RS_ARRIVAL_CLOCK", raising=False)
    return request.param


def _expect_driver(s, driver: str) -> None:
    assert (s.timer_fd() is not None) == (driver == "hub" and sys.platform == "linux")


def test_iterations_start_on_schedule_for_waiting_greenlets_and_a_killed_waiter_loses_nothing(clock_driver):
    s = _native.ArrivalSchedule(400.0, [(float("inf"), 400.0)], False, 0, None)
    _expect_driver(s, clock_driver)
    begun = []

    def user():
        s.register()
        while True:
            due = _bridge.wait(s.acquire())
            if not isinstance(due, int):
                return
            begun.append(s.begin(due))
            gevent.sleep(0.02)  # an iteration that takes 20 ms: 8 users cover 400/s

    # Twice as many users as 400/s keeps busy, so one is free whenever an iteration is due; on a loaded machine a
    # hub held up for tens of ms can still leave none free for an instant (then it is dropped, as it should be).
    users = [gevent.spawn(user) for _ in range(20)]
    gevent.sleep(0.05)
    s.start()
    alarm = watch(s)
    gevent.sleep(0.5)
    users[0].kill()  # killed while it waits or works: the schedule goes on without it
    gevent.sleep(0.5)
    s.stop()
    if alarm is not None:
        alarm.stop()
    gevent.joinall(users, timeout=5)
    assert all(g.dead for g in users)
    snap = s.snapshot()
    assert 380 <= snap["scheduled"] <= 420, snap
    assert snap["dropped"] <= 2, snap
    # Every iteration due went to a user: begun, or handed over as the clock stopped.
    assert snap["scheduled"] - snap["iterations"] - snap["dropped"] <= 20, snap
    assert snap["iterations"] == len(begun)
    assert percentile(s.lag_times(), 0.5) < 5.0, s.lag_times()[:10]
    assert _bridge.pending() == 0


def test_on_a_manual_clock_every_iteration_due_goes_to_a_waiting_user_exactly():
    """The same as above on the schedule's manual clock, where nothing depends on the machine's speed: at 400/s for
    1 s, 401 iterations are due (one at 0), each goes to a free user, a killed waiter loses none, and each starts
    late by exactly the time from its due time to the clock step that released it."""
    s = _native.ArrivalSchedule(400.0, [(float("inf"), 400.0)], False, 0, None, manual_clock=True)
    begun = []

    def user():
        s.register()
        while True:
            due = _bridge.wait(s.acquire())
            if not isinstance(due, int):
                return
            begun.append((due, s.begin(due)))

    def settle():
        # every iteration released so far has begun (the users take them as the hub runs them)
        deadline = time.monotonic() + 10
        while s.snapshot()["iterations"] < s.snapshot()["scheduled"] - s.snapshot()["dropped"]:
            assert time.monotonic() < deadline, s.snapshot()
            gevent.sleep(0.001)

    users = [gevent.spawn(user) for _ in range(5)]
    gevent.sleep(0)  # all five wait
    s.start()
    settle()
    for step in range(1, 101):  # 100 steps of 10 ms
        if step == 50:
            users[0].kill()  # killed while it waits: the schedule goes on without it
        s.advance(0.01)
        settle()
    snap = s.snapshot()
    assert (snap["scheduled"], snap["iterations"], snap["dropped"]) == (401, 401, 0), snap
    s.stop()
    gevent.joinall(users, timeout=5)
    assert all(g.dead for g in users)
    # due at k * 2.5 ms, released at the next 10 ms step: lags of 0, 7.5, 5 and 2.5 ms, in turn
    for due, lag in begun:
        due_ms = due / 1e6
        assert lag == pytest.approx(math.ceil(due_ms / 10 - 1e-9) * 10 - due_ms, abs=1e-3), (due, lag)
    assert _bridge.pending() == 0


def test_with_no_free_user_and_the_pool_at_its_cap_iterations_are_dropped_and_counted(clock_driver):
    s = _native.ArrivalSchedule(500.0, [(float("inf"), 500.0)], False, 0, None)
    _expect_driver(s, clock_driver)
    s.register()  # one user, busy forever: nothing can take an iteration
    s.start()
    alarm = watch(s)
    gevent.sleep(0.2)
    s.stop()
    if alarm is not None:
        alarm.stop()
    snap = s.snapshot()
    assert snap["scheduled"] >= 90
    assert snap["dropped"] == snap["scheduled"]
    assert snap["iterations"] == 0


# -- runs -----------------------------------------------------------------------------------------------------------

_CONSTANT = """
    from locust import task
    from locust_rs import FastHttpUser, constant_arrival_rate

    class Api(FastHttpUser):
        wait_time = constant_arrival_rate({rate}, max_users={max_users}{extra})

        @task
        def hit(self):
            self.client.get("{path}")
"""


def test_scheduled_is_rate_times_duration_and_nothing_drops_with_users_to_spare(tmp_path, stall_server):
    # Room for 950 more users than the 50 started: a hub held up for most of a second (a loaded machine, or Locust's
    # own stop, which keeps it busy for 50-150 ms before it tells the clock) has users to spare for what fell due.
    body = _CONSTANT.format(rate=1000, max_users=1000, extra="", path="/")
    run = _run(tmp_path, stall_server, body, 4, "-u", "50")
    run.assert_exit(0)
    row = _arrival_rows(run)["Api"]
    elapsed, target = float(row["Elapsed"]), float(row["Target rate"])
    scheduled, started, dropped = int(row["Scheduled"]), int(row["Iterations"]), int(row["Dropped iterations"])
    assert target == pytest.approx(1000, rel=0.001)
    # One due at the start, then one each ms until the stop (Elapsed is rounded to the ms), however far
    # behind the hub was when the run stopped.
    due = 1000 * elapsed
    assert due - 1.5 <= scheduled - 1 <= due + 0.5, row
    # Each was begun, or dropped, or had not begun when the run stopped: handed to a user (one each at most) or
    # waiting for a user being started (the room below the cap). However busy the hub was at the stop.
    assert scheduled - 1000 <= started + dropped <= scheduled, row
    assert dropped == 0, row
    assert float(row["Start lag p50"]) < 5, row
    # The corrected side has every request; with no lag to speak of, it stays close to raw.
    hdr = _hdr_rows(run)[("GET", "/")]
    assert hdr["Corrected Count"] == hdr["Count"]
    assert float(hdr["Corrected p50"]) >= float(hdr["p50"])
    assert float(hdr["Corrected p50"]) < float(hdr["p50"]) + 5


def test_a_server_that_never_answers_holds_the_cap_drops_the_rest_and_the_run_ends_on_time(tmp_path, stall_server):
    # The numbers: 1,000 iterations/s, a cap of 200 users.
    body = _CONSTANT.format(rate=1000, max_users=200, extra="", path="/never") + textwrap.indent(
        textwrap.dedent("""
            @events.quitting.add_listener
            def peak_memory(**_kw):
                with open("/proc/self/status") as f:
                    peak = next(line for line in f if line.startswith("VmHWM"))
                open("peak_rss", "w").write(peak.split()[1])
        """),
        "    ",
    ).replace("from locust import task", "from locust import events, task")
    started = time.monotonic()
    run = _run(tmp_path, stall_server, body, 3, "-u", "50")
    took = time.monotonic() - started
    run.assert_exit(0)
    row = _arrival_rows(run)["Api"]
    assert int(row["Peak users"]) == 200, row
    # One iteration per user held; a handful more where a user ended and another took its place (1 to 12 in 2,800
    # seen here, while never more than 200 were held at once).
    begun = int(row["Iterations"])
    assert 200 <= begun <= 230, row
    scheduled = int(row["Scheduled"])
    assert scheduled >= 1000 * 2
    # Every iteration due beyond those that began was dropped (those waiting for a user at the end included), but
    # the few handed to users that the end of the test stopped before they began (about 10 in 2,800 here).
    assert scheduled - begun - 30 <= int(row["Dropped iterations"]) <= scheduled - begun, row
    assert took < 3 + 20, took
    if os.path.exists(tmp_path / "peak_rss"):  # Linux's /proc
        # 2,800 iterations due and dropped, 200 requests held open: no queue grows with them.
        assert int((tmp_path / "peak_rss").read_text()) < 300_000, "peak RSS (KiB)"


@pytest.mark.parametrize("user", ["HttpUser", "FastHttpUser"])
@pytest.mark.parametrize("listener", [False, True], ids=["core only", "with a listener"])
def test_the_first_request_of_an_iteration_is_measured_from_when_it_was_due(tmp_path, stall_server, user, listener):
    # With a listener of the locustfile's own, the event goes through Locust's fire and the core reads the lead off
    # the response; without, the session hands it to the core directly.
    body = """
        import gevent
        from locust import events, task
        from locust_rs import HttpUser, FastHttpUser, constant_arrival_rate

        if LISTENER:
            events.request.add_listener(lambda **kw: None)

        class Api(USER):
            wait_time = constant_arrival_rate(20, max_users=20)

            @task
            def hit(self):
                gevent.sleep(0.05)  # 50 ms of work before the first request
                self.client.get("/", name="first")
                with self.client.get("/", name="second", catch_response=True):
                    pass
    """.replace("LISTENER", str(listener)).replace("USER", user)
    run = _run(tmp_path, stall_server, body, 2, "-u", "5")
    run.assert_exit(0)
    hdr = _hdr_rows(run)
    first, second = hdr[("GET", "first")], hdr[("GET", "second")]
    assert float(first["Corrected p50"]) == pytest.approx(float(first["p50"]) + 50, abs=10), first
    assert float(first["Corrected Min"]) >= 50
    # A later request of the iteration is measured as sent.
    assert float(second["Corrected p50"]) == pytest.approx(float(second["p50"]), rel=0.01, abs=0.01), second


def test_a_stall_shows_in_the_open_model_and_hides_in_the_closed_one(tmp_path, stall_server):
    body = """
        import gevent
        from locust import constant_throughput, events, task
        from locust_rs import FastHttpUser, constant_arrival_rate

        @events.spawning_complete.add_listener
        def stall_later(**_kw):
            def stall():
                gevent.sleep(1.5)
                import urllib.request
                urllib.request.urlopen("{host}/stall?secs=1").read()
            gevent.spawn(stall)

        class Open(FastHttpUser):
            wait_time = constant_arrival_rate(100, max_users=300)

            @task
            def hit(self):
                self.client.get("/", name="open")

        class Closed(FastHttpUser):
            wait_time = constant_throughput(10)

            @task
            def hit(self):
                self.client.get("/", name="closed")
    """.replace("{host}", stall_server)
    run = _run(tmp_path, stall_server, body, 4, "-u", "20", "-r", "100")
    run.assert_exit(0)
    hdr = _hdr_rows(run)
    opened, closed = hdr[("GET", "open")], hdr[("GET", "closed")]
    # About 100 of the ~350 open-model iterations were due during the 1 s stall, waiting 0-1,000 ms.
    assert 700 <= float(opened["p99"]) <= 1100, opened
    assert 700 <= float(opened["Corrected p99"]) <= 1100, opened
    # The closed model's ten users each sent one request into the stall: its raw p99 stays low.
    assert float(closed["p99"]) < float(opened["p99"]) / 2 or float(closed["p90"]) < 50, closed
    row = _arrival_rows(run)["Open"]
    assert int(row["Dropped iterations"]) == 0, row
    assert int(row["Peak users"]) > 50, row


def test_a_ramp_follows_its_stages_and_ends(tmp_path, stall_server):
    body = """
        from locust import task
        from locust_rs import FastHttpUser, ramping_arrival_rate

        class Ramp(FastHttpUser):
            wait_time = ramping_arrival_rate([("1s", 200), ("1s", 200)], start_rate=0)

            @task
            def hit(self):
                self.client.get("/")
    """
    run = _run(tmp_path, stall_server, body, 4, "-u", "20")
    run.assert_exit(0)
    row = _arrival_rows(run)["Ramp"]
    # 100 iterations over the ramp, 200 over the plateau, then none.
    assert 300 <= int(row["Scheduled"]) <= 301, row
    assert int(row["Iterations"]) + int(row["Dropped iterations"]) == int(row["Scheduled"]), row
    assert int(row["Dropped iterations"]) <= 1, row
    assert float(row["Target rate"]) == pytest.approx(300 / float(row["Elapsed"]), rel=0.01)


def test_poisson_arrivals_and_thresholds_on_iterations(tmp_path, stall_server):
    extra = ", poisson=True, seed=7"
    run = _run(
        tmp_path,
        stall_server,
        _CONSTANT.format(rate=300, max_users=30, extra=extra, path="/"),
        3,
        "-u",
        "30",
        "--threshold",
        "dropped_iterations<1",
        "--threshold",
        "Api:iterations>100",
        "--threshold",
        "start_lag:p(50)<50ms",
        "--threshold",
        "iteration_rate>1000",
    )
    run.assert_exit(99)  # the last threshold cannot pass
    row = _arrival_rows(run)["Api"]
    due = 300 * float(row["Elapsed"])
    # A Poisson count: within five standard deviations.
    assert abs(int(row["Scheduled"]) - due) < 5 * due**0.5, row
    out = run.output
    assert "✓  dropped_iterations<1" in out
    assert "✓  Api:iterations>100" in out
    assert "✓  start_lag:p(50)<50ms" in out
    assert "✗  iteration_rate>1000" in out
    assert "Start lag (ms) of arrival-rate iterations" in out


def test_no_arrival_classes_no_arrival_outputs(tmp_path, stall_server):
    body = """
        from locust import constant, task
        from locust_rs import FastHttpUser

        class Plain(FastHttpUser):
            wait_time = constant(0.1)

            @task
            def hit(self):
                self.client.get("/")
    """
    run = _run(tmp_path, stall_server, body, 2, "-u", "2", "--threshold", "dropped_iterations<1")
    run.assert_exit(99)  # no arrival-rate users: no data, and no data fails
    assert not os.path.exists(f"{run.csv_prefix}_arrival.csv")
    assert "Start lag" not in run.output


def test_processes_split_the_rate_and_the_master_adds_up_their_figures(tmp_path, stall_server):
    run = _run(
        tmp_path,
        stall_server,
        _CONSTANT.format(rate=400, max_users=60, extra="", path="/"),
        4,
        "-u",
        "40",
        *processes(2),
    )
    run.assert_exit(0)
    row = _arrival_rows(run)["Api"]
    elapsed = float(row["Elapsed"])
    # 200/s on each of the two processes: 400/s in all, not 800/s. Each clock starts when its first user asks, and
    # the master's figure for the time is the longer of the two.
    assert 400 * elapsed * 0.93 <= int(row["Scheduled"]) <= 400 * elapsed * 1.01, row
    assert int(row["Dropped iterations"]) == 0, row
    assert float(row["Target rate"]) == pytest.approx(400, rel=0.07), row
    stats = run.stats()
    requests = int(stats[("GET", "/")]["Request Count"])
    assert abs(requests - int(row["Iterations"])) <= 40, (requests, row)


def test_a_load_shape_sets_the_rate_while_the_test_runs(tmp_path, stall_server):
    body = """
        from locust import LoadTestShape, task
        from locust_rs import FastHttpUser, constant_arrival_rate

        class Api(FastHttpUser):
            wait_time = constant_arrival_rate(50, max_users=40)

            @task
            def hit(self):
                self.client.get("/")

        class Shape(LoadTestShape):
            def tick(self):
                return (20, 20) if self.get_run_time() < 4 else None

            def arrival_rate(self):
                # The class's own 50/s until 1.5 s, then 200/s.
                return None if self.get_run_time() < 1.5 else 200
    """
    run = _run(tmp_path, stall_server, body, 10, only_summary=False)
    run.assert_exit(0)
    row = _arrival_rows(run)["Api"]
    # Looked at once a second: 200/s from the first look after 1.5 s (at 2 s, give or take the tick).
    scheduled = int(row["Scheduled"])
    elapsed = float(row["Elapsed"])
    low = 50 * 2.2 + 200 * (elapsed - 2.2)
    high = 50 * 1.4 + 200 * (elapsed - 1.4)
    assert low * 0.97 <= scheduled <= high * 1.03, (low, high, row)
    assert float(row["Target rate"]) > 100, row
    # The console line, every two seconds beside Locust's tables.
    assert "Arrival rate Api: target 200.0/s, achieved" in run.output, run.output[-3000:]


def test_the_web_ui_shows_target_and_achieved_rates(tmp_path, stall_server):
    import json
    import urllib.request

    from test_e2e_locust import free_port

    from locust_rs.arrival import report as arrival_report

    lf = write_locustfile(tmp_path, textwrap.dedent(_CONSTANT.format(rate=100, max_users=20, extra="", path="/")))
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    proc = start_locust(
        lf, "-H", stall_server, "--web-host", "127.0.0.1", "--web-port", str(port), "--autostart", "--autoquit", "1",
        "-u", "10", "-r", "10", "-t", "5s", "--csv", str(tmp_path / "run"),
    )  # fmt: skip
    row = page = None
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{web}/stats/requests", timeout=5) as r:
                    data = json.loads(r.read())
                with urllib.request.urlopen(f"{web}/", timeout=5) as r:
                    page = r.read()
            except OSError:
                time.sleep(0.2)
                continue
            extended = {e["key"]: e["data"] for e in data.get("extended_stats", [])}
            rows = extended.get(arrival_report.WEB_TAB) or []
            if rows and rows[0]["iterations"] >= 200:
                row = rows[0]
                break
            time.sleep(0.3)
    finally:
        run = finish_locust(proc, 30, tmp_path / "run")
    assert row is not None, run.output[-3000:]
    assert row["name"] == "Api" and row["target"] == 100.0, row
    assert 80 <= row["achieved"] <= 120, row
    assert row["dropped"] == 0 and row["lag_p99"] < 50, row
    assert b"Arrival rate" in page


def test_websocket_users_run_on_the_schedule_and_their_round_trips_are_corrected(tmp_path, ws_server):  # noqa: F811
    body = """
        import gevent
        from locust import task
        from locust_rs import WebSocketUser, constant_arrival_rate

        class Chat(WebSocketUser):
            wait_time = constant_arrival_rate(50, max_users=20)

            def on_start(self):
                self.ws = self.connect("/echo?token=abc")

            @task
            def ping(self):
                gevent.sleep(0.03)  # 30 ms before the round trip
                self.ws.request({"type": "ping"}, reply="pong", name="ping")
    """
    run = _run(tmp_path, f"http://127.0.0.1:{ws_server['port']}", body, 3, "-u", "10")
    run.assert_exit(0)
    row = _arrival_rows(run)["Chat"]
    assert int(row["Dropped iterations"]) == 0, row
    # The rate over the clock's own time: the clock starts with the first user's iteration, which a loaded CI machine
    # can put a second or more into the run (the WebSocket-failure test below once recorded 19 of the 40 due in 2 s).
    assert float(row["Elapsed"]) >= 1 and int(row["Iterations"]) >= 0.9 * 50 * float(row["Elapsed"]), row
    ping = _hdr_rows(run)[("WSRT", "ping")]
    # The round trip's lead is taken when it ends: the 30 ms before it, give or take the hub.
    assert float(ping["Corrected p50"]) == pytest.approx(float(ping["p50"]) + 30, abs=10), ping


@pytest.mark.parametrize("listener", [False, True], ids=["core only", "with a listener"])
def test_a_websocket_connect_that_begins_an_iteration_is_corrected(tmp_path, ws_server, listener):  # noqa: F811
    body = """
        import gevent
        from locust import events, task
        from locust_rs import WebSocketUser, constant_arrival_rate

        if LISTENER:
            events.request.add_listener(lambda **kw: None)

        class Chat(WebSocketUser):
            wait_time = constant_arrival_rate(40, max_users=20)

            @task
            def visit(self):
                gevent.sleep(0.03)  # 30 ms after the iteration was due
                self.connect("/echo?token=abc", name="open").close()
    """.replace("LISTENER", str(listener))
    run = _run(tmp_path, f"http://127.0.0.1:{ws_server['port']}", body, 3, "-u", "10")
    run.assert_exit(0)
    opened = _hdr_rows(run)[("WS", "open")]
    # Over the clock's own time, as above; an iteration still in its 30 ms sleep at the end opened nothing.
    elapsed = float(_arrival_rows(run)["Chat"]["Elapsed"])
    assert elapsed >= 1 and int(opened["Count"]) >= 0.9 * 40 * elapsed - 3, (elapsed, opened)
    assert float(opened["Corrected p50"]) == pytest.approx(float(opened["p50"]) + 30, abs=10), opened


def test_a_websocket_failure_of_an_iteration_is_recorded_beside_other_listeners(tmp_path, ws_server):  # noqa: F811
    # A failure without a response object: nothing to carry the lead on to the statistics core's listener. It must
    # still be recorded (it raised AttributeError inside the session, and the failure was lost).
    body = """
        from locust import events, task
        from locust_rs import WebSocketUser, constant_arrival_rate
        from locust_rs.websocket import WebSocketTimeout

        events.request.add_listener(lambda **kw: None)

        class Chat(WebSocketUser):
            wait_time = constant_arrival_rate(20, max_users=10)

            def on_start(self):
                self.ws = self.connect("/echo")

            @task
            def wait_for_nothing(self):
                try:
                    self.ws.recv(timeout=0.01)
                except WebSocketTimeout:
                    pass
    """
    run = _run(tmp_path, f"http://127.0.0.1:{ws_server['port']}", body, 2, "-u", "5")
    assert "AttributeError" not in run.output, run.output[-3000:]
    failures = [row for key, row in _hdr_rows(run).items() if key[0] == "WSRECV"]
    assert failures, _hdr_rows(run)
    # One timeout per iteration begun, less those the end of the run cut short (at most one per user). Counted
    # against the iterations begun, not the 40 due: a loaded CI machine begins fewer in a 2 s run (19 recorded once).
    chat = _arrival_rows(run)["Chat"]
    begun = int(chat["Iterations"])
    assert begun >= 10 and begun - 5 <= int(failures[0]["Count"]) <= begun, (chat, failures)


# A worker's own figures: ``rate_R`` once its part of the rate is R/s, ``ran_R`` once it has scheduled 20 iterations at
# that rate, and ``own.json`` at the end (the master's CSV holds only the workers' sum).
_WORKER_WATCH = """
import json

import gevent
from locust import events
from locust.runners import WorkerRunner
from locust_rs.arrival import report as arrival_report


@events.init.add_listener
def watch_own_rate(environment, **_kw):
    if not isinstance(environment.runner, WorkerRunner):
        return

    def watch():
        rate, since = None, 0
        while True:
            rows = arrival_report.summary(environment)
            if rows:
                row = rows[0]
                if row["target_rate"] != rate:
                    rate, since = row["target_rate"], row["scheduled"]
                    open(f"rate_{rate:g}", "w").close()
                if row["scheduled"] - since >= 20:
                    open(f"ran_{rate:g}", "w").close()
            gevent.sleep(0.05)

    gevent.spawn(watch)


@events.quitting.add_listener
def own_figures(environment, **_kw):
    if isinstance(environment.runner, WorkerRunner):
        row = arrival_report.summary(environment)[0]
        json.dump({k: row[k] for k in ("scheduled", "elapsed", "target_rate")}, open("own.json", "w"))
"""


def _split_run(tmp_path: Path, workers: int):
    """A master's directory and locustfile, and ``workers`` workers' (200/s in all, each worker watching its part)."""
    from test_e2e_locust import free_port

    body = textwrap.dedent(_CONSTANT.format(rate=200, max_users=40, extra="", path="/")) + _WORKER_WATCH
    dirs = [tmp_path / d for d in ("master", *(f"worker{i}" for i in range(workers)))]
    files = []
    for d in dirs:
        d.mkdir()
        files.append(write_locustfile(d, body))
    return str(free_port()), dirs, files


def _wait_for(paths: list[Path], procs, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            assert proc.poll() is None, f"a locust process ended early:\n{proc.args}"
        assert time.monotonic() < deadline, f"not within {timeout} s: {[str(p) for p in paths if not p.exists()]}"
        time.sleep(0.05)


def _kill_all(procs) -> None:
    import signal

    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_master_splits_the_rate_again_when_a_worker_is_lost(tmp_path, stall_server):
    import signal

    port, dirs, files = _split_run(tmp_path, 2)
    survivor, lost = dirs[1], dirs[2]
    # The run ends once the survivor has run 20 iterations at the whole rate (-t is only the bound).
    master = start_locust(
        files[0], "--master", "--headless", "--expect-workers", "2", "--master-bind-port", port, "-u", "20", "-r",
        "20", "-t", "40s", "-H", stall_server, "--csv", str(dirs[0] / "run"), "--only-summary",
        stop_when=f"exists({str(survivor / 'ran_200')!r})",
    )  # fmt: skip
    workers = [start_locust(f, "--worker", "--master-port", port) for f in files[1:]]
    try:
        _wait_for([survivor / "ran_100", lost / "ran_100"], [master, *workers])  # each runs its half
        os.killpg(workers[1].pid, signal.SIGKILL)
        run = finish_locust(master, 60, dirs[0] / "run")
        workers[0].wait(timeout=20)  # a worker quits when its master does, and writes its figures on the way out
    finally:
        _kill_all([master, *workers])
    assert run.returncode == 0, run.output[-3000:]
    assert run.stopped_on_condition, run.output[-3000:]
    # Once Locust marks the lost worker missing, the survivor is told to run the whole rate, and does. Without the
    # new split it would stay at 100/s, and the run would reach -t.
    assert json.loads((survivor / "own.json").read_text())["target_rate"] == pytest.approx(200)
    # In all, never more than the rate: what the lost worker did since its last report is lost with it.
    row = _arrival_rows(run)["Api"]
    assert int(row["Scheduled"]) <= 1.01 * 200 * float(row["Elapsed"]) + 1, row


def test_a_master_splits_the_rate_again_when_a_worker_joins(tmp_path, stall_server):
    port, dirs, files = _split_run(tmp_path, 2)
    first, joined = dirs[1], dirs[2]
    # The run ends once the newcomer has run 20 iterations at its half, and the first worker is down to its half.
    master = start_locust(
        files[0], "--master", "--headless", "--expect-workers", "1", "--master-bind-port", port, "-u", "20", "-r",
        "20", "-t", "40s", "-H", stall_server, "--csv", str(dirs[0] / "run"), "--only-summary",
        stop_when=f"exists({str(joined / 'ran_100')!r}) and exists({str(first / 'rate_100')!r})",
    )  # fmt: skip
    workers = [start_locust(files[1], "--worker", "--master-port", port)]
    try:
        _wait_for([first / "ran_200"], [master, *workers])  # the first worker runs the whole 200/s
        workers.append(start_locust(files[2], "--worker", "--master-port", port))
        run = finish_locust(master, 60, dirs[0] / "run")
        for w in workers:
            w.wait(timeout=20)  # a worker quits when its master does, and writes its figures on the way out
    finally:
        _kill_all([master, *workers])
    assert run.returncode == 0, run.output[-3000:]
    assert run.stopped_on_condition, (run.output[-3000:], (joined / "locust.log").read_text()[-3000:])
    own_first, own_joined = (json.loads((d / "own.json").read_text()) for d in (first, joined))
    # Both end on half the rate: the master told the first worker of the second.
    assert own_first["target_rate"] == pytest.approx(100), own_first
    assert own_joined["target_rate"] == pytest.approx(100), own_joined
    # The newcomer never ran more than its half: before the fix its first users ran the whole rate until its init.
    # (That it runs at all once told, rather than staying at 0, is the run's condition: 20 iterations at 100/s.)
    assert own_joined["scheduled"] <= 1.02 * 100 * own_joined["elapsed"] + 1, own_joined
    # In all, the rate and no more: without the new split the first worker would go on at 200/s beside the
    # newcomer's 100/s.
    row = _arrival_rows(run)["Api"]
    assert int(row["Scheduled"]) <= 1.03 * 200 * float(row["Elapsed"]) + 1, row


def test_a_class_that_drops_iterations_says_so_while_it_runs_and_in_the_end_table(tmp_path, http_server):
    """k6 prints "Insufficient VUs" as soon as it runs short: a class at its max_users that drops iterations warns
    once at once (not once per iteration), and the end table shows what was due and the share dropped."""
    body = """
        from locust import task
        from locust_rs import FastHttpUser, constant_arrival_rate

        class Short(FastHttpUser):
            wait_time = constant_arrival_rate(40, max_users=4)

            @task
            def slow(self):
                self.client.get("/slow?delay=0.2", name="slow")
    """
    run = _run(tmp_path, http_server, body, 3, "-u", "4")
    run.assert_exit(0)  # dropping alone fails nothing: a dropped_iterations threshold does
    warnings = [line for line in run.output.splitlines() if "Insufficient users: Short dropped" in line]
    assert len(warnings) == 1, run.output
    assert "WARNING" in warnings[0] and "max_users" in warnings[0], warnings
    row = _arrival_rows(run)["Short"]
    scheduled, dropped = int(row["Scheduled"]), int(row["Dropped iterations"])
    assert dropped > 0 and scheduled > dropped, row
    table = run.output[run.output.index("Start lag (ms) of arrival-rate iterations") :].splitlines()
    assert table[1].split()[:9] == [
        "Arrival", "rate", "target/s", "achieved/s", "scheduled", "iterations", "dropped", "dropped", "%"
    ], table  # fmt: skip
    short = table[3].split()
    assert short[0] == "Short", table
    assert (short[3], short[5]) == (str(scheduled), str(dropped)), table
    assert short[6] == f"{100.0 * dropped / scheduled:.1f}", table


def test_a_pool_of_one_user_drops_nothing_at_the_start(tmp_path, http_server):
    """The clock starts once the first user waits for an iteration: started before, it found no user free, with
    the cap held by that user, and dropped the first iteration of every test (one per run, for a pool of one)."""
    body = """
        from locust import task
        from locust_rs import FastHttpUser, constant_arrival_rate

        class One(FastHttpUser):
            wait_time = constant_arrival_rate(10)

            @task
            def hit(self):
                self.client.get("/echo/one", name="one")
    """
    run = _run(tmp_path, http_server, body, 2, "-u", "1")
    run.assert_exit(0)
    row = _arrival_rows(run)["One"]
    assert int(row["Dropped iterations"]) == 0 and int(row["Iterations"]) > 5, row


def test_the_arrival_figures_are_in_the_hdr_page_and_in_locusts_report(tmp_path, http_server):
    body = """
        from locust import task
        from locust_rs import FastHttpUser, constant_arrival_rate

        class Paced(FastHttpUser):
            wait_time = constant_arrival_rate(20)

            @task
            def hit(self):
                self.client.get("/echo/paced", name="paced")
    """
    run = _run(tmp_path, http_server, body, 2, "-u", "2", "--html", str(tmp_path / "report.html"))
    run.assert_exit(0)
    row = _arrival_rows(run)["Paced"]
    # the counts as _arrival.csv has them (the rates are rounded otherwise: 1 decimal there, 3 in the CSV)
    counts = f"<td>{row['Scheduled']}</td><td>{row['Iterations']}</td><td>{row['Dropped iterations']}</td>"
    for page in ("report_hdr.html", "report.html"):
        text = (tmp_path / page).read_text()
        assert "Arrival rate (open model)" in text and "<tr><td>Paced</td>" in text and counts in text, (page, row)
    assert f"<td>{row['Start lag p99']}</td>" in (tmp_path / "report_hdr.html").read_text()

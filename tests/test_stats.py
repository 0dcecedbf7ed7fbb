"""The statistics core against Locust's own ``RequestStats``: the same events give the same counts, failures, min,
max, mean, content length and errors; percentiles are exact (within HDR precision) where Locust's are bucketed.
Also the worker-to-master path (Locust's own report listeners, msgpack) and the outputs that format the figures."""

import locust  # noqa: F401,I001 - first import, for gevent's monkey-patching (see conftest.py)
from locust import stats as locust_stats
from locust.event import Events
from locust.exception import CatchResponseError
from locust.rpc import Message

import math

import gevent
import random

import pytest

from locust_rs import stats as rs_stats


def exact(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def _events(seed: int = 3) -> list[dict]:
    """A mix a demanding user produces: sub-millisecond and 123 ms times, None (async) times, failures of several
    kinds, content lengths, and a few names and methods."""
    rnd = random.Random(seed)
    names = [("GET", "/"), ("GET", "/api/items"), ("POST", "/api/login"), ("WSR", "chat")]
    out = []
    for i in range(5000):
        method, name = names[i % len(names)]
        if name == "/api/items":
            rt = rnd.uniform(0.05, 0.95)  # sub-millisecond
        elif name == "/api/login":
            rt = 123.0 + rnd.uniform(-0.4, 0.4)  # where Locust's bucket (120) and the truth differ
        else:
            rt = rnd.lognormvariate(2, 1)
        if i % 97 == 0:
            rt = None
        exc = None
        if i % 13 == 0:
            exc = CatchResponseError(f"bad status {500 + i % 3}")
        elif i % 31 == 0:
            exc = ConnectionRefusedError(111, "Connection refused")
        out.append(
            {
                "request_type": method,
                "name": name,
                "response_time": rt,
                "response_length": rnd.randint(0, 4096),
                "exception": exc,
            }
        )
    return out


def _feed(stats, events: list[dict]) -> None:
    for e in events:
        stats.log_request(e["request_type"], e["name"], e["response_time"], e["response_length"])
        if e["exception"] is not None:
            stats.log_error(e["request_type"], e["name"], e["exception"])


def _native_feed(stats, events: list[dict]) -> None:
    """Through the native ``events.request`` listener, as a run records."""
    for e in events:
        stats.core.on_request(**e, context={}, response=None, start_time=0.0, url="")


def _record_feed(stats, events: list[dict]) -> None:
    """Through ``record``, which a locust-rs session calls when the core's listener is the only one."""
    for e in events:
        stats.core.record(e["request_type"], e["name"], e["response_time"], e["response_length"], e["exception"], 0.0)


SCALARS = (
    "num_requests",
    "num_none_requests",
    "num_failures",
    "total_content_length",
    "avg_content_length",
    "fail_ratio",
)


def _compare(ours, theirs, samples: list[float]) -> None:
    for attr in SCALARS:
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    # min and max to the microsecond (3 decimals), the resolution every output shows
    assert ours.min_response_time == round(theirs.min_response_time, 3)
    assert ours.max_response_time == round(theirs.max_response_time, 3)
    assert ours.total_response_time == pytest.approx(theirs.total_response_time, rel=1e-12)
    assert ours.avg_response_time == pytest.approx(theirs.avg_response_time, rel=1e-12)
    for q in (0.5, 0.66, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0):
        want = exact(samples, q)
        got = ours.get_response_time_percentile(q)
        assert got == pytest.approx(want, rel=1e-3, abs=1e-3), (ours.name, q, got, want)


@pytest.mark.parametrize("feed", [_feed, _native_feed, _record_feed], ids=["log_request", "on_request", "record"])
def test_same_events_same_figures_as_locusts_request_stats(feed):
    events = _events()
    theirs = locust_stats.RequestStats()
    ours = rs_stats.RequestStats()
    _feed(theirs, events)
    feed(ours, events)
    assert sorted(ours.entries) == sorted(theirs.entries)
    for key, entry in theirs.entries.items():
        samples = [e["response_time"] for e in events if (e["name"], e["request_type"]) == key and e["response_time"]]
        _compare(ours.entries[key], entry, samples)
    _compare(ours.total, theirs.total, [e["response_time"] for e in events if e["response_time"] is not None])
    # Errors: the same keys, occurrences and names (what the failures CSV and the UI show).
    assert {k: (e.occurrences, e.to_name()) for k, e in ours.errors.items()} == {
        k: (e.occurrences, e.to_name()) for k, e in theirs.errors.items()
    }
    # Requests per second: the same seconds counted (both log at wall-clock time, a moment apart).
    assert sum(ours.total.num_reqs_per_sec.values()) == sum(theirs.total.num_reqs_per_sec.values())


def test_locust_buckets_what_the_core_keeps_exact():
    theirs = locust_stats.RequestStats()
    ours = rs_stats.RequestStats()
    for stats in (theirs, ours):
        for _ in range(100):
            stats.log_request("GET", "/slow", 123.4, 0)
            stats.log_request("GET", "/fast", 0.42, 0)
    assert theirs.get("/slow", "GET").get_response_time_percentile(0.5) == 120
    assert ours.get("/slow", "GET").get_response_time_percentile(0.5) == pytest.approx(123.4, rel=1e-3)
    assert theirs.get("/fast", "GET").get_response_time_percentile(0.95) == 0
    assert ours.get("/fast", "GET").get_response_time_percentile(0.95) == pytest.approx(0.42, rel=1e-3)
    assert ours.get("/fast", "GET").median_response_time == pytest.approx(0.42, rel=1e-3)


def test_workers_reports_merge_on_the_master_through_locusts_own_listeners():
    """Two workers' reports, through Locust's report listeners and msgpack as the wire does, merge on the master
    into what one stats object fed every event holds, histograms included."""
    events = _events(5)
    halves = events[::2], events[1::2]
    master_events = Events()
    master = rs_stats.RequestStats()
    locust_stats.setup_distributed_stats_event_listeners(master_events, master)
    for half in halves:
        worker_events = Events()
        worker = rs_stats.RequestStats(use_response_times_cache=False)
        locust_stats.setup_distributed_stats_event_listeners(worker_events, worker)
        _native_feed(worker, half)
        data: dict = {}
        worker_events.report_to_master.fire(client_id="w", data=data)
        assert worker.total.num_requests == 0  # a report is a delta: the worker starts again
        wire = Message.unserialize(Message("stats", data, "w").serialize()).data
        master_events.worker_report.fire(client_id="w", data=wire)
    whole = rs_stats.RequestStats()
    _native_feed(whole, events)
    for key, entry in whole.entries.items():
        got = master.entries[key]
        assert isinstance(got, rs_stats.StatsEntry)
        for attr in ("num_requests", "num_failures", "num_none_requests", "total_content_length"):
            assert getattr(got, attr) == getattr(entry, attr), (key, attr)
        assert got.response_times == entry.response_times
    assert master.total.response_times == whole.total.response_times
    for q in (0.5, 0.95, 0.99, 1.0):
        assert master.total.get_response_time_percentile(q) == whole.total.get_response_time_percentile(q)
    assert sum(e.occurrences for e in master.errors.values()) == whole.num_failures


def test_reset_and_clear_keep_the_interface():
    stats = rs_stats.RequestStats()
    stats.log_request("GET", "/", 1.0, 10)
    stats.log_error("GET", "/", "boom")
    entry = stats.get("/", "GET")
    stats.reset_all()
    assert (entry.num_requests, entry.num_failures, stats.errors) == (0, 0, {})
    assert stats.entries[("/", "GET")] is entry
    stats.clear_all()
    assert len(stats.entries) == 0 and stats.total.num_requests == 0
    stats.log_request("GET", "/", 2.0, 0)
    assert stats.num_requests == 1


def test_tables_and_csv_show_sub_millisecond_values():
    stats = rs_stats.RequestStats()
    rs_stats._install_formatting()
    for _ in range(10):
        stats.log_request("GET", "/fast", 0.512, 0)
    lines = locust_stats.get_percentile_stats_summary(stats)
    assert "exact" in lines[0]
    assert "0.512" in lines[3]
    assert "0.512" in stats.get("/fast", "GET").to_string()
    d = stats.get("/fast", "GET").to_dict()
    assert d["min_response_time"] == 0.512 and d["response_time_percentile_0.95"] == 0.512


def test_the_csv_writer_ends_quietly_once_its_files_are_closed(tmp_path, monkeypatch):
    # Locust closes the CSV files at shutdown without stopping its writer greenlet; a yield after that (the
    # interpreter joining threads at exit) woke it on closed files, and a traceback followed the verdict line.
    from locust.env import Environment

    rs_stats._install_formatting()
    monkeypatch.setattr(locust_stats, "CSV_STATS_INTERVAL_SEC", 0.001)
    env = Environment(events=Events())
    env.stats = rs_stats.RequestStats()
    writer = locust_stats.StatsCSVFileWriter(env, locust_stats.PERCENTILES_TO_REPORT, str(tmp_path / "run"), False)
    greenlet = gevent.spawn(writer.stats_writer)
    gevent.sleep(0.01)
    env.stats.log_request("GET", "/", 2.0, 0)
    writer.close_files()
    gevent.sleep(0.05)  # several of the writer's wake-ups, all on closed files
    assert greenlet.dead and greenlet.successful(), greenlet.exception
    assert "GET,/,1," in (tmp_path / "run_stats.csv").read_text()


@pytest.mark.parametrize(
    ("host", "says"),
    [
        ("127.0.0.1:8000", "no scheme; did you mean 'http://127.0.0.1:8000'"),
        ("localhost:8000", "no scheme"),
        ("ftp://x", "the scheme 'ftp' is not supported"),
        ("http://", "names no host"),
        ("http://x:99999", "not a valid URL"),
    ],
)
def test_a_bad_host_is_one_line_at_start(host, says, tmp_path):
    """The run stops before any user spawns, with exit code 2 and one line that says what is wrong."""
    from tests.test_e2e_locust import RUN_GRACE_S, finish_locust, start_locust

    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(
        "from locust import task\nfrom locust_rs import FastHttpUser\n\n\n"
        "class U(FastHttpUser):\n    @task\n    def t(self):\n        self.client.get('/')\n"
    )
    run = finish_locust(
        start_locust(locustfile, "--headless", "-u", "1", "-t", "5s", "--host", host), RUN_GRACE_S, tmp_path / "run"
    )
    assert run.returncode == 2, run.output
    assert says in run.output
    assert "Ramping to" not in run.output


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:8000", "https://example.test/base", "ws://127.0.0.1:1", "http://[::1]:80"]
)
def test_good_hosts_pass(host):
    from locust_rs._locust.plugin import host_problem

    assert host_problem(host) is None


MEMORY_PROBE = """
import random, sys
from locust_rs.stats import RequestStats

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6

stats = RequestStats()
rnd = random.Random(1)
stats.log_request("GET", "/warm-up", 1.0, 0)
before = rss_mb()
for i in range(10_000):
    for _ in range(50):
        # 0.1 ms .. about 1 s: a realistic spread, up to a few hundred distinct 3-digit buckets per name
        stats.log_request("GET", f"/item/{i}", rnd.lognormvariate(1, 1.5), 100)
print(rss_mb() - before, stats.num_requests, len(stats.entries))
"""


def test_ten_thousand_names_stay_within_the_documented_bound():
    """docs/metrics.md: a name costs a few KB while its times fall in at most 1,024 distinct buckets (the
    histogram is sparse until then); 10,000 names with 50 requests each stay under 60 MB, where dense histograms
    alone would take 640 MB."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown_mb, requests, names = out.stdout.split()
    assert (int(requests), int(names)) == (500_001, 10_001)
    assert float(grown_mb) < 60, grown_mb


@pytest.fixture
def adopted():
    from locust.env import Environment

    import locust_rs

    class U(locust_rs.FastHttpUser):
        pass

    env = Environment(user_classes=[U])
    env.create_local_runner()
    rs_stats.adopt(env)
    try:
        yield env, U
    finally:
        env.runner.quit()


@pytest.mark.parametrize("client", ["fasthttp", "requests"])
def test_a_session_records_directly_when_the_core_is_the_only_listener(client, adopted, http_server, monkeypatch):
    import locust_rs

    env, _ = adopted
    cls = locust_rs.FastHttpUser if client == "fasthttp" else locust_rs.HttpUser
    user = type("U", (cls,), {"host": http_server})(env)
    fired = []
    monkeypatch.setattr(type(env.events.request), "fire", lambda self, **kw: fired.append(kw))
    user.client.get("/echo")
    user.client.get("/status/500")
    # Locust's fire() was not called for a request... (the patch is the class's: a runner's greenlet left by another
    # test may fire its usage_monitor meanwhile, which is not ours to count)
    assert not [kw for kw in fired if "request_type" in kw]
    total = env.stats.total  # ...and the core has both, the failure too
    assert (total.num_requests, total.num_failures) == (2, 1)
    assert len(env.stats.errors) == 1


def test_another_listener_gets_every_event_through_fire(adopted, http_server):
    import locust_rs

    env, _ = adopted
    seen = []
    env.events.request.add_listener(lambda **kw: seen.append((kw["name"], kw["exception"] is not None)))
    user = type("U", (locust_rs.FastHttpUser,), {"host": http_server})(env)
    user.client.get("/echo")
    user.client.get("/status/500", name="bad")
    assert seen == [("/echo", False), ("bad", True)]
    assert (env.stats.total.num_requests, env.stats.total.num_failures) == (2, 1)


def _counting_context_user(host: str, calls: list, context: dict) -> type:
    """A FastHttpUser class whose ``context()`` returns ``context`` and appends to ``calls`` each time it is asked."""
    import locust_rs

    class U(locust_rs.FastHttpUser):
        def context(self):
            calls.append(1)
            return context

    U.host = host
    return U


@pytest.mark.parametrize("catch_response", [False, True])
def test_the_users_context_reaches_a_listener_added_while_the_request_was_in_flight(
    catch_response, adopted, http_server
):
    import gevent

    env, _ = adopted
    calls = []
    user = _counting_context_user(http_server, calls, {"tenant": "a"})(env)

    def get():
        if catch_response:
            with user.client.get("/slow?delay=0.3", context={"req": 1}, catch_response=True):
                pass
        else:
            user.client.get("/slow?delay=0.3", context={"req": 1})

    g = gevent.spawn(get)
    gevent.sleep(0.1)  # the request is in flight, with the statistics core the only listener
    seen = []
    env.events.request.add_listener(lambda **kw: seen.append(kw["context"]))
    g.join(timeout=10)
    assert g.successful(), g.exception
    assert seen == [{"tenant": "a", "req": 1}]
    assert calls == [1]  # once per request, as Locust calls it
    assert env.stats.total.num_requests == 1


@pytest.mark.xfail(
    strict=True,
    reason="known difference (docs/compatibility.md): with the statistics core the only listener, user.context() "
    "is not called",
)
def test_the_users_context_is_called_for_every_request(adopted, http_server):
    env, _ = adopted
    calls = []
    _counting_context_user(http_server, calls, {})(env).client.get("/echo")
    assert env.stats.total.num_requests == 1
    assert calls == [1]


@pytest.mark.parametrize("raised", [RuntimeError, locust.exception.StopUser])
def test_a_listener_error_on_the_direct_path_is_handled_as_fire_handles_it(raised, caplog, monkeypatch):
    from locust import log as locust_log
    from locust.event import EventHook

    from locust_rs import _native
    from locust_rs.stats.record import fire_request

    def on_error(*_a):
        raise raised("listener broke")

    hook = EventHook()
    hook.add_listener(_native.StatsCore(on_error=on_error).on_request)
    monkeypatch.setattr(locust_log, "unhandled_greenlet_exception", False)
    args = ("GET", "/x", 1.0, 0, ValueError("failed"), None, {}, 0.0, "http://x/x", 0.0)
    if raised is RuntimeError:
        # Logged and flagged, not raised, as EventHook.fire does.
        fire_request(hook, *args)
        assert "Uncaught exception in event handler" in caplog.text and "listener broke" in caplog.text
        assert locust_log.unhandled_greenlet_exception is True
    else:
        # Locust's flow-control exceptions go through to the task.
        with pytest.raises(raised):
            fire_request(hook, *args)
